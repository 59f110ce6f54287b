"""Text evidence: lengths per class, vocabulary, frequent tokens, and duplicate texts."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from dlworkflow.explore.duplicates import DuplicateGroup, Duplicates, summarise

if TYPE_CHECKING:
    import pandas as pd

TOKEN = re.compile(r"[^\W\d_]{2,}", re.UNICODE)  # words of two or more letters
TOP_TOKENS = 12


@dataclass
class TextEvidence:
    chars: np.ndarray
    tokens: np.ndarray
    labels: np.ndarray
    vocabulary: int
    n_empty: int
    top_tokens: dict[str, list[tuple[str, int]]] = field(default_factory=dict)


def tokenise(text: str) -> list[str]:
    return TOKEN.findall(text.lower())


def text_evidence(manifest: pd.DataFrame, *, groups: np.ndarray | None = None) -> TextEvidence:
    """`groups`: what lengths and words are counted per (the class; a regression target's
    value range; a multi-label sample's rarest label); the label column when None."""
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    texts = manifest["text"].astype("string").fillna("").tolist()
    labels = (
        manifest["label"].astype(str).to_numpy()
        if groups is None
        else np.asarray(groups).astype(str)
    )
    tokens = [tokenise(t) for t in texts]
    vocabulary: set[str] = set()
    per_class: dict[str, Counter[str]] = {}
    for words, label in zip(tokens, labels):
        vocabulary.update(words)
        per_class.setdefault(label, Counter()).update(
            w for w in words if w not in ENGLISH_STOP_WORDS
        )
    return TextEvidence(
        chars=np.array([len(t) for t in texts]),
        tokens=np.array([len(w) for w in tokens]),
        labels=labels,
        vocabulary=len(vocabulary),
        n_empty=sum(1 for t in texts if not t.strip()),
        top_tokens={k: c.most_common(TOP_TOKENS) for k, c in sorted(per_class.items())},
    )


def normalised_duplicates(manifest: pd.DataFrame) -> Duplicates:
    """Texts equal after lower-casing and collapsing white space, but not byte-identical."""
    key = (
        manifest["text"]
        .astype("string")
        .fillna("")
        .str.lower()
        .str.replace(r"\s+", " ", regex=True)
        .str.strip()
    )
    frame = manifest.assign(_key=key)
    sizes = frame.groupby("_key")["content_hash"].transform("nunique")
    frame = frame[(sizes > 1) & (frame["_key"] != "")]
    groups = [
        DuplicateGroup(
            sample_ids=g["sample_id"].astype(str).tolist(), labels=g["label"].astype(str).tolist()
        )
        for _, g in frame.groupby("_key", sort=True)
    ]
    return summarise(Duplicates(kind="near", n_searched=len(manifest)), groups)
