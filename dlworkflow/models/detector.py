"""`efficientnet_lite0_detector`: a CenterNet-style detector on the pretrained
EfficientNet-Lite0 backbone.

    model = create_model("efficientnet_lite0_detector", num_classes=2, in_channels=3,
                         image_size=(256, 256))
    logits = model(x)                  # (N, C + 4, H / 4, W / 4)
    dets = predict(model, x, target)   # (N, max_detections, 6), torch decode + batched NMS

The backbone's stride 8, 16 and 32 maps (and stride 4 for the output) go through a light FPN
(1x1 laterals to `width` channels, nearest top-down upsampling, a depthwise-separable 3x3
smoothing) to one stride-4 map; the head (Zhou et al. 2019, "Objects as Points") predicts per
cell C class heatmap logits (bias -2.19: every class starts at probability 0.1, the focal
loss's prior), the log box width and height in cells and the centre's offset in its cell.
No anchors and no torchvision. `param_groups()` splits "backbone" (the ImageNet-pretrained
encoder) from "head" (FPN + CenterNet head) for the transfer strategies; the ONNX export
takes the backbone's deepest map, pooled, as the image embedding.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from dlworkflow.models.base import Classifier
from dlworkflow.models.efficientnet_lite import (
    EfficientNetLite0,
    backbone_normalisation,
    pretrained_backbone,
)
from dlworkflow.models.nms import batched_nms
from dlworkflow.models.registry import register_model

STRIDE = 4
# the last block of each stage whose output the FPN reads: strides 4, 8, 16, 32
TAPS = {2: 24, 4: 40, 10: 112, 15: 320}
HEAT_PRIOR = 0.1  # the initial probability of every class at every cell
MAX_LOG_SIZE = 10.0


class LiteFeatures(nn.Module):
    """EfficientNet-Lite0 without its 1280-channel head: forward -> the maps at strides 4,
    8, 16, 32 (the deepest last)."""

    def __init__(self, net: EfficientNetLite0) -> None:
        super().__init__()
        self.conv_stem, self.bn0, self.blocks = net.conv_stem, net.bn0, net.blocks

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        x = F.relu6(self.bn0(self.conv_stem(x)))
        taps = []
        for i, block in enumerate(self.blocks):
            x = block(x)
            if i in TAPS:
                taps.append(x)
        return tuple(taps)


def _separable(channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(channels, channels, 3, padding=1, groups=channels, bias=False),
        nn.Conv2d(channels, channels, 1, bias=False),
        nn.BatchNorm2d(channels),
        nn.ReLU(inplace=True),
    )


class CenterNetHead(nn.Module):
    """FPN over the backbone's maps -> one stride-4 map -> heatmaps, sizes and offsets."""

    def __init__(self, num_classes: int, *, width: int) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.laterals = nn.ModuleList(nn.Conv2d(c, width, 1) for c in TAPS.values())
        self.smooth = nn.ModuleList(_separable(width) for _ in TAPS)
        self.heat = nn.Sequential(
            nn.Conv2d(width, width, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(width, num_classes, 1),
        )
        self.box = nn.Sequential(
            nn.Conv2d(width, width, 3, padding=1), nn.ReLU(inplace=True), nn.Conv2d(width, 4, 1)
        )
        heat_out = self.heat[-1]
        assert isinstance(heat_out, nn.Conv2d) and heat_out.bias is not None
        nn.init.constant_(heat_out.bias, -math.log((1 - HEAT_PRIOR) / HEAT_PRIOR))  # -2.19
        box_out = self.box[-1]
        assert isinstance(box_out, nn.Conv2d) and box_out.bias is not None
        nn.init.normal_(box_out.weight, std=0.001)
        nn.init.zeros_(box_out.bias)

    def forward(self, maps: tuple[torch.Tensor, ...]) -> torch.Tensor:
        x = self.smooth[-1](self.laterals[-1](maps[-1]))
        for i in range(len(maps) - 2, -1, -1):
            lateral = self.laterals[i](maps[i])
            x = lateral + F.interpolate(x, size=lateral.shape[-2:], mode="nearest")
            x = self.smooth[i](x)
        return torch.cat([self.heat(x), self.box(x)], dim=1)


class EfficientNetLite0Detector(Classifier):
    """Backbone (pretrained) -> FPN + CenterNet head; forward(x) -> (N, C + 4, H/4, W/4)."""

    stride = STRIDE

    def __init__(self, *, num_classes: int, in_channels: int, width: int, pretrained: bool) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.width = width
        net = pretrained_backbone(drop_connect_rate=0.0) if pretrained else EfficientNetLite0()
        self.backbone = LiteFeatures(net)
        self.head = CenterNetHead(num_classes, width=width)  # type: ignore[assignment]

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 320): the deepest backbone map averaged over its pixels (an image embedding)."""
        return self.backbone(self._rgb(x))[-1].mean(dim=(2, 3))

    def _rgb(self, x: torch.Tensor) -> torch.Tensor:
        return x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.head(self.backbone(self._rgb(x)))
        return out

    @property
    def num_features(self) -> int:
        return TAPS[15]

    @property
    def num_classes(self) -> int:
        head: Any = self.head
        return int(head.num_classes)

    def reset_head(self, num_classes: int) -> None:
        ref = next(self.head.parameters())
        self.head = CenterNetHead(num_classes, width=self.width).to(  # type: ignore[assignment]
            device=ref.device, dtype=ref.dtype
        )


@register_model(
    "efficientnet_lite0_detector",
    description="Object detector: EfficientNet-Lite0 pretrained on ImageNet, a light FPN and "
    "an anchor-free CenterNet head (class heatmaps, box sizes and centre offsets at stride 4).",
    input_note="1 or 3 channels at the data's size (a multiple of 32 is best); boxes come "
    "out per 4x4-pixel cell",
    pretrained=True,
    kinds=("detection",),
)
def efficientnet_lite0_detector(
    *,
    num_classes: int,
    in_channels: int,
    image_size: tuple[int, int],
    width: int = 64,
    pretrained: bool = True,
) -> EfficientNetLite0Detector:
    if not 8 <= int(width) <= 512:
        raise ValueError(f"width must be between 8 and 512, got {width}")
    if min(image_size) < 16:
        raise ValueError(f"images must be at least 16x16 pixels, got {image_size}")
    model = EfficientNetLite0Detector(
        num_classes=num_classes,
        in_channels=in_channels,
        width=int(width),
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


# ---------------------------------------------------------------- torch decoding


def decode(logits: torch.Tensor, *, classes: int, top_k: int) -> torch.Tensor:
    """(N, top_k, 6) normalised detections of the highest 3x3 heatmap peaks (before NMS),
    as tasks/boxes.py's numpy `decode`."""
    n, _, h, w = logits.shape
    heat = torch.sigmoid(logits[:, :classes].float())
    peaks = torch.where(heat == F.max_pool2d(heat, 3, stride=1, padding=1), heat, 0.0)
    k = min(top_k, classes * h * w)
    scores, top = peaks.flatten(1).topk(k, dim=1)
    c, cell = top // (h * w), top % (h * w)
    iy, ix = cell // w, cell % w
    reg = logits[:, classes:].float().flatten(2)  # (N, 4, h*w)
    picked = torch.gather(reg, 2, cell[:, None, :].expand(-1, 4, -1))
    bw = picked[:, 0].clamp(-MAX_LOG_SIZE, MAX_LOG_SIZE).exp() / w
    bh = picked[:, 1].clamp(-MAX_LOG_SIZE, MAX_LOG_SIZE).exp() / h
    cx, cy = (ix + picked[:, 2]) / w, (iy + picked[:, 3]) / h
    boxes = torch.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], dim=2).clamp(0, 1)
    valid = (boxes[..., 2] > boxes[..., 0]) & (boxes[..., 3] > boxes[..., 1]) & (scores > 0)
    out = torch.cat([boxes, scores[..., None], c[..., None].float()], dim=2)
    padding = out.new_tensor([0, 0, 0, 0, 0, -1]).expand_as(out)
    out = torch.where(valid[..., None], out, padding)
    if k < top_k:
        out = torch.cat([out, padding[:, :1].expand(n, top_k - k, 6)], dim=1)
    return out


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor, target: dict[str, Any]) -> torch.Tensor:
    """(N, max_detections, 6) detections of a batch: the model's maps decoded in torch and
    suppressed per class with batched_nms (what the task's numpy `outputs` gives)."""
    logits = model(x)
    classes = logits.shape[1] - 4
    k = int(target.get("max_detections", 100))
    dets = decode(logits, classes=classes, top_k=k)
    out = torch.zeros((len(dets), k, 6), device=dets.device)
    out[:, :, 5] = -1
    for i, rows in enumerate(dets):
        rows = rows[rows[:, 5] >= 0]
        keep = batched_nms(
            rows[:, :4], rows[:, 4], rows[:, 5], iou=float(target.get("nms_iou", 0.5))
        )
        out[i, : len(keep)] = rows[keep[:k]]
    return out
