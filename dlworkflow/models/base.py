"""The one contract every network in the registry satisfies (a scikit-learn-style contract).

`features(x)` maps a batch to one feature vector per sample, `head` is the linear classifier on
top, and `forward(x) = head(features(x))`. Heads are swapped with `reset_head`, and
`param_groups` names the parameters so later steps can freeze the backbone or give each group
its own learning rate.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


class Classifier(nn.Module):
    """Base of every registered image classifier."""

    head: nn.Linear
    dlw_spec: dict[str, Any]  # name, params, ...: set by models.factory.create_model
    exports_features = True  # the ONNX model also outputs features(x) (monitor's drift)

    def __init__(self) -> None:
        super().__init__()
        # Set by the builder: channels, size (h, w), mean, std (per channel, on 0..1 pixels).
        self.preprocessing: dict[str, Any] = {}

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) float -> (N, F) features."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))

    @property
    def num_features(self) -> int:
        return self.head.in_features

    @property
    def num_classes(self) -> int:
        return self.head.out_features

    def reset_head(self, num_classes: int) -> None:
        """A fresh linear head with `num_classes` outputs (transfer learning, new label sets)."""
        ref = next(self.head.parameters())
        self.head = nn.Linear(self.num_features, num_classes).to(device=ref.device, dtype=ref.dtype)

    def param_groups(self) -> dict[str, list[nn.Parameter]]:
        """Named groups covering every parameter exactly once: at least "backbone" and "head"."""
        head_ids = {id(p) for p in self.head.parameters()}
        backbone = [p for p in self.parameters() if id(p) not in head_ids]
        return {"backbone": backbone, "head": list(self.head.parameters())}

    def parameter_count(self) -> int:
        return sum(p.numel() for p in self.parameters())
