"""Step 6: augmentation of dense targets: boxes and masks move with the image.

Object detection and semantic segmentation run the geometric ops of `augment:` (flip,
resized_crop, rotation, translate) through kornia's `AugmentationSequential` with the target
as a second data key, so the boxes ("bbox_xyxy") or the mask ("mask", nearest neighbour, the
ignore value kept) are moved exactly as the pixels are; colour ops (color_jitter) touch the
image only (kornia skips intensity ops for the other keys).

  detection     y float32 (B, K, 5): [x1, y1, x2, y2] normalised to 0..1, class index (-1:
                padding). Boxes go to kornia in pixels; afterwards each is clipped to the
                image and dropped when it left it or became degenerate (a side under
                MIN_SIDE pixels, or less than MIN_VISIBLE of its moved area still inside);
                classes travel unchanged. No rotation (a rotated box's envelope is not the
                object's box): augment.rotation is not applied to boxes. Affine padding is
                black (mirrored padding would show objects without boxes).
                augment.mosaic: with that probability a training image becomes a 2x2 mosaic
                of itself and three other images of the batch, each at half size, their
                boxes scaled and moved with them (YOLOv4's mosaic, within the batch).
  segmentation  y uint8 (B, H, W) class indices, 255 (data.ignore_index) = ignore; the
                affine warp pads by reflection, image and mask alike.

Random erasing is not applied to dense targets (it would hide objects the labels still
show), nor are mixup and cutmix (they blend one-hot classes).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from dlworkflow.train.dense_targets import (
    DATA_KEYS,
    MIN_SIDE,
    MIN_VISIBLE,
    MOSAIC,
    ROTATES,
    applied,
)

if TYPE_CHECKING:
    from dlworkflow.config import Augment

__all__ = ["DATA_KEYS", "MOSAIC", "ROTATES", "DenseAugment", "applied", "pipeline"]


def pipeline(cfg: Augment, *, kind: str, channels: int, size: tuple[int, int]) -> nn.Module | None:
    """kornia's AugmentationSequential over (image, target) for `kind`; None: no op on."""
    import kornia.augmentation as K
    from kornia.augmentation.base import _AugmentationBase

    ops: list[_AugmentationBase] = []
    if cfg.flip:
        ops.append(K.RandomHorizontalFlip(p=cfg.flip))
    if cfg.resized_crop:
        ops.append(K.RandomResizedCrop(size, scale=(1.0 - cfg.resized_crop, 1.0), p=1.0))
    degrees = cfg.rotation if kind in ROTATES else 0.0
    if degrees or cfg.translate:
        translate = (cfg.translate, cfg.translate) if cfg.translate else None
        padding = "reflection" if kind in ROTATES else "zeros"
        ops.append(
            K.RandomAffine(degrees=degrees, translate=translate, padding_mode=padding, p=1.0)
        )
    if cfg.color_jitter:
        colour = cfg.color_jitter if channels == 3 else 0.0  # saturation needs colour
        ops.append(
            K.ColorJitter(
                brightness=cfg.color_jitter, contrast=cfg.color_jitter, saturation=colour, p=1.0
            )
        )
    if not ops:
        return None
    return K.AugmentationSequential(*ops, data_keys=["input", DATA_KEYS[kind]])


class DenseAugment:
    """`(x, y) -> (x, y)`: one normalised training batch and its boxes or masks, augmented
    together. Seeded per (seed, epoch, batch) as BatchAugment (train/augment.py)."""

    def __init__(
        self,
        ops: nn.Module | None,
        *,
        kind: str,
        mosaic: float,
        seed: int,
        channels: int,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
    ) -> None:
        self.ops, self.kind = ops, kind
        self.mosaic = float(mosaic) if kind in MOSAIC else 0.0
        self.seed = int(seed)
        self.mean = [0.0] * channels if mean is None else [float(m) for m in mean]
        self.std = [1.0] * channels if std is None else [float(s) for s in std]
        self.epoch, self.calls = 0, 0

    mixes = False  # never soft targets

    def start_epoch(self, epoch: int, model: object = None, optimizer: object = None) -> None:
        self.epoch, self.calls = int(epoch), 0

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        from dlworkflow.train.augment import _derived_seed

        self.calls += 1
        seed = _derived_seed(self.seed, self.epoch, self.calls)
        devices = [x.device.index or 0] if x.device.type == "cuda" else []
        with torch.no_grad(), torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            dtype = x.dtype
            mean = torch.tensor(self.mean, device=x.device, dtype=torch.float32).view(1, -1, 1, 1)
            std = torch.tensor(self.std, device=x.device, dtype=torch.float32).view(1, -1, 1, 1)
            pixels = (x.float() * std + mean).clamp_(0.0, 1.0)
            if self.mosaic:
                pixels, y = mosaic(pixels, y, self.mosaic, np.random.default_rng(seed))
            if self.ops is not None:
                boxes = DATA_KEYS[self.kind] == "bbox_xyxy"
                pixels, y = self._boxes(pixels, y) if boxes else self._mask(pixels, y)
            return ((pixels - mean) / std).to(dtype), y

    def _boxes(self, pixels: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        assert self.ops is not None
        h, w = pixels.shape[-2:]
        scale = torch.tensor([w, h, w, h], dtype=torch.float32, device=y.device)
        boxes = y[..., :4].float() * scale
        out, moved = self.ops(pixels, boxes)
        return out, keep_boxes(moved, y[..., 4], size=(h, w))

    def _mask(self, pixels: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        assert self.ops is not None
        out, mask = self.ops(pixels, y[:, None].float())
        return out, mask[:, 0].round().clamp_(0, 255).to(y.dtype)


def keep_boxes(
    moved: torch.Tensor, classes: torch.Tensor, *, size: tuple[int, int]
) -> torch.Tensor:
    """(B, K, 5) normalised boxes from moved pixel boxes (B, K, 4) and their classes: clipped
    to the image; a box that left it or became degenerate turns into padding (class -1);
    the kept boxes of each image first, K kept as it was."""
    h, w = size
    x1, y1, x2, y2 = moved.unbind(-1)
    lo_x, hi_x = torch.minimum(x1, x2), torch.maximum(x1, x2)
    lo_y, hi_y = torch.minimum(y1, y2), torch.maximum(y1, y2)
    area = (hi_x - lo_x) * (hi_y - lo_y)
    cx1, cx2 = lo_x.clamp(0, w), hi_x.clamp(0, w)
    cy1, cy2 = lo_y.clamp(0, h), hi_y.clamp(0, h)
    inside = (cx2 - cx1) * (cy2 - cy1)
    keep = (
        (classes >= 0)
        & (cx2 - cx1 >= MIN_SIDE)
        & (cy2 - cy1 >= MIN_SIDE)
        & (inside >= MIN_VISIBLE * area.clamp(min=1e-6))
    )
    scale = torch.tensor([w, h, w, h], dtype=torch.float32, device=moved.device)
    boxes = torch.stack([cx1, cy1, cx2, cy2], dim=-1) / scale
    out = torch.cat([boxes, classes[..., None].float()], dim=-1)
    out = torch.where(keep[..., None], out, _padding(out))
    order = torch.argsort((~keep).to(torch.int8), dim=1, stable=True)  # kept boxes first
    return torch.gather(out, 1, order[..., None].expand_as(out)).to(torch.float32)


def _padding(like: torch.Tensor) -> torch.Tensor:
    pad = torch.zeros_like(like)
    pad[..., 4] = -1.0
    return pad


def mosaic(
    pixels: torch.Tensor, y: torch.Tensor, p: float, rng: np.random.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Each image becomes, with probability `p`, a 2x2 mosaic of itself and three other
    images of the batch at half size; boxes (B, K, 5, normalised) are halved and moved with
    their image, so K grows up to 4K (padding class -1)."""
    n, _, h, w = pixels.shape
    chosen = np.flatnonzero(rng.random(n) < p)
    if not len(chosen):
        return pixels, y
    h2, w2 = h // 2, w // 2
    small = nn.functional.interpolate(pixels, size=(h2, w2), mode="bilinear", antialias=True)
    out = pixels.clone()
    rows: list[torch.Tensor] = [y[i] for i in range(n)]
    for i in chosen:
        others = [j for j in range(n) if j != i] or [int(i)]
        picks = [int(i), *rng.choice(others, size=3, replace=len(others) < 3).tolist()]
        canvas = torch.zeros_like(pixels[i])
        parts = []
        for q, j in enumerate(picks):
            qy, qx = divmod(q, 2)
            canvas[:, qy * h2 : (qy + 1) * h2, qx * w2 : (qx + 1) * w2] = small[j]
            boxes = y[j][y[j][:, 4] >= 0].clone()
            boxes[:, [0, 2]] = boxes[:, [0, 2]] * (w2 / w) + qx * w2 / w
            boxes[:, [1, 3]] = boxes[:, [1, 3]] * (h2 / h) + qy * h2 / h
            parts.append(boxes)
        out[i] = canvas
        rows[i] = torch.cat(parts) if parts else y[i][:0]
    k = max(1, max(len(r[r[:, 4] >= 0]) if len(r) else 0 for r in rows))
    return out, torch.stack([_padded(r[r[:, 4] >= 0], k) for r in rows])


def _padded(boxes: torch.Tensor, k: int) -> torch.Tensor:
    pad = torch.zeros((k - len(boxes), 5), dtype=boxes.dtype, device=boxes.device)
    pad[:, 4] = -1.0
    return torch.cat([boxes[:k], pad])


# ---------------------------------------------------------------- the preview's overlays

PALETTE = [
    (230, 25, 75),
    (60, 180, 75),
    (255, 225, 25),
    (0, 130, 200),
    (245, 130, 48),
    (145, 30, 180),
    (70, 240, 240),
    (240, 50, 230),
    (210, 245, 60),
    (250, 190, 212),
]
IGNORED = (128, 128, 128)


def draw_boxes(img: Any, y: np.ndarray) -> Any:
    """The boxes of one image's y (K, 5, normalised) drawn on the PIL image, one colour per
    class."""
    from PIL import ImageDraw

    w, h = img.size
    draw = ImageDraw.Draw(img)
    for x1, y1, x2, y2, c in np.asarray(y, dtype=np.float64):
        if c < 0:
            continue
        colour = PALETTE[int(c) % len(PALETTE)]
        draw.rectangle([x1 * w, y1 * h, x2 * w - 1, y2 * h - 1], outline=colour, width=1)
    return img


def draw_mask(img: Any, y: np.ndarray, *, alpha: float = 0.45) -> Any:
    """One image's mask (H, W class indices; 0 background; 255 ignored, grey) blended over
    the PIL image, one colour per class."""
    from PIL import Image

    mask = np.asarray(Image.fromarray(np.asarray(y, dtype=np.uint8)).resize(img.size, 0))
    base = np.asarray(img.convert("RGB"), dtype=np.float64)
    colours = np.array([(0, 0, 0), *PALETTE[1:], *PALETTE[:1]] * 26, dtype=np.float64)[:256]
    colours[255] = IGNORED
    paint = colours[mask]
    share = np.where(mask > 0, alpha, 0.0)[..., None]
    out = base * (1 - share) + paint * share
    return Image.fromarray(out.round().astype(np.uint8), "RGB")


# the preview (train/augment.py augment_preview) draws each kind's target with these
OVERLAYS = {"detection": draw_boxes, "segmentation": draw_mask}
