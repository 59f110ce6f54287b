"""Segmentation masks as manifest labels: compact JSON with a run-length encoded mask.

    label = mask_to_label(mask, ["background", "cat", "dog"], ignore=255)
    # '{"size":[W,H],"classes":["background","cat","dog"],"rle":[0,812,1,40,-1,3,...]}'
    mask = label_to_mask(label, model_names, size=(56, 56))   # uint8 (H, W), 255 = ignore

The runs cover the row-major flattened mask: each run is (index into "classes", length), the
ignore value is written as index -1. `label_to_mask` maps the label's class names to the
indices of `names` (the model's classes; a class the model does not know becomes the ignore
value) and resizes with nearest neighbour (no new class values appear). Every label is
checked before it is decoded (`parse_label`): size limits, run lengths that cover the image
exactly, class indices in range; a bad one raises TargetError with the reason (quarantined).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from dlworkflow.tasks.base import TargetError

IGNORE = 255  # the encoded mask's ignore value (data.ignore_index's default)
IGNORE_RUN = -1  # how a label's runs write the ignore value
MAX_PIXELS = 89_478_485  # as data.max_image_pixels (Pillow's decompression-bomb limit)
MAX_SIDE = 65_500  # as data.max_image_side
MAX_CLASSES = 255  # class indices 0..254: 255 is the ignore value of the uint8 masks


@dataclass(frozen=True)
class MaskLabel:
    """A checked label: size (W, H), class names, and runs as (index, length) arrays."""

    size: tuple[int, int]
    classes: tuple[str, ...]
    values: np.ndarray  # int64 (R,): class index, -1 = ignore
    lengths: np.ndarray  # int64 (R,)

    def present(self) -> list[str]:
        """The class names that cover at least one pixel, in the label's order."""
        used = set(np.unique(self.values[self.values >= 0]).tolist())
        return [c for i, c in enumerate(self.classes) if i in used]

    def pixel_counts(self) -> dict[str, int]:
        """Pixels of each class present (ignored pixels not counted)."""
        counts = np.bincount(
            self.values[self.values >= 0],
            weights=self.lengths[self.values >= 0],
            minlength=len(self.classes),
        )
        return {c: int(n) for c, n in zip(self.classes, counts) if n > 0}

    def dump(self) -> str:
        runs = np.stack([self.values, self.lengths], axis=1).reshape(-1).tolist()
        return _dump(self.size, self.classes, runs)


def _dump(size: tuple[int, int], classes: Sequence[str], runs: list[int]) -> str:
    body = {"size": [int(size[0]), int(size[1])], "classes": list(classes), "rle": runs}
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False)


def mask_to_label(mask: np.ndarray, names: Sequence[str], ignore: int | None = IGNORE) -> str:
    """The label of a (H, W) integer mask whose values index `names` (`ignore`: the value of
    unlabelled pixels, written as run index -1). ValueError for values outside `names`."""
    mask = np.asarray(mask)
    if mask.ndim != 2 or mask.size == 0:
        raise ValueError(f"a mask is a non-empty (H, W) array, got shape {mask.shape}")
    if len(names) > MAX_CLASSES or len(set(names)) != len(names):
        raise ValueError(f"names must be at most {MAX_CLASSES} distinct class names")
    flat = mask.reshape(-1).astype(np.int64)
    if ignore is not None:
        flat = np.where(flat == int(ignore), IGNORE_RUN, flat)
    bad = (flat < IGNORE_RUN) | (flat >= len(names))
    if bad.any():
        raise ValueError(
            f"mask value {int(flat[bad][0])} is not a class index (0..{len(names) - 1})"
        )
    starts = np.concatenate([[0], np.flatnonzero(np.diff(flat)) + 1])
    lengths = np.diff(np.append(starts, len(flat)))
    runs = np.stack([flat[starts], lengths], axis=1).reshape(-1).tolist()
    return _dump((mask.shape[1], mask.shape[0]), [str(n) for n in names], runs)


def parse_label(label: Any, *, max_pixels: int = MAX_PIXELS, max_side: int = MAX_SIDE) -> MaskLabel:
    """A label checked and split into its parts; TargetError with the reason otherwise."""
    if not isinstance(label, str):
        raise TargetError(f"mask label is {type(label).__name__}, not JSON text")
    try:
        body = json.loads(label)
    except json.JSONDecodeError as exc:
        raise TargetError(f"mask label is not valid JSON ({exc.msg})") from None
    except ValueError as exc:  # e.g. a number beyond the integer-digit limit
        raise TargetError(f"mask label is not valid JSON ({str(exc)[:60]})") from None
    if not isinstance(body, dict) or not {"size", "classes", "rle"} <= set(body):
        raise TargetError('mask label lacks "size", "classes" or "rle"')
    size, classes, rle = body["size"], body["classes"], body["rle"]
    if not (
        isinstance(size, list)
        and len(size) == 2
        and all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in size)
    ):
        raise TargetError(f"mask size {str(size)[:40]} is not [width, height] in pixels")
    width, height = size
    if width > max_side or height > max_side or width * height > max_pixels:
        raise TargetError(
            f"mask of {width}x{height} pixels exceeds the limit "
            f"({max_pixels:,} pixels, side {max_side:,})"
        )
    if (
        not isinstance(classes, list)
        or not classes
        or len(classes) > MAX_CLASSES
        or not all(isinstance(c, str) and c for c in classes)
        or len(set(classes)) != len(classes)
    ):
        raise TargetError(f'mask "classes" must be 1 to {MAX_CLASSES} distinct names')
    runs = _runs(rle)
    values, lengths = runs[0::2], runs[1::2]
    out_of_range = (values < IGNORE_RUN) | (values >= len(classes))
    if out_of_range.any():
        raise TargetError(
            f"mask class index {int(values[out_of_range][0])} out of range "
            f"(0..{len(classes) - 1}, or -1 for ignore)"
        )
    if (lengths <= 0).any():
        raise TargetError("mask run of length <= 0")
    total = int(lengths.sum())
    if total != width * height:
        raise TargetError(
            f"mask runs cover {total:,} pixels, not {width}x{height} = {width * height:,}"
        )
    return MaskLabel((width, height), tuple(classes), values, lengths)


def _runs(rle: Any) -> np.ndarray:
    if not isinstance(rle, list) or not rle or len(rle) % 2:
        raise TargetError('mask "rle" must be a non-empty list of (class, length) pairs')
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in rle):
        raise TargetError('mask "rle" holds a value that is not an integer')
    return np.asarray(rle, dtype=np.int64)


def label_to_mask(
    label: str | MaskLabel,
    names: Sequence[str],
    *,
    size: tuple[int, int] | None = None,
    ignore: int = IGNORE,
) -> np.ndarray:
    """uint8 (H, W) of indices into `names` (the model's classes); `ignore` for unlabelled
    pixels and for classes not in `names`; nearest-neighbour resized to `size` (H, W)."""
    parsed = label if isinstance(label, MaskLabel) else parse_label(label)
    index = {str(n): i for i, n in enumerate(names)}
    table = np.array(
        [index.get(c, ignore) for c in parsed.classes] + [ignore], dtype=np.uint8
    )  # position -1 (the last) maps the ignore run
    width, height = parsed.size
    mask = np.repeat(table[parsed.values], parsed.lengths).reshape(height, width)
    return mask if size is None else resize_nearest(mask, size)


def resize_nearest(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(H, W) -> size (H', W') by nearest neighbour on pixel centres (as PIL's NEAREST and
    torch's "nearest-exact")."""
    out_h, out_w = int(size[0]), int(size[1])
    if out_h <= 0 or out_w <= 0:
        raise ValueError(f"size must be positive (height, width), got {size}")
    in_h, in_w = mask.shape[:2]
    if (in_h, in_w) == (out_h, out_w):
        return mask
    rows = np.minimum(((np.arange(out_h) + 0.5) * in_h / out_h).astype(np.int64), in_h - 1)
    cols = np.minimum(((np.arange(out_w) + 0.5) * in_w / out_w).astype(np.int64), in_w - 1)
    resized: np.ndarray = mask[rows[:, None], cols[None, :]]
    return resized
