"""The cheap pretrained image embedding that explore computes for every sample.

The first MBConv blocks of the ImageNet EfficientNet-Lite0 (stem + stages 1-3: 40 channels at
stride 8) on images resized to 32 px (64 px for images larger than 48 px), average-pooled on a
4 x 4 grid: 640 numbers per image. On Fashion-MNIST (3,000 images, 3-fold logistic
regression on 64 PCA components) these early features score 0.86, above the whole network's
pooled 1,280 features at 64 px (0.80) and raw pixels (0.79), at ~7x the speed of the whole
network at 32 px and ~30x at 64 px. Batch norms are folded into the convolutions (1.5x):
one core embeds ~6,500 images/s (the whole network at 64 px: ~380).
Batches of EMBED_BATCH images run on all the idle cores the process may use (`all_cores`).
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

BLOCKS = 5  # MBConv blocks kept: stages 1-3 of EfficientNet-Lite0 (40 channels, stride 8)
GRID = 4  # the last feature map is average-pooled to GRID x GRID cells
SMALL_SIDE, LARGE_SIDE = 32, 64  # input side: images up to 48 px, larger images
EMBED_BATCH = 128  # images per forward pass (larger: slower, its activations leave the caches)
VERSION = 1  # bump when the features change: cached vectors of another version are not used


def input_side(size: tuple[int, int]) -> int:
    return SMALL_SIDE if max(size) <= 48 else LARGE_SIDE


class QuickEmbedder:
    """uint8 (N, C, H, W) images, C in {1, 3} -> float32 (N, dim) early pretrained features."""

    def __init__(self, *, side: int) -> None:
        from dlworkflow.models import efficientnet_lite as lite

        self.side = side
        self.dim = lite.STAGES[2][-1] * GRID * GRID
        self.name = f"efficientnet_lite0 blocks 1-{BLOCKS}, {side} px, {GRID}x{GRID} grid"
        self.key = f"lite0-b{BLOCKS}-s{side}-g{GRID}-v{VERSION}-{lite.WEIGHTS_SHA256[:12]}"
        self.net = fused_front(lite.pretrained_backbone().eval()).to(
            memory_format=torch.channels_last  # type: ignore[call-overload]
        )
        for p in self.net.parameters():
            p.requires_grad_(False)
        self._scale = 255.0 * float(lite.STD[0])  # every channel alike: grey first, then RGB
        self._shift = 255.0 * float(lite.MEAN[0])

    def _preprocess(self, pixels: np.ndarray) -> torch.Tensor:
        x = torch.from_numpy(np.asarray(pixels, dtype=np.float32))  # a new, writable array
        if tuple(x.shape[-2:]) != (self.side, self.side):
            x = F.interpolate(
                x, size=(self.side, self.side), mode="bilinear", align_corners=False, antialias=True
            )
        x = (x - self._shift) / self._scale
        x = x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x
        return x.contiguous(memory_format=torch.channels_last)

    def embed(
        self, pixels: np.ndarray, *, progress: Callable[[int, int], Any] | None = None
    ) -> np.ndarray:
        out = np.empty((len(pixels), self.dim), dtype=np.float32)
        with torch.inference_mode(), all_cores():
            for start in range(0, len(pixels), EMBED_BATCH):
                batch = self._preprocess(pixels[start : start + EMBED_BATCH])
                maps = F.adaptive_avg_pool2d(self.net(batch), GRID)
                out[start : start + len(batch)] = maps.flatten(1).numpy()
                if progress is not None:
                    progress(start + len(batch), len(pixels))
        return out


def fused_front(full: torch.nn.Module) -> torch.nn.Module:
    """The stem and the first BLOCKS blocks of a Lite0 backbone for inference: each batch norm
    folded into its convolution, TensorFlow's SAME padding fixed for inputs whose sides are
    multiples of 32 (what StaticSameConv2d computes), ReLU6 in place: the same numbers, with
    less work per image on a CPU."""
    layers: list[torch.nn.Module] = [FusedConv(full.conv_stem, full.bn0, act=True)]
    blocks: Any = full.blocks
    for block in list(blocks)[:BLOCKS]:
        expand = getattr(block, "expand_conv", None)
        parts = [FusedConv(expand, block.bn0, act=True)] if expand is not None else []
        parts += [
            FusedConv(block.depthwise_conv, block.bn1, act=True),
            FusedConv(block.project_conv, block.bn2, act=False),
        ]
        layers.append(Residual(*parts) if block.residual else torch.nn.Sequential(*parts))
    return torch.nn.Sequential(*layers)


class FusedConv(torch.nn.Module):
    """A convolution with its batch norm folded in, its padding fixed, ReLU6 if `act`."""

    def __init__(self, conv: Any, bn: Any, *, act: bool) -> None:
        super().__init__()
        scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        k, s = conv.kernel_size[0], conv.stride[0]
        symmetric = s == 1 and k % 2 == 1  # SAME padding is then k // 2 on every side
        total = max(k - s, 0)
        self.pad = [] if symmetric or total == 0 else [total // 2, total - total // 2] * 2
        self.conv = torch.nn.Conv2d(
            conv.in_channels,
            conv.out_channels,
            k,
            stride=s,
            padding=k // 2 if symmetric else 0,
            groups=conv.groups,
            bias=True,
        )
        with torch.no_grad():
            self.conv.weight.copy_(conv.weight * scale.view(-1, 1, 1, 1))
            bias = self.conv.bias
            assert bias is not None  # bias=True above
            bias.copy_(bn.bias - bn.running_mean * scale)
        self.act = act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pad:
            x = F.pad(x, self.pad)
        x = self.conv(x)
        return F.hardtanh_(x, 0.0, 6.0) if self.act else x


class Residual(torch.nn.Sequential):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + super().forward(x)


@contextlib.contextmanager
def all_cores() -> Iterator[None]:
    """torch's intra-op threads = the idle cores this process may run on, restored after.

    Idle: the cores less the load average's other runnable processes (this one counts as
    one). On a 2-core machine with a load average of 12, two threads embedded 7-9x slower
    than one (each parallel region waits, spinning, for a thread the system has parked),
    while one thread kept its ~2,000 images/s."""
    before = torch.get_num_threads()
    torch.set_num_threads(idle_cores())
    try:
        yield
    finally:
        torch.set_num_threads(before)


def idle_cores() -> int:
    affinity = getattr(os, "sched_getaffinity", None)
    cores = len(affinity(0)) if affinity else (os.cpu_count() or 1)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    return int(min(cores, max(1, cores - max(0, round(load) - 1))))


def quick_embedder(*, size: tuple[int, int]) -> QuickEmbedder:
    """The embedder for images of `size`, loaded once per process (raises
    BackboneUnavailableError, a DlwError, when the weights package is not installed;
    ImportError without torch)."""
    return _load(input_side(size))


@functools.lru_cache(maxsize=2)
def _load(side: int) -> QuickEmbedder:
    return QuickEmbedder(side=side)
