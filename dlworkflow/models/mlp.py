"""`mlp`: a multilayer perceptron on table features, or on flattened pixels (a baseline for any
image size)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from dlworkflow.models.base import Classifier
from dlworkflow.models.registry import register_model


class MLP(Classifier):
    """flatten -> (linear - ReLU - dropout) per hidden width -> linear head."""

    def __init__(
        self,
        *,
        in_features: int,
        num_classes: int,
        hidden: Sequence[int] = (256, 128),
        dropout: float = 0.2,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        width = in_features
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU(inplace=True), nn.Dropout(dropout)]
            width = h
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(width, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


@register_model(
    "mlp",
    description="Table features (standardised numbers, one-hot strings) or flattened pixels "
    "-> hidden layers (256, 128) with ReLU and dropout -> linear head. A quick baseline.",
    input_note="tabular: any number of features; images: any size and channels (C*H*W inputs)",
    modalities=("image", "tabular"),
)
def mlp(
    *,
    num_classes: int,
    in_channels: int | None = None,
    image_size: tuple[int, int] | None = None,
    n_features: int | None = None,
    hidden: Sequence[int] = (256, 128),
    dropout: float = 0.2,
) -> MLP:
    if any(int(h) < 1 for h in hidden):
        raise ValueError(f"hidden widths must be positive, got {hidden}")
    if not 0 <= dropout < 1:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}")
    if n_features is None:
        if in_channels is None or image_size is None:
            raise ValueError("mlp needs n_features (tabular) or in_channels and image_size")
        n_features = in_channels * image_size[0] * image_size[1]
    return MLP(
        in_features=int(n_features),
        num_classes=num_classes,
        hidden=tuple(int(h) for h in hidden),
        dropout=float(dropout),
    )
