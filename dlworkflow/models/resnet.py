"""`resnet_small`: a CIFAR-style ResNet (He et al. 2016, section 4.2) for small images.

A 3x3 stem, then three stages of basic residual blocks (two 3x3 conv-BN, identity shortcut; a
1x1 conv-BN projection where the width or stride changes), the 2nd and 3rd stage halving the
size, global average pooling and a linear head. Depth = 6 x blocks_per_stage + 2: the default
3 blocks per stage with widths 16/32/64 is ResNet-20 (0.27M parameters); 1 block is ResNet-8.
The last batch-norm of every block starts at zero (Goyal et al. 2017), so each block starts as
the identity and deep stacks train from the first step.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from dlworkflow.models.base import Classifier
from dlworkflow.models.registry import register_model

MIN_SIZE = 8


class BasicBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, *, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        nn.init.zeros_(self.bn2.weight)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(
                nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


class ResNetSmall(Classifier):
    """stem -> 3 stages of basic blocks (strides 1, 2, 2) -> global average pool -> dropout ->
    linear head."""

    def __init__(
        self,
        *,
        in_channels: int,
        num_classes: int,
        widths: Sequence[int],
        blocks_per_stage: int,
        dropout: float,
    ) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, widths[0], 3, padding=1, bias=False),
            nn.BatchNorm2d(widths[0]),
            nn.ReLU(inplace=True),
        )
        blocks: list[nn.Module] = []
        c_in = widths[0]
        for stage, width in enumerate(widths):
            for i in range(blocks_per_stage):
                stride = 2 if stage > 0 and i == 0 else 1
                blocks.append(BasicBlock(c_in, width, stride=stride))
                c_in = width
        self.body = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(c_in, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(torch.flatten(self.pool(self.body(self.stem(x))), 1))


@register_model(
    "resnet_small",
    description="CIFAR-style ResNet: 3x3 stem, 3 stages of basic residual blocks (widths 16, "
    "32, 64; 3 blocks each = ResNet-20), global average pool, linear head. Trained from "
    "scratch.",
    input_note="any size >= 8x8, 1 or 3 channels (28x28 / 32x32 typical)",
)
def resnet_small(
    *,
    num_classes: int,
    in_channels: int,
    image_size: tuple[int, int],
    widths: Sequence[int] = (16, 32, 64),
    blocks_per_stage: int = 3,
    dropout: float = 0.0,
) -> ResNetSmall:
    if min(image_size) < MIN_SIZE:
        raise ValueError(
            f"resnet_small needs images of at least {MIN_SIZE}x{MIN_SIZE} pixels, "
            f"got {image_size[0]}x{image_size[1]}; set data.image.size larger"
        )
    if len(widths) != 3 or any(int(w) < 1 for w in widths):
        raise ValueError(f"widths must be 3 positive stage widths, got {list(widths)}")
    if int(blocks_per_stage) < 1 or not 0 <= dropout < 1:
        raise ValueError("blocks_per_stage must be >= 1 and dropout in [0, 1)")
    return ResNetSmall(
        in_channels=in_channels,
        num_classes=num_classes,
        widths=tuple(int(w) for w in widths),
        blocks_per_stage=int(blocks_per_stage),
        dropout=float(dropout),
    )
