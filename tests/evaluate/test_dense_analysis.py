"""The dense tasks' evaluation pieces on real data with hand-built outputs whose errors are
known: the tree crowns of deepforest 2.1.0 (OSBS_029: 61 Tree boxes; SOAP_061: 28 Dead and
9 Alive, the classes kept apart here so a class can be confused) and 2x2 mosaics of real MNIST
digits with their derived masks (builtin digit-masks). Error analysis counts exactly the
planted errors, per-class AP / IoU are what mAP / mIoU average, with intervals, the figures
draw what happened, and the box-prior / majority baselines lose to a network that is right."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import numpy as np
import pandas as pd
import pytest

from dlworkflow.datasets.data_packages import find_file
from dlworkflow.evaluate.dense_errors import detection_errors, worst_masks
from dlworkflow.evaluate.dense_figures import (
    FALSE_POSITIVE,
    MISSED,
    boxes_drawn,
    detection_errors_png,
    mask_panels,
    worst_masks_png,
)
from dlworkflow.evaluate.dense_scores import (
    confusions,
    image_scores,
    per_class_ap,
    per_class_iou,
)
from dlworkflow.evaluate.task_baselines import BASELINES
from dlworkflow.evaluate.task_scores import paired_difference, task_scorer
from dlworkflow.tasks import task_of

PNG = b"\x89PNG\r\n\x1a\n"
KW = {"n_resamples": 200, "confidence": 0.95, "seed": 0}
TREES = ("OSBS_029", "SOAP_061")
TARGET = {"input_size": [400, 400], "max_detections": 100, "score_threshold": 0.3}


def _voc(stem: str) -> tuple[list[int], list[list]]:
    path = find_file("deepforest", f"data/{stem}.xml")
    if path is None:
        pytest.skip("deepforest 2.1.0's data is not installed (make setup)")
    root = ET.parse(path).getroot()
    size = [int(root.findtext("size/width") or 0), int(root.findtext("size/height") or 0)]
    boxes = []
    for obj in root.iter("object"):
        b = obj.find("bndbox")
        assert b is not None
        coords = [float(b.findtext(k) or 0) for k in ("xmin", "ymin", "xmax", "ymax")]
        boxes.append([*coords, obj.findtext("name")])
    return size, boxes


@pytest.fixture(scope="module")
def trees():
    """(task, names, rows, y, out, planted) for the two 400 px tiles: the outputs are the
    true boxes (score 0.9) except on SOAP_061: one Alive box missed, one Dead box given the
    class Alive, one false positive where no tree is."""
    from dlworkflow.tasks.detection import dump_boxes

    task = task_of("object-detection")
    labels = [dump_boxes(*_voc(stem)) for stem in TREES]
    names = task.output_names(labels)
    assert names == ["Alive", "Dead", "Tree"]
    y = task.encode(labels, names)
    out = np.zeros((2, 100, 6))
    out[..., 5] = -1
    for i in range(2):
        truth = y[i][y[i][:, 4] >= 0]
        out[i, : len(truth), :4] = truth[:, :4]
        out[i, : len(truth), 4] = 0.9
        out[i, : len(truth), 5] = truth[:, 4]
    soap = out[1]
    alive, dead = names.index("Alive"), names.index("Dead")
    missed = int(np.flatnonzero(soap[:, 5] == alive)[0])
    confused = int(np.flatnonzero(soap[:, 5] == dead)[0])
    soap[missed] = [0, 0, 0, 0, 0, -1]
    soap[confused, 5] = alive
    free = int(np.flatnonzero(soap[:, 5] < 0)[-1])
    soap[free] = [0.0, 0.0, 0.004, 0.004, 0.8, dead]  # a 1.6 px box in a corner: no tree
    rows = pd.DataFrame({"sample_id": [f"{s}.png" for s in TREES]})
    return task, names, rows, y, out, {"missed": missed, "confused": confused, "free": free}


def test_box_errors_count_exactly_the_planted_missed_confused_and_false_boxes(trees):
    task, names, rows, y, out, planted = trees
    errors = detection_errors(task, rows, y, out, names, TARGET)
    total = int((y[..., 4] >= 0).sum())
    assert total == 61 + 37
    assert (errors["boxes"], errors["missed"], errors["confused"]) == (total, 1, 1)
    assert (errors["false_positives"], errors["found"]) == (1, total - 2)
    assert errors["score_threshold"] == 0.3 and errors["match_iou"] == 0.5
    assert errors["confused_pairs"] == [{"true": "Dead", "predicted": "Alive", "count": 1}]
    per_class = {c["class"]: c for c in errors["per_class"]}
    assert (per_class["Tree"]["boxes"], per_class["Tree"]["found"]) == (61, 61)
    assert per_class["Alive"]["missed"] == 1 and per_class["Dead"]["confused"] == 1
    assert per_class["Dead"]["false_positives"] == 1
    worst = errors["worst_images"]
    assert [w["sample_id"] for w in worst] == ["SOAP_061.png"]  # OSBS_029 has no error
    assert worst[0]["errors"] == 3 and len(worst[0]["found"]) == 37 - 2
    assert worst[0]["false_positives"][0]["box"] == [0.0, 0.0, 0.004, 0.004]
    # below the serving threshold a box is not shown, so it is no false positive
    quiet = out.copy()
    quiet[1, planted["free"], 4] = 0.1
    assert detection_errors(task, rows, y, quiet, names, TARGET)["false_positives"] == 0


def test_per_class_ap_is_what_map_averages_with_an_interval_each(trees):
    task, names, rows, y, out, _ = trees
    entries = {e["class"]: e for e in per_class_ap(task, y, out, TARGET, names, **KW)}
    assert {k: e["boxes"] for k, e in entries.items()} == {"Alive": 9, "Dead": 28, "Tree": 61}
    assert entries["Tree"]["ap"]["value"] == pytest.approx(1.0)
    assert entries["Alive"]["ap"]["value"] < 1.0 and entries["Dead"]["ap"]["value"] < 1.0
    mean = np.mean([e["ap"]["value"] for e in entries.values()])
    assert mean == pytest.approx(task.score("map", y, out, TARGET), abs=1e-12)
    mean50 = np.mean([e["ap50"]["value"] for e in entries.values()])
    assert mean50 == pytest.approx(task.score("map50", y, out, TARGET), abs=1e-12)
    if hasattr(task, "class_scores"):  # the task's own per-class AP agrees
        own = task.class_scores(y, out, np.ones((1, 2)), TARGET)[0]
        assert [entries[n]["ap"]["value"] for n in names] == pytest.approx(list(own))
    for e in entries.values():
        for key in ("ap", "ap50"):
            assert e[key]["low"] <= e[key]["value"] <= e[key]["high"]


def test_the_box_prior_loses_to_a_right_network_by_an_interval_above_zero(trees):
    task, names, rows, y, out, _ = trees
    meta = {"classes": names, "target": TARGET}
    constants, (prior, target, info) = BASELINES["detection"](
        None, task, meta, None, y, rows, seed=0
    )
    assert constants == {} and prior.shape == (2, 100, 6)
    assert info["n_train_boxes"] == 98 and "box prior" in info["model"]
    network = task_scorer(task, y, out, TARGET)
    simple = task_scorer(task, y, prior, target)
    assert simple(np.ones((1, 2)))["map"][0] < 0.5 < network(np.ones((1, 2)))["map"][0]
    difference = paired_difference("map", network, simple, 2, **KW)
    assert difference["low"] > 0


def test_error_boxes_are_drawn_in_their_colours(trees, tmp_path):
    task, names, rows, y, out, _ = trees
    record = detection_errors(task, rows, y, out, names, TARGET)["worst_images"][0]
    image = np.full((3, 200, 200), 90, dtype=np.uint8)  # the tile at half size
    drawn = boxes_drawn(image, record)
    assert drawn.shape == (3, 200, 200) and drawn.dtype == np.uint8
    pixels = np.moveaxis(drawn, 0, -1).reshape(-1, 3)
    assert (pixels == FALSE_POSITIVE).all(axis=1).any()
    assert (pixels == MISSED).all(axis=1).any()
    png = detection_errors_png([image], [record], tmp_path / "errors.png", title="t")
    assert png.read_bytes().startswith(PNG)


@pytest.fixture(scope="module")
def mosaics():
    """12 real 2x2 MNIST mosaics (56x56) and their derived masks; the outputs are the
    truth as probabilities, except that mosaic 5 loses one digit to the background."""
    from dlworkflow.datasets.digit_masks import CLASSES, _mnist
    from dlworkflow.datasets.digit_masks import mosaics as make

    digits, labels = _mnist()
    images, masks, _ = make(digits[:48], labels[:48])
    task = task_of("semantic-segmentation")
    k = len(CLASSES)
    out = (np.arange(k)[None, :, None, None] == masks[:, None]).astype(np.float32)
    lost = int(masks[5][masks[5] > 0][0])  # the class of one digit of mosaic 5
    out[5, 0][masks[5] == lost] = 1.0
    out[5, lost] = 0.0
    rows = pd.DataFrame({"sample_id": [f"mosaic-{i:04d}.png" for i in range(len(masks))]})
    return task, list(CLASSES), rows, images, masks, out, lost


def test_per_class_iou_and_the_worst_image_on_real_digit_masks(mosaics):
    task, names, rows, images, y, out, lost = mosaics
    conf = confusions(y, out, len(names))
    assert conf.sum() == y.size  # nothing is ignored in these masks
    entries = {e["class"]: e for e in per_class_iou(conf, names, **KW)}
    lost_name = names[lost]
    for name, e in entries.items():
        if e["pixels"] == 0:
            continue
        if name in (lost_name, "background"):
            assert e["iou"]["value"] < 1.0
        else:
            assert e["iou"]["value"] == 1.0 and e["dice"]["value"] == 1.0
        assert e["iou"]["low"] <= e["iou"]["value"] <= e["iou"]["high"]
        iou = e["iou"]["value"]
        assert e["dice"]["value"] == pytest.approx(2 * iou / (1 + iou))
    present = [e["iou"]["value"] for e in entries.values() if e["iou"]["value"] is not None]
    assert np.mean(present) == pytest.approx(task.score("miou", y, out, {}), abs=1e-12)
    iou, accuracy = image_scores(conf)
    worst = worst_masks(rows, conf, iou, accuracy, names)
    assert worst[0]["sample_id"] == "mosaic-0005.png" and worst[0]["missed"] == [lost_name]
    assert worst[0]["iou"] < 1.0 and all(w["iou"] == 1.0 for w in worst[1:])


def test_mask_overlays_mark_the_wrong_pixels(mosaics, tmp_path):
    task, names, rows, images, y, out, lost = mosaics
    predicted = out[5].argmax(axis=0)
    panels = mask_panels(images[5][None], y[5], predicted)
    scale = -(-192 // 56)  # thumbnails enlarged to at least 192 px
    assert panels.shape == (3, 56 * scale, 3 * 56 * scale + 8)
    third = np.moveaxis(panels[:, :, -56 * scale :], 0, -1)
    red = (third == FALSE_POSITIVE).all(axis=2).sum()
    assert red == int((y[5] != predicted).sum()) * scale * scale
    png = worst_masks_png(
        [images[5][None]],
        [y[5]],
        [predicted],
        [{"iou": 0.5, "pixel_accuracy": 0.9}],
        tmp_path / "worst.png",
        title="t",
    )
    assert png.read_bytes().startswith(PNG)


def test_the_majority_baseline_loses_to_a_right_network(mosaics):
    task, names, rows, images, y, out, lost = mosaics
    meta = {"classes": names, "target": {}}
    _, (majority, target, info) = BASELINES["segmentation"](
        None, task, meta, None, y[:8], rows, seed=0
    )
    assert majority.shape == (12, len(names), 56, 56)
    assert info["model"] == "per-pixel majority class of the training masks"
    network = task_scorer(task, y, out, {})
    simple = task_scorer(task, y, majority, target)
    assert simple(np.ones((1, 12)))["miou"][0] < network(np.ones((1, 12)))["miou"][0]
    assert paired_difference("miou", network, simple, 12, **KW)["low"] > 0
