"""Dense predictions (boxes, masks) in the REQUEST image's pixels, torch-free: what `dlw serve`
returns and `dlw predict` writes for object detection and semantic segmentation.

The network sees the image resized to the model's input size; the task's outputs
(`Bundle.outputs_of`, i.e. `task.outputs`: numpy decode + NMS for detection, softmax
probabilities for segmentation) are in that frame. Here they are brought back to the image as
the client sent it, (width, height) as shown (EXIF orientation applied):

    pred = image_prediction(bundle, out_row, (width, height), score_threshold=None)

- detection: {"boxes": [{"box": [x1, y1, x2, y2] in pixels of the image, "label", "score"}],
  "count"}: the boxes whose score reaches the threshold (the one tuned on validation,
  metadata.json "target" "score_threshold", unless the caller lowers or raises it within
  [MIN_SCORE_THRESHOLD, 1]), best first; the normalised coordinates scaled by the width and
  height, clipped to the image, rounded to 2 decimals.
- segmentation: {"mask_png": base64 PNG (8-bit grayscale, pixel value = index into
  "classes") at the image's size (nearest resize of the per-pixel most probable class),
  "classes", "class_share": {class: share of the returned mask's pixels}}.

The functions are chosen by the task's kind (`IMAGE_PREDICTIONS`), as every per-kind table.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from dlworkflow.runtime.bundle import Bundle

#: The lowest score threshold a request may ask for: the export's parity check covers every
#: box from here up (deploy/export/step.py), and lower scores are mostly noise.
MIN_SCORE_THRESHOLD = 0.05
DEFAULT_SCORE_THRESHOLD = 0.3  # a detector exported without a tuned threshold
_DECIMALS = 2


def score_threshold(target: dict[str, Any], requested: float | None = None) -> float:
    """The threshold boxes must reach: `requested` when given, else the tuned one."""
    if requested is not None:
        return float(requested)
    tuned = target.get("score_threshold")
    return float(tuned) if isinstance(tuned, (int, float)) else DEFAULT_SCORE_THRESHOLD


def kept_boxes(row: np.ndarray, threshold: float) -> np.ndarray:
    """The rows of one image's decoded boxes (K, 6) [x1, y1, x2, y2, score, class] that are
    real (class >= 0) and reach the threshold, best score first."""
    boxes = np.asarray(row, dtype=np.float64).reshape(-1, 6)
    keep = boxes[(boxes[:, 5] >= 0) & (boxes[:, 4] >= threshold) & (boxes[:, 4] > 0)]
    return keep[np.argsort(-keep[:, 4], kind="stable")]


def boxes_in_pixels(boxes: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(n, 4) normalised [x1, y1, x2, y2] -> pixels of an image of (width, height), clipped."""
    width, height = float(size[0]), float(size[1])
    scale = np.array([width, height, width, height])
    limit = np.array([width, height, width, height])
    return np.round(np.clip(boxes[:, :4] * scale, 0.0, limit), _DECIMALS)


def detection_prediction(
    row: np.ndarray,
    names: Sequence[str],
    target: dict[str, Any],
    size: tuple[int, int],
    threshold: float | None = None,
) -> dict[str, Any]:
    kept = kept_boxes(row, score_threshold(target, threshold))
    pixels = boxes_in_pixels(kept, size)
    boxes = [
        {
            "box": [float(v) for v in box],
            "label": str(names[int(k[5])]) if int(k[5]) < len(names) else str(int(k[5])),
            "score": round(float(k[4]), 6),
        }
        for box, k in zip(pixels, kept)
    ]
    return {"boxes": boxes, "count": len(boxes)}


def class_map(probabilities: np.ndarray) -> np.ndarray:
    """uint8 (H, W): the most probable class of each pixel of (C, H, W) probabilities."""
    return np.asarray(np.asarray(probabilities).argmax(axis=0), dtype=np.uint8)


def resize_nearest(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A class map resized to (width, height) by nearest neighbour (class values kept): the
    source pixel of output pixel i is floor((i + 0.5) * n_in / n_out), in exact integers."""
    height, width = mask.shape
    out_w, out_h = int(size[0]), int(size[1])
    if (out_w, out_h) == (width, height):
        return mask
    rows = ((2 * np.arange(out_h) + 1) * height) // (2 * out_h)
    cols = ((2 * np.arange(out_w) + 1) * width) // (2 * out_w)
    return np.ascontiguousarray(mask[rows[:, None], cols[None, :]])


def mask_png(mask: np.ndarray) -> bytes:
    """An 8-bit grayscale PNG of a class map (pixel value = class index)."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(mask, dtype=np.uint8), mode="L").save(
        buffer, format="PNG", optimize=False
    )
    return buffer.getvalue()


def class_shares(mask: np.ndarray, names: Sequence[str]) -> dict[str, float]:
    """{class: share of the mask's pixels}, every class (0.0 for the absent)."""
    counts = np.bincount(mask.ravel(), minlength=len(names))[: len(names)]
    total = max(1, int(mask.size))
    return {str(n): round(float(c) / total, 6) for n, c in zip(names, counts)}


def sized_mask(row: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The class map of (C, H, W) probabilities at (width, height)."""
    return resize_nearest(class_map(row), size)


def segmentation_prediction(
    row: np.ndarray,
    names: Sequence[str],
    target: dict[str, Any],
    size: tuple[int, int],
    threshold: float | None = None,
) -> dict[str, Any]:
    mask = sized_mask(row, size)
    return {
        "mask_png": base64.b64encode(mask_png(mask)).decode("ascii"),
        "classes": [str(n) for n in names],
        "class_share": class_shares(mask, names),
    }


#: Per target kind (task.kind): one prediction in the request image's pixels.
IMAGE_PREDICTIONS: dict[
    str,
    Callable[
        [np.ndarray, Sequence[str], dict[str, Any], tuple[int, int], float | None],
        dict[str, Any],
    ],
] = {"detection": detection_prediction, "segmentation": segmentation_prediction}


def sized_predictions(
    bundle: Bundle,
    outs: np.ndarray,
    sizes: Sequence[tuple[int, int]],
    *,
    threshold: float | None = None,
) -> list[dict[str, Any]]:
    """One prediction per row of a dense model's outputs, in the pixels of the image of that
    row's (width, height); a model of another kind: task.prediction of each row."""
    make = IMAGE_PREDICTIONS.get(bundle.task.kind)
    if make is None:
        return bundle.predictions_of(outs)
    names, target = list(bundle.classes), bundle.target
    return [
        make(row, names, target, (int(size[0]), int(size[1])), threshold)
        for row, size in zip(outs, sizes)
    ]
