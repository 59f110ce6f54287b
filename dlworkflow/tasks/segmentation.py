"""Semantic segmentation: a class for every pixel of an image.

The manifest's label is a run-length encoded mask (tasks/masks.py: `{"size":[W,H],
"classes":[...],"rle":[...]}`). Encoded targets are uint8 masks (N, H, W) at the network's
input size, 255 where a pixel is not judged (data.ignore_index, or a class the model does not
know). The network outputs (N, C, H, W) logits, trained with per-pixel cross-entropy that
skips ignored pixels; `outputs` are the per-pixel class probabilities (softmax).

Metrics come from per-image confusion matrices (N, C, C), computed once and summed with each
bootstrap row's weights: mIoU (the mean IoU over the classes present in the truth or the
prediction), mean Dice over the same classes, and pixel accuracy. Ignored pixels count in
none of them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from dlworkflow.tasks.base import MetricSpec, TargetError, Task
from dlworkflow.tasks.masks import IGNORE, label_to_mask, parse_label

if TYPE_CHECKING:
    import torch

BACKGROUND = "background"


class Segmentation(Task):
    kind = "segmentation"
    default_metric = "miou"
    example_target = "0.6"
    companion_metric = "pixel_accuracy"
    dense = True
    metrics = (
        MetricSpec(
            "miou",
            description="mean over the classes (present in truth or prediction) of "
            "intersection over union",
        ),
        MetricSpec("dice", description="mean over the same classes of the Dice coefficient"),
        MetricSpec("pixel_accuracy", description="share of judged pixels whose class is right"),
    )

    @property
    def name(self) -> str:
        return "semantic-segmentation"

    # --- reading targets --------------------------------------------------------------------

    def parse_target(self, raw: Any, *, column: str) -> str:
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            raise TargetError(f"no mask (empty {column})")
        return parse_label(raw).dump()

    def unknown_labels(self, target: str, allowed: set[str]) -> list[str]:
        return [c for c in parse_label(target).present() if c not in allowed]

    def target_counts(self, counts: dict[str, int]) -> dict[str, int]:
        """Images in which each class appears."""
        out: Counter[str] = Counter()
        for target, n in counts.items():
            for name in parse_label(target).present():
                out[name] += n
        return dict(sorted(out.items()))

    def output_names(self, targets: Sequence[str]) -> list[str]:
        """Every class the labels name: "background" (else the labels' first class) first,
        then the rest sorted."""
        names: set[str] = set()
        firsts: Counter[str] = Counter()
        for target in set(map(str, targets)):
            classes = parse_label(target).classes
            names.update(classes)
            firsts[classes[0]] += 1
        if not names:
            return []
        first = BACKGROUND if BACKGROUND in names else min(firsts, key=lambda c: (-firsts[c], c))
        return [first, *sorted(names - {first})]

    def strata(self, targets: Sequence[str]) -> list[str]:
        """The class covering the most pixels, the label's first class (background) aside;
        the first class when nothing else is present."""
        out = []
        for target in targets:
            parsed = parse_label(target)
            counts = parsed.pixel_counts()
            others = {c: n for c, n in counts.items() if c != parsed.classes[0]}
            out.append(min(others, key=lambda c: (-others[c], c)) if others else parsed.classes[0])
        return out

    # --- the head ---------------------------------------------------------------------------

    def encode(
        self, targets: Sequence[Any], names: Sequence[str], *, size: tuple[int, int] | None = None
    ) -> np.ndarray:
        """uint8 (N, H, W) class indices into `names`, 255 = ignore; `size` (H, W): resized
        (nearest); None: the labels' own size (all alike)."""
        masks = [label_to_mask(str(t), names, size=size, ignore=IGNORE) for t in targets]
        if not masks:
            h, w = size or (0, 0)
            return np.zeros((0, h, w), dtype=np.uint8)
        shapes = {m.shape for m in masks}
        if len(shapes) > 1:
            raise ValueError(f"masks of different sizes {sorted(shapes)[:3]}: give size=(H, W)")
        return np.stack(masks)

    def known(self, y: np.ndarray) -> np.ndarray:
        """Masks with at least one judged pixel."""
        y = np.asarray(y)
        judged: np.ndarray = (y != IGNORE).reshape(len(y), -1).any(axis=1)
        return judged

    def loss(
        self,
        logits: torch.Tensor,
        y: torch.Tensor,
        target: dict[str, Any],
        *,
        weight: torch.Tensor | None = None,
        label_smoothing: float = 0.0,
    ) -> torch.Tensor:
        from torch import nn

        y = y.long()
        if not bool((y != IGNORE).any()):  # nothing judged in this batch
            return logits.sum() * 0.0
        return nn.functional.cross_entropy(
            logits, y, weight=weight, ignore_index=IGNORE, label_smoothing=label_smoothing
        )

    def outputs(self, logits: np.ndarray, target: dict[str, Any]) -> np.ndarray:
        z = np.asarray(logits, dtype=np.float32)
        z = z - z.max(axis=1, keepdims=True)
        e = np.exp(z)
        proba: np.ndarray = e / e.sum(axis=1, keepdims=True)
        return proba

    # --- metrics ----------------------------------------------------------------------------

    def scores(
        self, y: np.ndarray, out: np.ndarray, weights: np.ndarray, target: dict[str, Any]
    ) -> dict[str, np.ndarray]:
        conf = confusion_matrices(y, out)  # (N, C, C)
        n, c = conf.shape[0], conf.shape[1]
        summed = (np.asarray(weights, dtype=np.float64) @ conf.reshape(n, c * c)).reshape(-1, c, c)
        return metrics_from_confusion(summed)

    # --- predictions ------------------------------------------------------------------------

    def prediction(
        self, out: np.ndarray, names: Sequence[str], target: dict[str, Any]
    ) -> dict[str, Any]:
        """{"mask_png": base64 PNG of the class-index mask, "classes": names, "class_share":
        {name: share of the pixels}}."""
        import base64
        import io

        from PIL import Image

        mask = predicted_mask(np.asarray(out)[None])[0]
        buffer = io.BytesIO()
        Image.fromarray(mask, mode="L").save(buffer, format="PNG", optimize=True)
        return {
            "mask_png": base64.b64encode(buffer.getvalue()).decode("ascii"),
            "classes": list(names),
            "class_share": dict(zip(names, class_shares(mask[None], len(names))[0].tolist())),
        }

    def prediction_columns(
        self, out: np.ndarray, names: Sequence[str], target: dict[str, Any]
    ) -> dict[str, list[Any]]:
        """share_<class>: the share of each image's pixels predicted as that class."""
        shares = class_shares(predicted_mask(out), len(names))
        return {
            f"share_{name}": [f"{float(s):.6f}" for s in shares[:, j]]
            for j, name in enumerate(names)
        }


# ------------------------------------------------------------------------- mask arithmetic


def predicted_mask(out: np.ndarray) -> np.ndarray:
    """uint8 (N, H, W): the most probable class of each pixel of (N, C, H, W) outputs; an
    (N, H, W) array is taken as class indices already."""
    out = np.asarray(out)
    if out.ndim == 3:
        return out.astype(np.uint8)
    if out.ndim != 4:
        raise ValueError(f"segmentation outputs are (N, C, H, W), got shape {out.shape}")
    mask: np.ndarray = out.argmax(axis=1).astype(np.uint8)
    return mask


def class_shares(masks: np.ndarray, num_classes: int) -> np.ndarray:
    """float64 (N, C): each class's share of each mask's pixels (255 counts in no class)."""
    flat = np.asarray(masks).reshape(len(masks), -1).astype(np.int64)
    counts = np.stack([np.bincount(row[row < num_classes], minlength=num_classes) for row in flat])
    return counts / max(flat.shape[1], 1) if len(flat) else np.zeros((0, num_classes))


def confusion_matrices(y: np.ndarray, out: np.ndarray) -> np.ndarray:
    """int64 (N, C, C) [truth, prediction] pixel counts per image; pixels whose truth is the
    ignore value (or outside 0..C-1) are left out."""
    out = np.asarray(out)
    pred = predicted_mask(out).astype(np.int64)
    c = int(out.shape[1]) if out.ndim == 4 else int(max(pred.max(initial=0), 0) + 1)
    truth = np.asarray(y).astype(np.int64)
    if truth.shape != pred.shape:
        raise ValueError(f"masks {truth.shape} and predictions {pred.shape} differ in shape")
    n = len(truth)
    valid = truth < c
    rows = np.broadcast_to(np.arange(n)[:, None, None], truth.shape)
    cells = (rows[valid] * c + truth[valid]) * c + pred[valid]
    return np.bincount(cells, minlength=n * c * c).reshape(n, c, c)


def metrics_from_confusion(conf: np.ndarray) -> dict[str, np.ndarray]:
    """miou, dice and pixel_accuracy of (B, C, C) summed confusion matrices: one value per
    row (NaN where nothing was judged)."""
    conf = np.asarray(conf, dtype=np.float64)
    tp = np.diagonal(conf, axis1=1, axis2=2)
    fp = conf.sum(axis=1) - tp
    fn = conf.sum(axis=2) - tp
    union = tp + fp + fn
    present = union > 0
    counted = present.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.where(present, tp / np.where(present, union, 1), 0.0)
        dice = np.where(present, 2 * tp / np.where(present, tp + union, 1), 0.0)
        total = conf.sum(axis=(1, 2))
        return {
            "miou": np.where(counted > 0, iou.sum(axis=1) / np.maximum(counted, 1), np.nan),
            "dice": np.where(counted > 0, dice.sum(axis=1) / np.maximum(counted, 1), np.nan),
            "pixel_accuracy": np.where(
                total > 0, tp.sum(axis=1) / np.where(total > 0, total, 1), np.nan
            ),
        }


def per_class_iou(y: np.ndarray, out: np.ndarray, names: Sequence[str]) -> dict[str, float]:
    """Each class's IoU over the whole set (NaN for a class in neither truth nor prediction):
    the report's per-class table."""
    conf = confusion_matrices(y, out).sum(axis=0).astype(np.float64)
    tp = np.diag(conf)
    union = conf.sum(axis=0) + conf.sum(axis=1) - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.where(union > 0, tp / np.where(union > 0, union, 1), np.nan)
    return {str(name): float(v) for name, v in zip(names, iou)}


# ------------------------------------------------------------------------- the baseline


def majority_fit(y_train: np.ndarray, *, num_classes: int | None = None) -> dict[str, Any]:
    """The per-pixel majority class of the training masks (N, H, W) (ties: the lower index;
    a pixel ignored in every mask: the most frequent class overall). JSON-ready."""
    y = np.asarray(y_train)
    if y.ndim != 3 or not len(y):
        raise ValueError(f"training masks are a non-empty (N, H, W) array, got {y.shape}")
    judged = y[y != IGNORE]
    c = int(num_classes) if num_classes else int(judged.max(initial=0)) + 1
    counts = np.stack([(y == k).sum(axis=0) for k in range(c)])  # (C, H, W)
    mask = counts.argmax(axis=0)
    overall = int(np.bincount(judged[judged < c].astype(np.int64), minlength=c).argmax())
    mask[counts.sum(axis=0) == 0] = overall
    return {"num_classes": c, "mask": mask.astype(int).tolist()}


def majority_outputs(params: dict[str, Any], n: int) -> np.ndarray:
    """(n, C, H, W) float32 outputs of the majority baseline: probability 1 on the
    majority class of every pixel (a read-only view; every row the same)."""
    mask = np.asarray(params["mask"], dtype=np.int64)
    c = int(params["num_classes"])
    one_hot = (np.arange(c)[:, None, None] == mask[None]).astype(np.float32)
    return np.broadcast_to(one_hot[None], (int(n), *one_hot.shape))
