"""The parity check of dense models (step.py PARITY's "detection" and "segmentation"): what
"ONNX Runtime computes the same as PyTorch" means for boxes and for masks.

Both sides go through the same torch-free post-processing (`task.outputs`: numpy decode and
NMS, or softmax), so what differs is the network's arithmetic only.

- detection: per image, the boxes at or above the floor (the lower of the tuned score
  threshold and the lowest threshold a request may ask for, runtime/dense.py
  MIN_SCORE_THRESHOLD) must match one to one: the same class, IoU >= MIN_BOX_IOU and scores
  within SCORE_TOLERANCE. A box whose score lies within the tolerance of a cut (the floor, or
  the score of the last of the K boxes kept when all K are filled) may fall on either side of
  it in the other runtime and is not required to have a partner. The image agrees when every
  other box has one (so the counts agree too); `difference` is the largest score difference
  of matched boxes.
- segmentation: the share of pixels with the same most probable class (`agree` returns one
  value per pixel; their mean is the pixel agreement) and the largest probability
  difference.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from dlworkflow.tasks.boxes import iou_matrix

if TYPE_CHECKING:
    from dlworkflow.tasks import Task

SCORE_TOLERANCE = 1e-3
PROBABILITY_TOLERANCE = 1e-3
MIN_BOX_IOU = 0.99


def box_floor(target: dict[str, Any]) -> float:
    """The lowest score of the boxes the parity check compares."""
    from dlworkflow.runtime.dense import MIN_SCORE_THRESHOLD, score_threshold

    return min(score_threshold(target), MIN_SCORE_THRESHOLD)


def _cut(row: np.ndarray, floor: float) -> float:
    """The score below which a box of this image may be missing in the other runtime."""
    real = row[row[:, 5] >= 0]
    full = len(real) == len(row) and len(row) > 0  # all K slots filled: the top-k cut
    return max(floor, float(real[:, 4].min())) if full else floor


def match_image(a: np.ndarray, b: np.ndarray, floor: float) -> tuple[bool, float]:
    """(every clear box of both images has a partner, the largest score difference of the
    matched pairs) for one image's decoded boxes (K, 6) from two runtimes."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 6)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 6)
    cut = max(_cut(a, floor), _cut(b, floor))
    sa = a[(a[:, 5] >= 0) & (a[:, 4] >= cut - SCORE_TOLERANCE)]
    sb = b[(b[:, 5] >= 0) & (b[:, 4] >= cut - SCORE_TOLERANCE)]
    clear_a = sa[:, 4] >= cut + SCORE_TOLERANCE
    clear_b = sb[:, 4] >= cut + SCORE_TOLERANCE
    iou = iou_matrix(sa[:, :4], sb[:, :4]) if len(sa) and len(sb) else np.zeros((len(sa), len(sb)))
    fits = (
        (iou >= MIN_BOX_IOU)
        & (sa[:, None, 5] == sb[None, :, 5])
        & (np.abs(sa[:, None, 4] - sb[None, :, 4]) <= SCORE_TOLERANCE)
    )
    used = np.zeros(len(sb), dtype=bool)
    matched_a = np.zeros(len(sa), dtype=bool)
    worst = 0.0
    for i in np.argsort(-sa[:, 4], kind="stable"):
        candidates = np.flatnonzero(fits[i] & ~used)
        if not len(candidates):
            continue
        j = candidates[int(np.argmax(iou[i, candidates]))]
        used[j] = matched_a[i] = True
        worst = max(worst, abs(float(sa[i, 4] - sb[j, 4])))
    ok = bool(np.all(matched_a | ~clear_a) and np.all(used | ~clear_b))
    return ok, worst


def boxes_agree(task: Task, a: np.ndarray, b: np.ndarray, target: dict[str, Any]) -> np.ndarray:
    """Bool per image: its boxes match (see the module's docstring)."""
    floor = box_floor(target)
    return np.array([match_image(x, y, floor)[0] for x, y in zip(a, b)], dtype=bool)


def box_difference(task: Task, a: np.ndarray, b: np.ndarray, target: dict[str, Any]) -> float:
    """The largest score difference of matched boxes (NaN if a score is NaN)."""
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        return float("nan")
    floor = box_floor(target)
    return max((match_image(x, y, floor)[1] for x, y in zip(a, b)), default=0.0)


def pixels_agree(task: Task, a: np.ndarray, b: np.ndarray, target: dict[str, Any]) -> np.ndarray:
    """Bool per pixel (flattened): the same most probable class."""
    return np.asarray(np.argmax(a, axis=1) == np.argmax(b, axis=1)).ravel()
