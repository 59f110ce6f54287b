"""Text classifiers trained from scratch on token ids: `bilstm` and `transformer`.

Both take int64 token ids (N, L) from `dlworkflow.models.tokenize` (the shared MiniLM
WordPiece vocabulary; 0 is padding, on the right) and find the real tokens as `ids != 0`.
Columns that are padding in every row of a batch are dropped first, so a batch costs what its
longest text costs.
"""

from __future__ import annotations

import torch
from torch import nn

from dlworkflow.models.base import Classifier
from dlworkflow.models.registry import register_model
from dlworkflow.preprocess.text import PAD_ID, TOKENIZER, check_max_len

DEFAULT_MAX_LEN = 128


def trim(ids: torch.Tensor, max_len: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(ids, mask) without the all-padding columns at the right (and at most max_len long)."""
    if ids.dtype not in (torch.int64, torch.int32) or ids.ndim != 2:
        raise ValueError(
            f"text models take int64 token ids (N, L), got {ids.dtype} {tuple(ids.shape)}"
        )
    mask = ids != PAD_ID
    length = max(int(mask.sum(1).max()), 1) if ids.numel() else 1
    if max_len is not None:
        length = min(length, max_len)
    return ids[:, :length], mask[:, :length]


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over the real tokens of (N, L, D) -> (N, D); 0 for a row without tokens."""
    summed = x.masked_fill(~mask.unsqueeze(-1), 0.0).sum(1)
    return summed / mask.sum(1, keepdim=True).clamp(min=1).to(x.dtype)


def masked_max(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Max over the real tokens of (N, L, D) -> (N, D); 0 for a row without tokens."""
    out = x.masked_fill(~mask.unsqueeze(-1), float("-inf")).max(1).values
    return out.masked_fill(~mask.any(1, keepdim=True), 0.0)


def text_preprocessing(max_len: int) -> dict[str, object]:
    return {"modality": "text", "max_len": max_len, "tokenizer": TOKENIZER}


class BiLSTMClassifier(Classifier):
    """embedding -> dropout -> bidirectional LSTM (packed: padding never enters it) -> mean
    and max over the real tokens -> dropout -> linear head."""

    def __init__(
        self,
        *,
        vocab_size: int,
        num_classes: int,
        embed_dim: int,
        hidden: int,
        layers: int,
        dropout: float,
    ) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=PAD_ID)
        self.lstm = nn.LSTM(
            embed_dim,
            hidden,
            num_layers=layers,
            bidirectional=True,
            batch_first=True,
            dropout=dropout if layers > 1 else 0.0,
        )
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(4 * hidden, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        ids, mask = trim(x)
        lengths = mask.sum(1).clamp(min=1).cpu()
        packed = nn.utils.rnn.pack_padded_sequence(
            self.dropout(self.embedding(ids)), lengths, batch_first=True, enforce_sorted=False
        )
        out, _ = self.lstm(packed)
        out, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=ids.shape[1])
        return self.dropout(torch.cat([masked_mean(out, mask), masked_max(out, mask)], 1))


class TransformerClassifier(Classifier):
    """token + learned position embeddings -> pre-norm Transformer encoder (GELU) -> final
    LayerNorm -> mean over the real tokens -> dropout -> linear head."""

    def __init__(
        self,
        *,
        vocab_size: int,
        num_classes: int,
        d_model: int,
        layers: int,
        heads: int,
        ff_dim: int,
        dropout: float,
        max_len: int,
    ) -> None:
        super().__init__()
        self.max_len = max_len
        self.embedding = nn.Embedding(vocab_size, d_model, padding_idx=PAD_ID)
        self.position = nn.Embedding(max_len, d_model)
        for table in (self.embedding, self.position):
            nn.init.normal_(table.weight, std=0.02)
        with torch.no_grad():
            self.embedding.weight[PAD_ID].zero_()
        layer = nn.TransformerEncoderLayer(
            d_model,
            heads,
            dim_feedforward=ff_dim,
            dropout=dropout,
            activation="gelu",
            batch_first=True,
            norm_first=True,
        )
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d_model)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(d_model, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        ids, mask = trim(x, self.max_len)
        positions = torch.arange(ids.shape[1], device=ids.device)
        h = self.dropout(self.embedding(ids) + self.position(positions))
        h = self.norm(self.encoder(h, src_key_padding_mask=~mask))
        return self.dropout(masked_mean(h, mask))


@register_model(
    "bilstm",
    description="Token embeddings (128) -> bidirectional LSTM (128 per direction) -> mean and "
    "max pooling over the tokens -> linear head. Trained from scratch; quick on a CPU.",
    input_note="text: MiniLM WordPiece token ids, up to max_len (128) tokens",
    modalities=("text",),
)
def bilstm(
    *,
    num_classes: int,
    vocab_size: int,
    embed_dim: int = 128,
    hidden: int = 128,
    layers: int = 1,
    dropout: float = 0.3,
    max_len: int = DEFAULT_MAX_LEN,
) -> BiLSTMClassifier:
    check_max_len(max_len)
    if min(int(embed_dim), int(hidden)) < 1 or int(layers) not in (1, 2, 3):
        raise ValueError("embed_dim and hidden must be >= 1 and layers 1, 2 or 3")
    if not 0 <= dropout < 1:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}")
    model = BiLSTMClassifier(
        vocab_size=vocab_size,
        num_classes=num_classes,
        embed_dim=int(embed_dim),
        hidden=int(hidden),
        layers=int(layers),
        dropout=float(dropout),
    )
    model.preprocessing = text_preprocessing(max_len)
    return model


@register_model(
    "transformer",
    description="Token + learned position embeddings -> 2-layer pre-norm Transformer encoder "
    "(d_model 128, 4 heads) -> mean pooling over the tokens -> linear head. Trained from "
    "scratch.",
    input_note="text: MiniLM WordPiece token ids, up to max_len (128) tokens",
    modalities=("text",),
)
def transformer(
    *,
    num_classes: int,
    vocab_size: int,
    d_model: int = 128,
    layers: int = 2,
    heads: int = 4,
    ff_dim: int = 256,
    dropout: float = 0.1,
    max_len: int = DEFAULT_MAX_LEN,
) -> TransformerClassifier:
    check_max_len(max_len)
    if int(d_model) < 1 or int(heads) < 1 or int(d_model) % int(heads):
        raise ValueError(
            f"d_model must be a positive multiple of heads, got d_model={d_model}, heads={heads}"
        )
    if not 1 <= int(layers) <= 12 or int(ff_dim) < 1 or not 0 <= dropout < 1:
        raise ValueError("layers must be 1 to 12, ff_dim >= 1 and dropout in [0, 1)")
    model = TransformerClassifier(
        vocab_size=vocab_size,
        num_classes=num_classes,
        d_model=int(d_model),
        layers=int(layers),
        heads=int(heads),
        ff_dim=int(ff_dim),
        dropout=float(dropout),
        max_len=max_len,
    )
    model.preprocessing = text_preprocessing(max_len)
    return model
