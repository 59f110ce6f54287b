"""Per-class scores of the dense tasks, each with its bootstrap interval over images (the
resamples of dlworkflow.evaluate.scores, as every interval of the project).

- Detection: each class's AP (COCO AP@[.5:.95]) and AP@.5, measured by the task's own
  `scores` on the targets and outputs restricted to that class (the other classes' boxes
  become padding: class -1, score 0), so a class's AP is exactly what mAP averages.
- Segmentation: each class's IoU and Dice from per-image confusion matrices (rows: truth,
  columns: the most probable class; ignored pixels, value IGNORE, left out); a resample
  weights the images' matrices. Also each image's own IoU (the mean over the classes present
  in its truth or its prediction), for the worst images.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from dlworkflow.evaluate.task_scores import intervals

if TYPE_CHECKING:
    from dlworkflow.tasks import Task

IGNORE = 255  # encoded masks: pixels that are not judged
CHUNK = 64  # images whose pixels are counted at once


def only_class(y: np.ndarray, out: np.ndarray, c: int) -> tuple[np.ndarray, np.ndarray]:
    """Detection targets (N, K, 5) and outputs (N, K, 6) with every box of another class
    turned into padding."""
    y_c, out_c = np.array(y, copy=True), np.array(out, copy=True)
    y_c[y_c[..., 4] != c, 4] = -1
    other = out_c[..., 5] != c
    out_c[other, 4] = 0.0
    out_c[other, 5] = -1
    return y_c, out_c


def per_class_ap(
    task: Task,
    y: np.ndarray,
    out: np.ndarray,
    target: dict[str, Any],
    names: Sequence[str],
    *,
    n_resamples: int,
    confidence: float,
    seed: int,
) -> list[dict[str, Any]]:
    """Per class: its true boxes and detections (all scores) in the split, and its AP and
    AP@.5, each {value, low, high} (None where the class has no true box)."""
    entries = []
    for c, name in enumerate(names):
        y_c, out_c = only_class(y, out, c)

        def scorer(w: np.ndarray, y_c: np.ndarray = y_c, out_c: np.ndarray = out_c) -> Any:
            scores = task.scores(y_c, out_c, w, target)
            return {"ap": scores["map"], "ap50": scores["map50"]}

        boxes = int((y_c[..., 4] >= 0).sum())
        found = (
            intervals(scorer, len(y), n_resamples=n_resamples, confidence=confidence, seed=seed)
            if boxes
            else {k: {"value": None, "low": None, "high": None} for k in ("ap", "ap50")}
        )
        entries.append(
            {
                "class": str(name),
                "boxes": boxes,
                "detections": int(((out_c[..., 5] >= 0) & (out_c[..., 4] > 0)).sum()),
                **found,
            }
        )
    return entries


def confusions(y: np.ndarray, out: np.ndarray, k: int) -> np.ndarray:
    """Segmentation: int64 (N, k, k) per-image confusion matrices of the masks (N, H, W)
    against the most probable class of the probabilities (N, k, H, W)."""
    n = len(y)
    conf = np.zeros((n, k, k), dtype=np.int64)
    for start in range(0, n, CHUNK):
        truth = np.asarray(y[start : start + CHUNK]).astype(np.int64)
        pred = np.asarray(out[start : start + CHUNK]).argmax(axis=1)
        m = len(truth)
        valid = (truth != IGNORE) & (truth >= 0) & (truth < k)
        image = np.broadcast_to(np.arange(m)[:, None, None], truth.shape)
        flat = ((image * k + truth) * k + pred)[valid]
        conf[start : start + m] = np.bincount(flat, minlength=m * k * k).reshape(m, k, k)
    return conf


def iou_dice(conf: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-class IoU and Dice (..., k) of confusion matrices (..., k, k); NaN for a class
    absent from both truth and prediction."""
    conf = np.asarray(conf, dtype=np.float64)
    tp = np.diagonal(conf, axis1=-2, axis2=-1)
    fn = conf.sum(axis=-1) - tp
    fp = conf.sum(axis=-2) - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        union = tp + fp + fn
        iou = np.where(union > 0, tp / union, np.nan)
        dice = np.where(union > 0, 2 * tp / (2 * tp + fp + fn), np.nan)
    return iou, dice


def per_class_iou(
    conf: np.ndarray,
    names: Sequence[str],
    *,
    n_resamples: int,
    confidence: float,
    seed: int,
) -> list[dict[str, Any]]:
    """Per class: its true pixels and predicted pixels in the split, and its IoU and Dice,
    each {value, low, high} over resamples of the images."""
    k = len(names)
    flat = conf.reshape(len(conf), k * k).astype(np.float64)

    def scorer(w: np.ndarray) -> dict[str, np.ndarray]:
        iou, dice = iou_dice((w @ flat).reshape(len(w), k, k))
        return {
            **{f"iou {c}": iou[:, c] for c in range(k)},
            **{f"dice {c}": dice[:, c] for c in range(k)},
        }

    found = intervals(scorer, len(conf), n_resamples=n_resamples, confidence=confidence, seed=seed)
    total = conf.sum(axis=0)
    return [
        {
            "class": str(name),
            "pixels": int(total[c].sum()),
            "predicted_pixels": int(total[:, c].sum()),
            "iou": found[f"iou {c}"],
            "dice": found[f"dice {c}"],
        }
        for c, name in enumerate(names)
    ]


def image_scores(conf: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each image's IoU (the mean over the classes in its truth or its prediction; NaN for an
    image with every pixel ignored) and pixel accuracy."""
    iou, _ = iou_dice(conf)
    present = ~np.isnan(iou)
    count = present.sum(axis=1)
    mean_iou = np.where(
        count > 0, np.where(present, iou, 0.0).sum(axis=1) / np.maximum(count, 1), np.nan
    )
    total = conf.sum(axis=(1, 2)).astype(np.float64)
    correct = np.trace(conf, axis1=1, axis2=2).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        accuracy = np.where(total > 0, correct / total, np.nan)
    return mean_iou, accuracy
