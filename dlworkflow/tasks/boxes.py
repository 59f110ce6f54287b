"""Boxes in numpy: IoU, per-class NMS, CenterNet decoding, the box-prior baseline, and the
score threshold that maximises F1.

Boxes are [x1, y1, x2, y2] (x2 > x1, y2 > y1); detections are rows
[x1, y1, x2, y2, score, class] normalised to 0..1, padded with score 0 and class -1. The
network's output (CenterNet, Zhou et al. 2019, "Objects as Points") is one array
(N, C + 4, h, w): C class heatmap logits, log width and log height in feature-map cells, and
the centre's offset (x, y) inside its cell. Everything here is torch-free: serve and the
runtime decode with it.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

MAX_LOG_SIZE = 10.0  # log sizes are clipped before exp (an untrained head)


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(M, N) IoU of boxes a (M, 4) and b (N, 4); 0 where the union is empty."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    area_a = np.prod(np.clip(a[:, 2:] - a[:, :2], 0, None), axis=1)
    area_b = np.prod(np.clip(b[:, 2:] - b[:, :2], 0, None), axis=1)
    union = area_a[:, None] + area_b[None, :] - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def nms(boxes: np.ndarray, scores: np.ndarray, classes: np.ndarray, *, iou: float) -> np.ndarray:
    """Indices of the boxes kept by greedy non-maximum suppression within each class, best
    score first: a box is dropped when it overlaps a kept box of its class by more than
    `iou`."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    classes = np.asarray(classes).reshape(-1)
    order = np.argsort(-scores, kind="stable")
    overlaps = iou_matrix(boxes[order], boxes[order])
    same = classes[order][:, None] == classes[order][None, :]
    suppressed = np.zeros(len(order), dtype=bool)
    keep = []
    for i in range(len(order)):
        if suppressed[i]:
            continue
        keep.append(order[i])
        suppressed |= same[i] & (overlaps[i] > iou)
    return np.asarray(keep, dtype=np.int64)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    out: np.ndarray = 0.5 * (1.0 + np.tanh(0.5 * x))  # no overflow warnings
    return out


def _peaks(heat: np.ndarray) -> np.ndarray:
    """heat (N, C, h, w) where it equals its 3x3 maximum (CenterNet's NMS-free peak pick)."""
    padded = np.pad(heat, ((0, 0), (0, 0), (1, 1), (1, 1)), constant_values=-np.inf)
    h, w = heat.shape[2:]
    pooled = np.max(
        np.stack([padded[:, :, dy : dy + h, dx : dx + w] for dy in range(3) for dx in range(3)]),
        axis=0,
    )
    return np.where(heat == pooled, heat, 0.0)


def decode(logits: np.ndarray, *, classes: int, top_k: int) -> np.ndarray:
    """(N, top_k, 6) normalised detections of the `top_k` highest heatmap peaks per image
    (before NMS), score = the sigmoid of the peak's logit."""
    logits = np.asarray(logits, dtype=np.float64)
    n, _, h, w = logits.shape
    heat = _peaks(_sigmoid(logits[:, :classes])).reshape(n, -1)
    k = min(top_k, heat.shape[1])
    top = np.argsort(-heat, axis=1, kind="stable")[:, :k]
    scores = np.take_along_axis(heat, top, axis=1)
    c, cell = np.divmod(top, h * w)
    iy, ix = np.divmod(cell, w)
    rows = np.arange(n)[:, None]
    reg = logits[:, classes:]
    bw = np.exp(np.clip(reg[rows, 0, iy, ix], -MAX_LOG_SIZE, MAX_LOG_SIZE)) / w
    bh = np.exp(np.clip(reg[rows, 1, iy, ix], -MAX_LOG_SIZE, MAX_LOG_SIZE)) / h
    cx = (ix + reg[rows, 2, iy, ix]) / w
    cy = (iy + reg[rows, 3, iy, ix]) / h
    boxes = np.clip(np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], axis=2), 0, 1)
    out = np.zeros((n, top_k, 6))
    out[:, :, 5] = -1
    out[:, :k, :4], out[:, :k, 4], out[:, :k, 5] = boxes, scores, c
    valid = (boxes[..., 2] > boxes[..., 0]) & (boxes[..., 3] > boxes[..., 1]) & (scores > 0)
    out[:, :k][~valid] = [0, 0, 0, 0, 0, -1]
    return out


def suppress(dets: np.ndarray, *, iou: float, max_detections: int) -> np.ndarray:
    """Per-class NMS on each image's detections (N, K, 6) -> (N, max_detections, 6), best
    first, padded with score 0 and class -1."""
    out = np.zeros((len(dets), max_detections, 6))
    out[:, :, 5] = -1
    for i, rows in enumerate(np.asarray(dets, dtype=np.float64)):
        rows = rows[(rows[:, 5] >= 0) & (rows[:, 4] > 0)]
        keep = nms(rows[:, :4], rows[:, 4], rows[:, 5], iou=iou)[:max_detections]
        out[i, : len(keep)] = rows[keep]
    return out


# ---------------------------------------------------------------- box-prior baseline


def box_prior_fit(y_train: np.ndarray) -> dict[str, Any]:
    """Per class the training boxes' mean (normalised) width and height, and its share of
    the boxes (JSON-ready)."""
    y = np.asarray(y_train, dtype=np.float64).reshape(-1, 5)
    y = y[y[:, 4] >= 0]
    classes = int(y[:, 4].max()) + 1 if len(y) else 0
    sizes, shares = [], []
    for c in range(classes):
        rows = y[y[:, 4] == c]
        if not len(rows):
            sizes.append([0.0, 0.0])
            shares.append(0.0)
            continue
        wh = rows[:, 2:4] - rows[:, 0:2]
        sizes.append([float(v) for v in wh.mean(axis=0)])
        shares.append(len(rows) / len(y))
    return {"sizes": sizes, "shares": shares}


def box_prior_outputs(params: dict[str, Any], n: int, *, max_detections: int = 100) -> np.ndarray:
    """(n, max_detections, 6): the same boxes for every image: for each class, boxes of its
    mean size centred on a regular grid that covers the image (as many as fit the class's
    part of `max_detections`), scored by the class's share of the training boxes."""
    present = [
        (c, size, share)
        for c, (size, share) in enumerate(zip(params["sizes"], params["shares"]))
        if share > 0
    ]
    rows = []
    budget = max_detections // max(len(present), 1)
    for c, (bw, bh), share in present:
        nx, ny = max(1, round(1 / bw)), max(1, round(1 / bh))
        while nx * ny > max(budget, 1):
            if nx >= ny:
                nx -= 1
            else:
                ny -= 1
        for cy in (np.arange(ny) + 0.5) / ny:
            for cx in (np.arange(nx) + 0.5) / nx:
                box = np.clip([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], 0, 1)
                rows.append([*box, share, c])
    out = np.zeros((n, max_detections, 6))
    out[:, :, 5] = -1
    if rows:
        table = np.asarray(rows[:max_detections])
        out[:, : len(table)] = table[np.argsort(-table[:, 4], kind="stable")]
    return out


# ---------------------------------------------------------------- the serving threshold


def best_f1_threshold(y: np.ndarray, out: np.ndarray, *, iou: float = 0.5) -> float:
    """The detection score at which F1 (each box matched at most once, IoU >= `iou`, same
    class, best score first) is highest on (y, out); 0.5 when nothing can be matched."""
    scores, hits = [], []
    n_truth = 0
    for truth, dets in zip(np.asarray(y), np.asarray(out)):
        truth = truth[truth[:, 4] >= 0]
        dets = dets[(dets[:, 5] >= 0) & (dets[:, 4] > 0)]
        dets = dets[np.argsort(-dets[:, 4], kind="stable")]
        n_truth += len(truth)
        overlaps = iou_matrix(dets[:, :4], truth[:, :4])
        overlaps[dets[:, 5][:, None] != truth[:, 4][None, :]] = 0.0
        free = np.ones(len(truth), dtype=bool)
        for d in range(len(dets)):
            candidates = np.where(free, overlaps[d], -1.0)
            j = int(np.argmax(candidates)) if len(truth) else -1
            hit = j >= 0 and candidates[j] >= iou
            if hit:
                free[j] = False
            scores.append(dets[d, 4])
            hits.append(hit)
    if not scores or n_truth == 0 or not any(hits):
        return 0.5
    order = np.argsort(-np.asarray(scores), kind="stable")
    s = np.asarray(scores)[order]
    tp = np.cumsum(np.asarray(hits)[order])
    f1 = 2 * tp / (np.arange(1, len(s) + 1) + n_truth)
    last_of_tie = np.append(s[1:] != s[:-1], True)  # a threshold keeps every tied score
    best = int(np.argmax(np.where(last_of_tie, f1, -1.0)))
    return math.floor(float(s[best]) * 1e4) / 1e4  # rounded down: the best box stays in
