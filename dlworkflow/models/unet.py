"""`efficientnet_lite0_unet`: a U-Net-style decoder on the pretrained EfficientNet-Lite0 encoder,
for semantic segmentation.

The encoder is models/efficientnet_lite.py's network with its ImageNet weights, cut after the
last MBConv block (320 channels at stride 32; the 1x1 conv to 1280 features and the pooling
are dropped). It hands the decoder five maps, at strides 2, 4, 8, 16 and 32 (16, 24, 40, 112
and 320 channels). The decoder walks back up (Ronneberger et al. 2015): the deeper map is
upsampled (bilinear) to the skip's exact size, concatenated with it and mixed by two 3x3
conv-BN-ReLU layers; a last stage at the input's size gives the (N, C, H, W) logits. TensorFlow
SAME padding rounds each stride up, and every upsampling goes to the size of the map it joins,
so any input size works (56x56: 28, 14, 7, 4, 2), with no padding to a multiple of 32.

The contract of models/base.py: `head` is the decoder (every layer that is not pretrained),
`param_groups()` -> {"backbone": the encoder, "head": the decoder}, so frozen / finetune /
gradual adapt the encoder as they adapt a classifier's backbone; `encoder` returns its five
maps (the deepest last: the ONNX export's pooled "features" for drift); `features(x)` is that
deepest map averaged over its pixels, (N, 320).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from dlworkflow.models.base import Classifier
from dlworkflow.models.efficientnet_lite import (
    EfficientNetLite0,
    backbone_normalisation,
    pretrained_backbone,
)
from dlworkflow.models.registry import register_model

#: The MBConv blocks after which the encoder hands a map to the decoder: the last block of
#: the stages at strides 2, 4, 8, 16 and 32 (models/efficientnet_lite.py STAGES).
TAPS = (0, 2, 4, 10, 15)
SKIP_CHANNELS = (16, 24, 40, 112, 320)
DECODER_CHANNELS = (128, 64, 32, 24, 16)  # at strides 16, 8, 4, 2 and 1


class Encoder(nn.Module):
    """EfficientNet-Lite0's stem and MBConv blocks; forward -> the five maps at strides 2 to
    32 (shallowest first). Grey input is replicated to RGB."""

    def __init__(self, backbone: EfficientNetLite0) -> None:
        super().__init__()
        self.conv_stem = backbone.conv_stem
        self.bn0 = backbone.bn0
        self.blocks = backbone.blocks[: TAPS[-1] + 1]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        x = F.relu6(self.bn0(self.conv_stem(x)))
        maps = []
        for i, block in enumerate(self.blocks):
            x = block(x)
            if i in TAPS:
                maps.append(x)
        return maps


def _conv_bn_relu(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


class UpBlock(nn.Module):
    """Upsample to the skip's size, concatenate, two 3x3 conv-BN-ReLU."""

    def __init__(self, c_in: int, c_skip: int, c_out: int) -> None:
        super().__init__()
        self.mix = nn.Sequential(_conv_bn_relu(c_in + c_skip, c_out), _conv_bn_relu(c_out, c_out))

    def forward(self, x: torch.Tensor, skip: torch.Tensor | None, size: list[int]) -> torch.Tensor:
        x = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
        return self.mix(x if skip is None else torch.cat([x, skip], dim=1))


class Decoder(nn.Module):
    """The five encoder maps (shallowest first) and the input's size -> (N, C, H, W) logits."""

    def __init__(self, num_classes: int, *, channels: tuple[int, ...], dropout: float) -> None:
        super().__init__()
        skips = (*SKIP_CHANNELS[:-1][::-1], 0)  # 112, 40, 24, 16, then the input size (none)
        ins = (SKIP_CHANNELS[-1], *channels[:-1])
        self.ups = nn.ModuleList(UpBlock(i, s, o) for i, s, o in zip(ins, skips, channels))
        self.dropout = nn.Dropout2d(dropout)
        self.classifier = nn.Conv2d(channels[-1], num_classes, 1)

    def forward(self, maps: list[torch.Tensor], size: list[int]) -> torch.Tensor:
        x = maps[-1]
        skips: list[torch.Tensor | None] = [*maps[-2::-1], None]
        for up, skip in zip(self.ups, skips):
            x = up(x, skip, list(skip.shape[-2:]) if skip is not None else size)
        return self.classifier(self.dropout(x))


class EfficientNetLite0UNet(Classifier):
    """Pretrained EfficientNet-Lite0 encoder + U-Net decoder -> per-pixel class logits at the
    input's size. `input_size` (optional) resizes the input inside the model first; the
    logits are resized back to the input's size."""

    def __init__(
        self,
        *,
        num_classes: int,
        input_size: int | None,
        decoder_channels: tuple[int, ...],
        dropout: float,
        drop_connect_rate: float,
        pretrained: bool,
    ) -> None:
        super().__init__()
        backbone = (
            pretrained_backbone(drop_connect_rate=drop_connect_rate)
            if pretrained
            else EfficientNetLite0(drop_connect_rate=drop_connect_rate)
        )
        self.encoder = Encoder(backbone)
        self.head = Decoder(num_classes, channels=decoder_channels, dropout=dropout)  # type: ignore[assignment]
        self.input_size = input_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = list(x.shape[-2:])
        inner = [self.input_size, self.input_size] if self.input_size else size
        if inner != size:
            x = F.interpolate(x, size=inner, mode="bilinear", align_corners=False)
        logits: torch.Tensor = self.head(self.encoder(x), inner)
        if inner != size:
            logits = F.interpolate(logits, size=size, mode="bilinear", align_corners=False)
        return logits

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 320): the encoder's deepest map averaged over its pixels."""
        return self.encoder(x)[-1].mean(dim=(2, 3))

    @property
    def num_features(self) -> int:
        return SKIP_CHANNELS[-1]

    @property
    def num_classes(self) -> int:
        return int(self._classifier().out_channels)

    def _classifier(self) -> nn.Conv2d:
        layer = self.head.classifier
        assert isinstance(layer, nn.Conv2d)
        return layer

    def reset_head(self, num_classes: int) -> None:
        """A fresh 1x1 classifier with `num_classes` outputs (the decoder is kept)."""
        old = self._classifier()
        self.head.classifier = nn.Conv2d(old.in_channels, num_classes, 1).to(
            device=old.weight.device, dtype=old.weight.dtype
        )


@register_model(
    "efficientnet_lite0_unet",
    description="Semantic segmentation: a U-Net decoder (skips at strides 2-32, bilinear "
    "upsampling, 3x3 conv-BN-ReLU) on the EfficientNet-Lite0 encoder pretrained on ImageNet; "
    "per-pixel class logits at the input's size.",
    input_note="any size (need not divide by 32), 1 or 3 channels; optional input_size "
    "resizes inside the model",
    pretrained=True,
    kinds=("segmentation",),
)
def efficientnet_lite0_unet(
    *,
    num_classes: int,
    in_channels: int,
    image_size: tuple[int, int],
    input_size: int | None = None,
    decoder_channels: tuple[int, ...] = DECODER_CHANNELS,
    dropout: float = 0.1,
    drop_connect_rate: float = 0.2,
    pretrained: bool = True,
) -> EfficientNetLite0UNet:
    if input_size is not None and not 32 <= int(input_size) <= 2048:
        raise ValueError(f"input_size must be between 32 and 2048 (or null), got {input_size}")
    if len(decoder_channels) != len(DECODER_CHANNELS) or min(decoder_channels) < 1:
        raise ValueError(
            f"decoder_channels must be {len(DECODER_CHANNELS)} positive widths (strides 16 "
            f"to 1), got {decoder_channels}"
        )
    if not 0 <= dropout < 1 or not 0 <= drop_connect_rate < 1:
        raise ValueError("dropout and drop_connect_rate must be in [0, 1)")
    if in_channels not in (1, 3):
        raise ValueError(f"in_channels must be 1 or 3, got {in_channels}")
    model = EfficientNetLite0UNet(
        num_classes=num_classes,
        input_size=None if input_size is None else int(input_size),
        decoder_channels=tuple(int(c) for c in decoder_channels),
        dropout=float(dropout),
        drop_connect_rate=float(drop_connect_rate),
        pretrained=bool(pretrained),
    )
    mean, std = backbone_normalisation(in_channels)
    model.preprocessing = {
        "channels": in_channels,
        "size": list(image_size),
        "mean": mean,
        "std": std,
        "fixed_normalisation": True,
    }
    return model
