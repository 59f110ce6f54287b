"""COCO average precision of boxes, in numpy, with bootstrap weights over images.

    table = match_images(y, out, size=(h, w))      # matched once: every image, class, area
    ap = average_precision(table, weights)           # (B, classes, areas, thresholds)

The definitions are pycocotools' (COCOeval, iouType "bbox"), reproduced step by step so the
numbers agree with it (a test checks it on the same predictions): per image and class the
detections, best score first (at most `MAX_DETS`), are matched greedily to the unmatched box
of the highest IoU at each threshold .50:.05:.95, preferring boxes inside the area range;
a detection matched to a box outside the range, or unmatched and itself outside, is ignored.
Precision is made monotone and read at the 101 recall points 0, .01, ..., 1; a class without
a box (in the range) has no AP and is left out of the mean.

Bootstrap rows weigh images (draw counts): a detection counts `weight of its image` times,
which gives what COCOeval gives on the resampled image list (copies of one detection tie and
land together), without matching again for each row.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from dlworkflow.tasks.boxes import iou_matrix

IOU_THRESHOLDS = np.linspace(0.5, 0.95, 10)  # COCO's: .50:.05:.95
RECALL_POINTS = np.linspace(0.0, 1.0, 101)
MAX_DETS = 100  # per image and class, as COCO's maxDets[-1]
CHUNK = 4_000_000  # numbers per block of bootstrap rows
AREAS = {  # in pixels of the network input, both ends included (COCO's areaRng)
    "all": (0.0, 1e10),
    "small": (0.0, 32.0**2),
    "medium": (32.0**2, 96.0**2),
    "large": (96.0**2, 1e10),
}


@dataclass
class Matches:
    """One (class, area range): every image's detections in COCOeval's order."""

    scores: list[np.ndarray] = field(default_factory=list)  # per image (D,)
    images: list[np.ndarray] = field(default_factory=list)  # image index of each detection
    tp: list[np.ndarray] = field(default_factory=list)  # (T, D) matched, not ignored
    fp: list[np.ndarray] = field(default_factory=list)  # (T, D) unmatched, not ignored
    positives: np.ndarray | None = None  # (N,) boxes in the range per image


@dataclass
class MatchTable:
    classes: int
    table: dict[tuple[int, str], Matches]


def _pixels(boxes: np.ndarray, size: tuple[float, float]) -> np.ndarray:
    h, w = size
    pixels: np.ndarray = np.asarray(boxes, dtype=np.float64) * np.array([w, h, w, h])
    return pixels


def _areas(boxes: np.ndarray) -> np.ndarray:
    areas: np.ndarray = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return areas


def match_images(
    y: np.ndarray, out: np.ndarray, *, size: tuple[float, float], classes: int
) -> MatchTable:
    """Match every image once: y (N, K, 5) normalised truth, out (N, K', 6) normalised
    detections [x1, y1, x2, y2, score, class] (class -1: padding); `size` (h, w) in pixels
    of the network input (the area ranges are in those pixels)."""
    n = len(y)
    table = {
        (c, a): Matches(positives=np.zeros(n, dtype=np.float64))
        for c in range(classes)
        for a in AREAS
    }
    for i in range(n):
        truth = y[i][y[i][:, 4] >= 0]
        dets = out[i][out[i][:, 5] >= 0]  # class -1: padding
        for c in np.unique(np.concatenate([truth[:, 4], dets[:, 5]])).astype(int):
            if not 0 <= c < classes:
                continue
            gt = _pixels(truth[truth[:, 4] == c, :4], size)
            dc = dets[dets[:, 5] == c]
            order = np.argsort(-dc[:, 4], kind="mergesort")[:MAX_DETS]
            dt, scores = _pixels(dc[order, :4], size), dc[order, 4]
            _match_one(table, i, c, gt, dt, scores)
    return MatchTable(classes, table)


def _match_one(
    table: dict[tuple[int, str], Matches],
    image: int,
    c: int,
    gt: np.ndarray,
    dt: np.ndarray,
    scores: np.ndarray,
) -> None:
    """COCOeval.evaluateImg for one image and class, each area range."""
    ious = iou_matrix(dt, gt)
    gt_area, dt_area = _areas(gt), _areas(dt)
    for name, (low, high) in AREAS.items():
        ignore = (gt_area < low) | (gt_area > high)
        matched, ignored = _greedy(ious, ignore)
        outside = (dt_area < low) | (dt_area > high)
        ignored |= ~matched & outside[None, :]
        entry = table[(c, name)]
        assert entry.positives is not None
        entry.positives[image] += float((~ignore).sum())
        if len(dt):
            entry.scores.append(scores)
            entry.images.append(np.full(len(dt), image))
            entry.tp.append(matched & ~ignored)
            entry.fp.append(~matched & ~ignored)


def _greedy(ious: np.ndarray, ignore: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(matched, matched to an ignored box), each (T, D): each detection in turn takes the
    unmatched box of the highest IoU >= the threshold (the last one of ties, as COCOeval's
    loop does), a box in the range before one outside it."""
    t_count, (d_count, g_count) = len(IOU_THRESHOLDS), ious.shape
    matched = np.zeros((t_count, d_count), dtype=bool)
    ignored = np.zeros((t_count, d_count), dtype=bool)
    if d_count == 0 or g_count == 0:
        return matched, ignored
    order = np.argsort(ignore, kind="mergesort")  # boxes in the range first
    ious, ignore = ious[:, order], ignore[order]
    thresholds = np.minimum(IOU_THRESHOLDS, 1 - 1e-10)[:, None]
    taken = np.zeros((t_count, g_count), dtype=bool)
    rows = np.arange(t_count)
    for d in range(d_count):
        ok = ~taken & (ious[d][None, :] >= thresholds)  # (T, G)
        regular = ok & ~ignore[None, :]
        pick = np.where(regular.any(axis=1, keepdims=True), regular, ok & ignore[None, :])
        found = pick.any(axis=1)
        if not found.any():
            continue
        values = np.where(pick, ious[d][None, :], -np.inf)[:, ::-1]
        m = g_count - 1 - np.argmax(values, axis=1)  # the last of the highest
        taken[rows[found], m[found]] = True
        matched[found, d] = True
        ignored[found, d] = ignore[m[found]]
    return matched, ignored


def average_precision(table: MatchTable, weights: np.ndarray) -> dict[str, np.ndarray]:
    """AP per weight row (B, N): {area: (B, classes, T)}, NaN for a class without a box in
    the range in that row."""
    weights = np.atleast_2d(np.asarray(weights, dtype=np.float64))
    result = {}
    for name in AREAS:
        per_class = np.full((len(weights), table.classes, len(IOU_THRESHOLDS)), np.nan)
        for c in range(table.classes):
            per_class[:, c, :] = _class_ap(table.table[(c, name)], weights)
        result[name] = per_class
    return result


def _class_ap(entry: Matches, weights: np.ndarray) -> np.ndarray:
    """COCOeval.accumulate for one class and area range: (B, T)."""
    assert entry.positives is not None
    n_pos = weights @ entry.positives  # (B,)
    ap = np.zeros((len(weights), len(IOU_THRESHOLDS)))
    if entry.scores:
        scores = np.concatenate(entry.scores)
        order = np.argsort(-scores, kind="mergesort")
        images = np.concatenate(entry.images)[order]
        tp = np.concatenate(entry.tp, axis=1)[:, order].astype(np.float64)
        fp = np.concatenate(entry.fp, axis=1)[:, order].astype(np.float64)
        step = max(1, CHUNK // max(tp.size, 1))  # weight rows at a time (memory)
        for start in range(0, len(weights), step):
            rows = slice(start, start + step)
            ap[rows] = _interpolated(weights[rows][:, images], tp, fp, n_pos[rows])
    ap[n_pos <= 0] = np.nan
    return ap


def _interpolated(w: np.ndarray, tp: np.ndarray, fp: np.ndarray, n_pos: np.ndarray) -> np.ndarray:
    """(B, T) AP from detection weights w (B, D) and the (T, D) tp / fp flags in score order."""
    tp_sum = np.cumsum(w[:, None, :] * tp[None], axis=2)
    fp_sum = np.cumsum(w[:, None, :] * fp[None], axis=2)
    with np.errstate(invalid="ignore", divide="ignore"):
        recall = tp_sum / n_pos[:, None, None]
    precision = tp_sum / (tp_sum + fp_sum + np.spacing(1))
    precision = np.maximum.accumulate(precision[..., ::-1], axis=2)[..., ::-1]
    # the recall points each detection is the first to reach: (recall[i-1], recall[i]]
    reached = np.searchsorted(RECALL_POINTS, np.nan_to_num(recall, nan=-1.0), side="right")
    gained = np.diff(reached, axis=2, prepend=0)
    ap: np.ndarray = (precision * gained).sum(axis=2) / len(RECALL_POINTS)
    return ap


def summary(ap: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """COCOeval.summarize's AP lines (maxDets 100) per weight row: map, map50, map75,
    ap_small, ap_medium, ap_large; NaN where no class has a box."""
    with np.errstate(invalid="ignore"):
        result: dict[str, np.ndarray] = {
            "map": _mean(ap["all"]),
            "map50": _mean(ap["all"][:, :, :1]),
            "map75": _mean(ap["all"][:, :, 5:6]),
            "ap_small": _mean(ap["small"]),
            "ap_medium": _mean(ap["medium"]),
            "ap_large": _mean(ap["large"]),
        }
    return result


def _mean(values: np.ndarray) -> np.ndarray:
    flat = values.reshape(len(values), -1)
    counted = (~np.isnan(flat)).sum(axis=1)
    mean: np.ndarray = np.where(
        counted > 0, np.nansum(flat, axis=1) / np.maximum(counted, 1), np.nan
    )
    return mean


def class_ap(ap: dict[str, np.ndarray]) -> np.ndarray:
    """(B, classes): each class's AP over the IoU thresholds, all areas (NaN: no box)."""
    values: np.ndarray = ap["all"].mean(axis=2)
    return values
