"""Our box AP against pycocotools' COCOeval on the same predictions: map, map50, map75,
ap_small/medium/large and each class's AP to within 1e-4, and a bootstrap row (draw counts)
against COCOeval on the resampled image list."""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from dlworkflow.tasks import task_of

TASK = task_of("object-detection")
SIZE = (240, 320)  # the network input (h, w): the area ranges are in its pixels
CLASSES = 3


def _predictions(seed: int = 0, n: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Truth (n, K, 5) and detections (n, 100, 6), normalised: boxes of every size range,
    jittered copies of the truth (some on the wrong class), false positives, duplicates,
    images without boxes (one with detections, one without), and a class that has
    detections but no box."""
    rng = np.random.default_rng(seed)
    h, w = SIZE
    y = np.zeros((n, 12, 5), dtype=np.float32)
    y[:, :, 4] = -1
    out = np.zeros((n, 100, 6))
    out[:, :, 5] = -1
    for i in range(n):
        k = 0 if i in (3, 7) else int(rng.integers(1, 12))
        side = rng.choice([12, 24, 40, 70, 110, 150], size=(k, 2)) * rng.uniform(0.8, 1.2, (k, 2))
        x1 = rng.uniform(0, w - side[:, 0])
        y1 = rng.uniform(0, h - side[:, 1])
        boxes = np.stack([x1, y1, x1 + side[:, 0], y1 + side[:, 1]], axis=1) / [w, h, w, h]
        y[i, :k, :4], y[i, :k, 4] = boxes, rng.integers(0, CLASSES - 1, k)  # class 2: none
        dets = []
        for box, c in zip(y[i, :k, :4], y[i, :k, 4]):
            for _ in range(int(rng.integers(0, 3))):  # missed, found, or found twice
                jitter = box + rng.normal(0, 0.02, 4)
                label = c if rng.random() > 0.15 else rng.integers(0, CLASSES)
                dets.append([*jitter, rng.random(), label])
        for _ in range(0 if i == 7 else int(rng.integers(0, 6))):
            cx, cy, bw, bh = (
                rng.uniform(0.05, 0.95, 2).tolist() + rng.uniform(0.03, 0.4, 2).tolist()
            )
            dets.append(
                [
                    cx - bw / 2,
                    cy - bh / 2,
                    cx + bw / 2,
                    cy + bh / 2,
                    rng.random(),
                    rng.integers(0, CLASSES),
                ]
            )
        if dets:
            d = np.asarray(dets, dtype=np.float64)
            d[:, :4] = np.clip(d[:, :4], 0, 1)
            d = d[(d[:, 2] > d[:, 0] + 1e-3) & (d[:, 3] > d[:, 1] + 1e-3)]
            out[i, : len(d)] = d[np.argsort(-d[:, 4])]
    return y, out


def _cocoeval(y: np.ndarray, out: np.ndarray, images: list[int]) -> COCOeval:
    """COCOeval (bbox) on the images listed (repeats are new images: a bootstrap draw)."""
    h, w = SIZE
    scale = np.array([w, h, w, h], dtype=np.float64)
    gt: dict = {
        "images": [{"id": j + 1, "width": w, "height": h} for j in range(len(images))],
        "categories": [{"id": c + 1, "name": str(c)} for c in range(CLASSES)],
        "annotations": [],
    }
    dets = []
    for j, i in enumerate(images):
        for row in y[i][y[i][:, 4] >= 0]:
            x1, y1, x2, y2 = row[:4].astype(np.float64) * scale
            gt["annotations"].append(
                {
                    "id": len(gt["annotations"]) + 1,
                    "image_id": j + 1,
                    "category_id": int(row[4]) + 1,
                    "bbox": [x1, y1, x2 - x1, y2 - y1],
                    "area": (x2 - x1) * (y2 - y1),
                    "iscrowd": 0,
                }
            )
        for row in out[i][out[i][:, 5] >= 0]:
            x1, y1, x2, y2 = row[:4] * scale
            dets.append(
                {
                    "image_id": j + 1,
                    "category_id": int(row[5]) + 1,
                    "bbox": [x1, y1, x2 - x1, y2 - y1],
                    "score": float(row[4]),
                }
            )
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO()
        coco.dataset = gt
        coco.createIndex()
        evaluator = COCOeval(coco, coco.loadRes(dets), "bbox")
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return evaluator


def _class_ap(evaluator: COCOeval) -> np.ndarray:
    precision = evaluator.eval["precision"][:, :, :, 0, -1]  # (T, R, K) all areas, 100 dets
    values = []
    for k in range(precision.shape[2]):
        p = precision[:, :, k]
        values.append(p[p > -1].mean() if (p > -1).any() else np.nan)
    return np.asarray(values)


NAMES = ("map", "map50", "map75", "ap_small", "ap_medium", "ap_large")  # stats[0:6]


@pytest.mark.parametrize("seed", [0, 1])
def test_our_box_ap_is_pycocotools_on_the_same_predictions(seed):
    y, out = _predictions(seed)
    n = len(y)
    ours = TASK.scores(y, out, np.ones((1, n)), {"input_size": list(SIZE)})
    coco = _cocoeval(y, out, list(range(n)))
    for name, value in zip(NAMES, coco.stats[:6]):
        assert ours[name][0] == pytest.approx(value, abs=1e-4), name
    assert 0.05 < ours["map"][0] < 0.9  # a realistic, not a trivial, value
    assert all(ours[name][0] > 0 for name in ("ap_small", "ap_medium", "ap_large"))
    per_class = TASK.class_scores(y, out, np.ones((1, n)), {"input_size": list(SIZE)})[0]
    expected = _class_ap(coco)
    assert np.isnan(per_class[2]) and np.isnan(expected[2])  # class 2 has no box
    np.testing.assert_allclose(per_class[:2], expected[:2], atol=1e-4)


def test_a_bootstrap_row_is_pycocotools_on_the_resampled_images():
    y, out = _predictions(2)
    n = len(y)
    draws = np.random.default_rng(5).integers(0, n, n)
    counts = np.bincount(draws, minlength=n).astype(np.float64)
    ours = TASK.scores(y, out, np.stack([np.ones(n), counts]), {"input_size": list(SIZE)})
    coco = _cocoeval(y, out, sorted(draws.tolist()))
    for name, value in zip(NAMES, coco.stats[:6]):
        assert ours[name][1] == pytest.approx(value, abs=1e-4), name
    assert ours["map"][1] != pytest.approx(ours["map"][0], abs=1e-3)  # the row did resample
