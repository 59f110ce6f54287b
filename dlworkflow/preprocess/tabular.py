"""Tabular input: feature columns -> one float32 vector per sample, the same at train and test.
Torch-free; `dlworkflow.models` re-exports it.

    prep = fit_table_encoding(train_frame, {"age": "number", "city": "string"})
    x = encode_table(any_frame, prep)        # float32 (N, n_features(prep))

Numbers are standardised with the TRAIN split's mean and std (a missing value becomes the train
mean, i.e. 0); strings are one-hot over the train split's categories (the MAX_CATEGORIES most
frequent; rarer, unseen and missing values share the "other" column). `prep` is plain JSON and
becomes the trained model's `preprocessing`, so `dlw test` and serving encode exactly as
training did. Columns are looked up as "f:<name>" (the manifest's) or "<name>".
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from dlworkflow.errors import DlwError

if TYPE_CHECKING:
    import pandas as pd

MAX_CATEGORIES = 50
FEATURE_PREFIX = "f:"


class TableInputError(DlwError):
    """Rows given to a tabular model lack a feature column the model was trained on."""


def fit_table_encoding(
    train: pd.DataFrame, features: dict[str, str], *, max_categories: int = MAX_CATEGORIES
) -> dict[str, Any]:
    """The encoding learnt on `train`: features maps name -> "number" | "string" (in order)."""
    numeric = [n for n, kind in features.items() if kind == "number"]
    mean, std, categories = [], [], {}
    for name in numeric:
        values = _numbers(train, name)
        finite = values[np.isfinite(values)]
        m = float(finite.mean()) if len(finite) else 0.0
        s = float(finite.std()) if len(finite) else 1.0
        mean.append(m)
        std.append(s if s > 1e-12 and math.isfinite(s) else 1.0)  # a constant: centre it only
    for name, kind in features.items():
        if kind != "number":
            counts = _strings(train, name).dropna().value_counts()
            ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
            categories[name] = [str(k) for k, _ in ranked[:max_categories]]
    return {
        "modality": "tabular",
        "features": list(features),
        "numeric": numeric,
        "mean": mean,
        "std": std,
        "categories": categories,
    }


def n_features(prep: dict[str, Any]) -> int:
    """Width of the encoded vector: one per number, categories + "other" per string."""
    return len(prep["numeric"]) + sum(len(c) + 1 for c in prep["categories"].values())


def feature_names(prep: dict[str, Any]) -> list[str]:
    """Names of the encoded columns, in order (numbers, then name=category / name=other)."""
    names = list(prep["numeric"])
    for name, cats in prep["categories"].items():
        names += [f"{name}={c}" for c in cats] + [f"{name}=other"]
    return names


def encode_table(rows: pd.DataFrame, prep: dict[str, Any]) -> np.ndarray:
    """Rows -> float32 (N, n_features(prep)) with the stored statistics and categories."""
    _check_columns(rows, prep)
    out = np.zeros((len(rows), n_features(prep)), dtype=np.float32)
    for j, (name, m, s) in enumerate(zip(prep["numeric"], prep["mean"], prep["std"])):
        values = _numbers(rows, name)
        values = np.where(np.isfinite(values), values, m)
        out[:, j] = (values - m) / s
    col = len(prep["numeric"])
    for name, cats in prep["categories"].items():
        index = {c: i for i, c in enumerate(cats)}
        codes = _strings(rows, name).map(index).fillna(len(cats)).to_numpy(dtype=np.int64)
        out[np.arange(len(rows)), col + codes] = 1.0
        col += len(cats) + 1
    return out


def _column(frame: pd.DataFrame, name: str) -> pd.Series:
    return frame[FEATURE_PREFIX + name] if FEATURE_PREFIX + name in frame else frame[name]


def _numbers(frame: pd.DataFrame, name: str) -> np.ndarray:
    import pandas as pd

    return pd.to_numeric(_column(frame, name), errors="coerce").to_numpy(
        dtype=np.float64, na_value=np.nan
    )


def _strings(frame: pd.DataFrame, name: str) -> pd.Series:
    text = _column(frame, name).astype("string").str.strip()
    return text.mask(text == "").astype(object).where(text.notna() & (text != ""), None)


def _check_columns(rows: pd.DataFrame, prep: dict[str, Any]) -> None:
    missing = [n for n in prep["features"] if FEATURE_PREFIX + n not in rows and n not in rows]
    if missing:
        raise TableInputError(
            f"The rows lack {len(missing)} feature column(s) the model was trained on.",
            expected=", ".join(prep["features"][:10])
            + (" ..." if len(prep["features"]) > 10 else ""),
            received="missing: " + ", ".join(missing[:10]),
            fix="give every feature column (as in the training data), or retrain the model",
        )
