"""Pretrained image embeddings: uint8 pixels in, one float32 feature vector per image out.

    emb = image_embedder()                 # EfficientNet-Lite0, ImageNet weights, offline
    vectors = emb.embed(pixels)            # (N, C, H, W) uint8, C in {1, 3} -> (N, 1280)

Used by exploration (embedding map, label-issue search) and for frozen-feature baselines.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from dlworkflow.errors import DlwError
from dlworkflow.models import efficientnet_lite
from dlworkflow.registry import Registry

IMAGE_BACKBONES: Registry[Callable[[], torch.nn.Module]] = Registry("image backbone")
IMAGE_BACKBONES.add("efficientnet_lite0", efficientnet_lite.pretrained_backbone)


class EmbedInputError(DlwError):
    """The array given to an embedder does not have the expected shape or type."""


class ImageEmbedder:
    """A frozen pretrained backbone with its own preprocessing.

    `embed` replicates grey images to RGB, resizes them to `input_size` (bilinear,
    antialiased), normalises them as the backbone was trained ((x - 127) / 128) and returns the
    globally average-pooled penultimate features, computed in batches under inference mode.
    """

    def __init__(
        self,
        name: str,
        backbone: torch.nn.Module,
        *,
        input_size: int,
        mean: tuple[float, ...],
        std: tuple[float, ...],
        dim: int,
    ) -> None:
        self.name = name
        # channels-last runs the depthwise convolutions ~1.5x faster on CPU
        # (torch's stubs of Module.to lack memory_format, which it accepts)
        self.backbone = backbone.eval().to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        for p in self.backbone.parameters():
            p.requires_grad_(False)
        self.input_size = input_size
        self.dim = dim
        self._mean = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1) * 255.0
        self._std = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1) * 255.0

    def __repr__(self) -> str:
        return f"ImageEmbedder({self.name!r}, input_size={self.input_size}, dim={self.dim})"

    def preprocess(self, pixels: np.ndarray) -> torch.Tensor:
        """uint8 (N, C, H, W) -> normalised float32 (N, 3, input_size, input_size)."""
        x = torch.from_numpy(np.ascontiguousarray(pixels)).float()
        channels = x.shape[1]
        size = (self.input_size, self.input_size)
        if tuple(x.shape[-2:]) != size:
            x = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)
        # the same mean and std on every channel: grey is normalised, then replicated
        x = (x - self._mean[:, :channels]) / self._std[:, :channels]
        x = x.expand(-1, 3, -1, -1) if channels == 1 else x
        return x.contiguous(memory_format=torch.channels_last)

    def embed(self, pixels: np.ndarray, *, batch_size: int = 16) -> np.ndarray:
        """(N, C, H, W) uint8 images, C in {1, 3} -> (N, dim) float32 features.

        Small batches are faster on CPU (they stay in cache): 8-16 beat 64 by ~2x at 224.
        """
        _check_pixels(pixels)
        if batch_size < 1:
            raise EmbedInputError("batch_size must be at least 1.", received=str(batch_size))
        out = np.empty((len(pixels), self.dim), dtype=np.float32)
        with torch.inference_mode():
            for start in range(0, len(pixels), batch_size):
                batch = self.preprocess(pixels[start : start + batch_size])
                out[start : start + len(batch)] = self.backbone(batch).numpy()
        return out


def _check_pixels(pixels: np.ndarray) -> None:
    ok = (
        isinstance(pixels, np.ndarray)
        and pixels.dtype == np.uint8
        and pixels.ndim == 4
        and pixels.shape[1] in (1, 3)
        and min(pixels.shape[2:]) >= 1
    )
    if not ok:
        shape = getattr(pixels, "shape", None)
        dtype = getattr(pixels, "dtype", type(pixels).__name__)
        raise EmbedInputError(
            "Cannot embed these images: expected a uint8 array of shape (N, C, H, W).",
            expected="numpy uint8, 4 dimensions, C = 1 (grey) or 3 (RGB), channels first",
            received=f"{type(pixels).__name__} of dtype {dtype} and shape {shape}",
            fix="convert with np.asarray(images, dtype=np.uint8) and move channels first "
            "(images.transpose(0, 3, 1, 2) for (N, H, W, C))",
        )


def image_embedder(
    name: str = "efficientnet_lite0", *, input_size: int = efficientnet_lite.INPUT_SIZE
) -> ImageEmbedder:
    """The pretrained image embedder `name`, loaded once per process (offline).

    `input_size` trades speed for quality: 224 is what the backbone was trained at; 112 is
    ~8x faster on a 2-core CPU and a little less accurate (measurements in the module doc of
    tests/models/test_backbones.py).
    Raises BackboneUnavailableError when the weights package is not installed.
    """
    IMAGE_BACKBONES.get(name)  # unknown names raise with the closest match
    if not 32 <= int(input_size) <= 1024:
        raise EmbedInputError("input_size must be between 32 and 1024.", received=str(input_size))
    return _load_image_embedder(name, int(input_size))


@functools.lru_cache(maxsize=4)
def _load_image_embedder(name: str, input_size: int) -> ImageEmbedder:
    return ImageEmbedder(
        name,
        IMAGE_BACKBONES.get(name)(),
        input_size=input_size,
        mean=efficientnet_lite.MEAN,
        std=efficientnet_lite.STD,
        dim=efficientnet_lite.NUM_FEATURES,
    )
