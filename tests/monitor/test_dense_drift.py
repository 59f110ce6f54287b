"""`dlw monitor`'s prediction checks for the dense image tasks, on real geometry.

Detection: the hand-annotated tree crowns of the two NEON YELL images shipped in deepforest
2.1.0, cut into 200 px windows; the windows' boxes are logged as a detector's predictions
(scores from a seeded beta draw). Interleaved windows of the same images form the reference
and an unshifted live sample; a detector that misses the small crowns (and scores lower) is
the shifted one. Segmentation: the class shares of builtin:digit-masks' real MNIST mosaics;
mosaics of the digits 5-9 only are the shifted live sample."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from dlworkflow.config import Monitor
from dlworkflow.monitor.drift import run_checks
from dlworkflow.monitor.logread import read_log, to_sample, valid_record
from dlworkflow.tasks.detection import dump_boxes

START = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
WINDOW = 200
YELL = ("2019_YELL_2_528000_4978000_image_crop2", "2019_YELL_2_541000_4977000_image_crop")
DET_META = {"task": "object-detection", "modality": "image", "classes": ["Tree"]}
SEG_NAMES = ["background", *(str(d) for d in range(10))]
SEG_META = {"task": "semantic-segmentation", "modality": "image", "classes": SEG_NAMES}


def _data_folder() -> Path:
    from dlworkflow.datasets.data_packages import find_file

    found = find_file("deepforest", f"data/{YELL[0]}.xml")
    if found is None:
        pytest.skip("deepforest's data is not installed (make setup)")
    return found.parent


def _voc(path: Path) -> tuple[tuple[int, int], list[list[float]]]:
    root = ET.parse(path).getroot()
    size = root.find("size")
    assert size is not None
    w, h = int(size.findtext("width") or 0), int(size.findtext("height") or 0)
    boxes = []
    for obj in root.iter("object"):
        bb = obj.find("bndbox")
        assert bb is not None
        boxes.append([float(bb.findtext(k) or 0) for k in ("xmin", "ymin", "xmax", "ymax")])
    return (w, h), boxes


def tree_windows() -> list[list[list[float]]]:
    """The true boxes of every 200 px window of the two YELL images, clipped to the window
    and in pixels of the window (a box belongs to the window holding its centre)."""
    folder = _data_folder()
    windows = []
    for name in YELL:
        (w, h), boxes = _voc(folder / f"{name}.xml")
        for top in range(0, h - WINDOW + 1, WINDOW):
            for left in range(0, w - WINDOW + 1, WINDOW):
                inside = []
                for x1, y1, x2, y2 in boxes:
                    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
                    if left <= cx < left + WINDOW and top <= cy < top + WINDOW:
                        inside.append(
                            [
                                max(x1 - left, 0.0),
                                max(y1 - top, 0.0),
                                min(x2 - left, WINDOW),
                                min(y2 - top, WINDOW),
                            ]
                        )
                windows.append(inside)
    return windows


def det_record(i: int, boxes: list[list[float]], scores: np.ndarray) -> dict:
    """A detection record as the server logs it (normalised boxes, shown boxes only)."""
    rows = [
        [*(round(v / WINDOW, 5) for v in b), "Tree", round(float(s), 5)]
        for b, s in zip(boxes, scores)
    ]
    return {
        "ts": (START + timedelta(minutes=i)).isoformat(timespec="milliseconds"),
        "id": f"w{i}",
        "model_version": 1,
        "input": {"kind": "image", "width": WINDOW, "height": WINDOW, "mean": 0.1, "std": 1.0},
        "count": len(rows),
        "boxes": rows,
        "scores": [r[5] for r in rows],
    }


def det_sample(windows: list[list[list[float]]], *, seed: int, a: float = 5.0, b: float = 2.0):
    rng = np.random.default_rng(seed)
    records = [det_record(i, w, rng.beta(a, b, size=len(w))) for i, w in enumerate(windows)]
    assert all(valid_record(r) for r in records)
    return to_sample(records)


def _by_name(drift) -> dict:
    return {c.name: c for c in drift.checks}


def test_detection_records_are_valid_and_read_as_dense_columns():
    windows = tree_windows()
    sample = det_sample(windows[:20], seed=0)
    assert len(sample.dense) == 20
    assert sample.dense[0]["count"] == len(windows[0])
    assert not valid_record({**det_record(0, windows[0], np.ones(len(windows[0]))), "boxes": 3})


def test_detection_unshifted_windows_raise_no_alert():
    windows = tree_windows()
    assert len(windows) >= 150 and sum(map(len, windows)) > 700
    ref, live = det_sample(windows[0::2], seed=1), det_sample(windows[1::2], seed=2)
    drift = run_checks(ref, live, config=Monitor(), seed=0, metadata=DET_META)
    checks = _by_name(drift)
    assert {"boxes per image", "box size", "box scores"} <= set(checks)
    assert not drift.alerts, [c.sentence for c in drift.alerts]
    assert "Boxes per image: live mean" in checks["boxes per image"].sentence


def test_detection_missing_small_crowns_alerts_on_counts_sizes_and_scores():
    windows = tree_windows()
    areas = np.array([(b[2] - b[0]) * (b[3] - b[1]) for w in windows for b in w])
    median = float(np.median(areas))
    missed = [[b for b in w if (b[2] - b[0]) * (b[3] - b[1]) >= median] for w in windows[1::2]]
    ref = det_sample(windows[0::2], seed=1)
    live = det_sample(missed, seed=2, a=2.0, b=3.0)  # lower scores too
    drift = run_checks(ref, live, config=Monitor(), seed=0, metadata=DET_META)
    alerts = {c.name for c in drift.alerts}
    assert alerts == {"boxes per image", "box size", "box scores"}
    counts = _by_name(drift)["boxes per image"]
    assert counts.live < 0.7 * counts.reference
    assert _by_name(drift)["box size"].live > _by_name(drift)["box size"].reference


def test_detection_live_map_is_scored_from_labels(tmp_path):
    """--labels holds the manifest's label text (dump_boxes in pixels of the window): the
    live mAP of predictions equal to the truth is 1; of a detector that misses the small
    crowns it falls below the test estimate and alerts."""
    windows = tree_windows()[:120]
    labels = {
        f"w{i}": dump_boxes((WINDOW, WINDOW), [[*b, "Tree"] for b in w])
        for i, w in enumerate(windows)
    }
    meta = {**DET_META, "metric": "map50", "test_value": 0.9, "preprocessing": {"size": [200, 200]}}
    meta["target"] = {"input_size": [200, 200], "max_detections": 100}
    ref = det_sample(windows, seed=1)
    drift = run_checks(
        ref, ref, config=Monitor(), seed=0, metadata=meta, labels=labels, classes=["Tree"]
    )
    live_check = _by_name(drift)["live map50"]
    assert live_check.live == pytest.approx(1.0)
    assert not live_check.alert
    assert any("boxes the server showed" in n for n in drift.notes)
    areas = np.array([(b[2] - b[0]) * (b[3] - b[1]) for w in windows for b in w])
    median = float(np.median(areas))
    missed = [[b for b in w if (b[2] - b[0]) * (b[3] - b[1]) >= median] for w in windows]
    live = det_sample(missed, seed=2)
    drift = run_checks(
        ref, live, config=Monitor(), seed=0, metadata=meta, labels=labels, classes=["Tree"]
    )
    check = _by_name(drift)["live map50"]
    assert check.live < 0.7 and check.alert


# ---- segmentation -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def digit_masks():
    from dlworkflow.datasets.digit_masks import _mnist, mosaics

    digits, labels = _mnist()
    _, masks, order = mosaics(digits, labels)
    return masks, labels[order]


def seg_records(masks: np.ndarray) -> list[dict]:
    out = []
    for i, mask in enumerate(masks):
        share = np.bincount(mask.ravel(), minlength=len(SEG_NAMES)) / mask.size
        out.append(
            {
                "ts": (START + timedelta(minutes=i)).isoformat(timespec="milliseconds"),
                "id": f"m{i}",
                "model_version": 1,
                "input": {"kind": "image", "width": 56, "height": 56, "mean": 0.0, "std": 1.0},
                "class_share": {n: round(float(s), 5) for n, s in zip(SEG_NAMES, share)},
            }
        )
    return out


def test_segmentation_unshifted_mosaics_raise_no_alert(digit_masks):
    masks, _ = digit_masks
    ref, live = to_sample(seg_records(masks[:500])), to_sample(seg_records(masks[500:1000]))
    drift = run_checks(ref, live, config=Monitor(), seed=0, metadata=SEG_META, classes=SEG_NAMES)
    check = _by_name(drift)["predicted class shares"]
    assert not drift.alerts and check.effect < 0.05
    assert "Predicted class shares" in check.sentence and "no drift" in check.sentence


def test_segmentation_mosaics_of_high_digits_shift_the_class_shares(digit_masks):
    masks, digits = digit_masks
    high = masks[(digits >= 5).all(axis=1)]
    assert len(high) >= 50
    ref, live = to_sample(seg_records(masks[:500])), to_sample(seg_records(high))
    drift = run_checks(ref, live, config=Monitor(), seed=0, metadata=SEG_META, classes=SEG_NAMES)
    check = _by_name(drift)["predicted class shares"]
    assert check.alert and check.effect >= 0.2
    assert set(check.details["moved"]) >= {"0", "1", "2", "3", "4"}  # vanished classes
    assert "5" not in check.details["moved"] or check.details["per_class"][6]["change"] > 0


def test_segmentation_live_miou_needs_the_masks(digit_masks, tmp_path):
    """Server records (class shares only) cannot give an IoU: a note says so; records with
    the predicted mask (what --inputs keeps) are scored: equal masks give mIoU 1."""
    from dlworkflow.tasks.masks import mask_to_label

    masks, _ = digit_masks
    records = seg_records(masks[:120])
    labels = {r["id"]: mask_to_label(m, SEG_NAMES) for r, m in zip(records, masks[:120])}
    meta = {**SEG_META, "metric": "miou", "test_value": 0.8, "preprocessing": {"size": [56, 56]}}
    plain = to_sample(records)
    drift = run_checks(
        plain, plain, config=Monitor(), seed=0, metadata=meta, labels=labels, classes=SEG_NAMES
    )
    assert not any(c.group == "performance" for c in drift.checks)
    assert any("class shares of a mask" in n for n in drift.notes)
    with_masks = to_sample([{**r, "mask": labels[r["id"]]} for r in records])
    drift = run_checks(
        plain, with_masks, config=Monitor(), seed=0, metadata=meta, labels=labels, classes=SEG_NAMES
    )
    check = _by_name(drift)["live miou"]
    assert check.live == pytest.approx(1.0) and not check.alert


def test_a_dense_log_on_disk_is_read(tmp_path):
    """The prediction log of dense records (no "label" text) goes through read_log."""
    windows = tree_windows()[:30]
    rng = np.random.default_rng(0)
    folder = tmp_path / ".dlw" / "serve"
    folder.mkdir(parents=True)
    lines = [
        json.dumps(det_record(i, w, rng.uniform(0.3, 1, len(w)))) for i, w in enumerate(windows)
    ]
    (folder / "predictions.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    read = read_log(tmp_path, version=1)
    assert len(read.records) == 30 and read.skipped == 0


def test_monitor_page_figures_for_both_dense_tasks(digit_masks):
    """figures() draws the kind's series and distributions (PNG bytes) from dense records."""
    from dlworkflow.monitor.html import figures

    windows = tree_windows()
    ref, live = det_sample(windows[0::2], seed=1), det_sample(windows[1::2], seed=2)
    drift = run_checks(ref, live, config=Monitor(), seed=0, metadata=DET_META)
    made = figures(ref, live, drift, buckets=6, metadata=DET_META)
    captions = [c for c, _ in made]
    assert any(c.startswith("Boxes per image") for c in captions)
    assert any("boxes of every image" in c for c in captions)
    assert all(png.startswith(b"\x89PNG") for _, png in made)
    masks, _ = digit_masks
    ref, live = to_sample(seg_records(masks[:200])), to_sample(seg_records(masks[200:400]))
    drift = run_checks(ref, live, config=Monitor(), seed=0, metadata=SEG_META, classes=SEG_NAMES)
    made = figures(ref, live, drift, buckets=6, metadata=SEG_META)
    assert any("Predicted class share per time bucket" in c for c, _ in made)
    assert any(c.startswith("Class shares") for c, _ in made)
