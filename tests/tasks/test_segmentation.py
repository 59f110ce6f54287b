"""Semantic segmentation as a task (dlworkflow/tasks/segmentation.py, tasks/masks.py): labels
as run-length masks (round trip on real MNIST mosaics, malformed labels quarantined with the
reason), encoding at the network size, the metrics against hand-checked values and a direct
numpy computation, bootstrap rows, the majority baseline and the serve prediction."""

from __future__ import annotations

import base64
import io
import json

import numpy as np
import pytest

from dlworkflow.tasks import TargetError, task_of
from dlworkflow.tasks.masks import label_to_mask, mask_to_label, parse_label
from dlworkflow.tasks.segmentation import (
    majority_fit,
    majority_outputs,
    per_class_iou,
)
from segmentation_data import CLASSES, mnist_mosaics

TASK = task_of("semantic-segmentation")
NAMES = ["background", "a", "b", "c"]
TRUTH = np.array([[[0, 0, 1], [255, 2, 2]]], dtype=np.uint8)
PRED = np.array([[[0, 1, 1], [0, 2, 0]]])  # the 255 pixel is predicted 0: not counted


def one_hot(pred: np.ndarray, c: int) -> np.ndarray:
    return (np.arange(c)[None, :, None, None] == pred[:, None]).astype(np.float32)


def test_the_task_is_registered_with_its_metrics():
    assert (TASK.name, TASK.kind, TASK.modality, TASK.dense) == (
        "semantic-segmentation",
        "segmentation",
        "image",
        True,
    )
    assert TASK.default_model == "efficientnet_lite0_unet"
    assert TASK.primary_metrics() == ["miou", "dice", "pixel_accuracy"]
    assert (TASK.default_metric, TASK.companion_metric) == ("miou", "pixel_accuracy")


def test_metrics_match_hand_checked_values_and_skip_the_ignored_pixel():
    # truth/pred pairs on the 5 judged pixels: (0,0) (0,1) (1,1) (2,2) (2,0); class c never
    # appears, so the means run over 3 classes: IoU 1/3, 1/2, 1/2; Dice 1/2, 2/3, 2/3
    scores = TASK.scores(TRUTH, one_hot(PRED, 4), np.ones((1, 1)), {})
    assert scores["miou"][0] == pytest.approx(4 / 9, abs=1e-12)
    assert scores["dice"][0] == pytest.approx(11 / 18, abs=1e-12)
    assert scores["pixel_accuracy"][0] == pytest.approx(3 / 5, abs=1e-12)
    iou = per_class_iou(TRUTH, one_hot(PRED, 4), NAMES)
    assert iou["background"] == pytest.approx(1 / 3) and iou["a"] == iou["b"] == 0.5
    assert np.isnan(iou["c"])
    counted = TRUTH.copy()
    counted[0, 1, 0] = 1  # the same pixel judged (truth 1, predicted 0): one more error
    assert TASK.score("pixel_accuracy", counted, one_hot(PRED, 4), {}) == pytest.approx(3 / 6)


def direct_scores(truth: np.ndarray, pred: np.ndarray, c: int) -> dict[str, float]:
    """The metrics from the pixels themselves: one boolean mask per class over all images."""
    keep = truth != 255
    t, p = truth[keep], pred[keep]
    ious, dices = [], []
    for k in range(c):
        inter = np.sum((t == k) & (p == k))
        union = np.sum((t == k) | (p == k))
        if union:
            ious.append(inter / union)
            dices.append(2 * inter / (np.sum(t == k) + np.sum(p == k)))
    return {"miou": np.mean(ious), "dice": np.mean(dices), "pixel_accuracy": np.mean(t == p)}


def test_bootstrap_rows_are_weighted_sums_and_a_row_of_ones_is_the_point_estimate():
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 4, size=(6, 8, 8)).astype(np.uint8)
    truth[truth == 3] = rng.choice([3, 255], size=int((truth == 3).sum())).astype(np.uint8)
    pred = np.where(rng.random((6, 8, 8)) < 0.6, truth % 255, rng.integers(0, 4, (6, 8, 8)))
    weights = np.array([[1, 1, 1, 1, 1, 1], [2, 0, 1, 0, 3, 0], [0, 0, 0, 0, 0, 1]])
    scores = TASK.scores(truth, one_hot(pred, 4), weights, {})
    for b, row in enumerate(weights):
        drawn = np.repeat(np.arange(6), row)
        expected = direct_scores(truth[drawn], pred[drawn], 4)
        for name, value in expected.items():
            assert scores[name][b] == pytest.approx(value, abs=1e-12), (name, b)
    assert TASK.score("miou", truth, one_hot(pred, 4), {}) == scores["miou"][0]
    perfect = TASK.scores(truth, one_hot(truth % 255, 4), np.ones((1, 6)), {})
    assert perfect == {"miou": [1.0], "dice": [1.0], "pixel_accuracy": [1.0]}


def test_rle_labels_round_trip_real_mnist_mosaics_and_resize_by_nearest_neighbour():
    _, masks = mnist_mosaics(8)
    masks[0, :3, :] = 255  # an unlabelled band
    for mask in masks:
        label = mask_to_label(mask, CLASSES, ignore=255)
        assert len(label) < mask.size  # runs are shorter than the pixels
        assert np.array_equal(label_to_mask(label, CLASSES), mask)
        assert TASK.parse_target(label, column="mask") == label
    label = mask_to_label(masks[1], CLASSES)
    # pixel centres: output pixel i samples input (i + 0.5) * 2, the odd rows and columns
    assert np.array_equal(label_to_mask(label, CLASSES, size=(28, 28)), masks[1][1::2, 1::2])
    big = label_to_mask(label, CLASSES, size=(112, 112))
    assert np.array_equal(big[::2, ::2], masks[1])
    # the model's classes decide the indices; a class it lacks is not judged (255)
    digits = sorted(set(np.unique(masks[1]).tolist()) - {0})
    dropped = CLASSES[digits[0]]
    known = [c for c in CLASSES if c != dropped]
    remapped = label_to_mask(label, known)
    assert (remapped[masks[1] == digits[0]] == 255).all()
    assert set(np.unique(remapped[masks[1] == 0]).tolist()) == {0}


def test_malformed_labels_are_quarantined_with_their_reason():
    good = json.loads(mask_to_label(TRUTH[0], NAMES))
    cases = {
        "{not json": "mask label is not valid JSON",
        json.dumps({**good, "rle": [0, 2, 1, 1]}): "mask runs cover 3 pixels, not 3x2 = 6",
        json.dumps({**good, "rle": [0, 2, 7, 1, -1, 1, 2, 2]}): "mask class index 7 out of range",
        json.dumps({**good, "size": [3, -2]}): "mask size [3, -2] is not [width, height]",
        json.dumps({**good, "size": [70_000, 1], "rle": [0, 70_000]}): "exceeds the limit",
        json.dumps({"size": [3, 2]}): 'mask label lacks "size", "classes" or "rle"',
        "": "no mask (empty mask)",
    }
    for label, reason in cases.items():
        with pytest.raises(TargetError) as err:
            TASK.parse_target(label, column="mask")
        assert reason in err.value.reason, (label, err.value.reason)


def test_counts_names_strata_and_unknown_classes_come_from_the_masks():
    _, masks = mnist_mosaics(6)
    labels = [mask_to_label(m, CLASSES) for m in masks]
    present = [{CLASSES[k] for k in np.unique(m).tolist() if k} | {"background"} for m in masks]
    counts = TASK.target_counts({label: 1 for label in labels})
    assert counts == {c: sum(c in p for p in present) for c in sorted(set().union(*present))}
    assert TASK.output_names(labels) == CLASSES  # background first, then the rest sorted
    for mask, stratum in zip(masks, TASK.strata(labels)):
        values, n = np.unique(mask[mask > 0], return_counts=True)
        assert stratum == CLASSES[int(values[np.argmax(n)])]  # the largest digit
    assert TASK.strata([mask_to_label(np.zeros((4, 4), int), CLASSES)]) == ["background"]
    assert TASK.unknown_labels(labels[0], {"background"}) == sorted(present[0] - {"background"})


def test_encode_resizes_to_the_network_size_and_loss_skips_the_ignore_index():
    import torch

    _, masks = mnist_mosaics(3)
    masks[0, 1, :] = 255
    y = TASK.encode([mask_to_label(m, CLASSES) for m in masks], CLASSES, size=(28, 28))
    assert y.shape == (3, 28, 28) and y.dtype == np.uint8
    assert np.array_equal(y[1:], masks[1:, 1::2, 1::2]) and (y[0, 0] == 255).all()
    assert TASK.known(np.full((2, 4, 4), 255, dtype=np.uint8)).tolist() == [False, False]
    logits = torch.randn(3, len(CLASSES), 28, 28)
    target = torch.from_numpy(y.astype(np.int64))
    loss = TASK.loss(logits, target, {})
    flipped = target.clone()
    flipped[target == 255] = 0
    # changing the logits at ignored pixels leaves the loss unchanged
    changed = logits.clone()
    changed[0, 1, 0, :] += 100.0  # class "0" made certain on the ignored row
    assert float(TASK.loss(changed, target, {})) == pytest.approx(float(loss), rel=1e-6)
    assert float(TASK.loss(changed, flipped, {})) != pytest.approx(float(loss), rel=1e-3)
    nothing = torch.full_like(target, 255)
    assert float(TASK.loss(logits, nothing, {})) == 0.0


def test_the_majority_baseline_predicts_each_pixels_most_frequent_training_class():
    y = np.array([[[0, 1], [2, 255]], [[0, 1], [1, 255]], [[1, 1], [2, 255]]], dtype=np.uint8)
    params = majority_fit(y, num_classes=3)
    assert params["mask"] == [[0, 1], [2, 1]]  # the all-ignored pixel: 1, most frequent
    json.dumps(params)
    out = majority_outputs(params, 4)
    assert out.shape == (4, 3, 2, 2) and out.dtype == np.float32
    assert (out.argmax(axis=1) == np.array([[0, 1], [2, 1]])).all()
    assert TASK.score("pixel_accuracy", y, majority_outputs(params, 3), {}) == pytest.approx(7 / 9)


def test_serve_prediction_is_a_png_mask_with_class_shares():
    from PIL import Image

    out = one_hot(PRED, 4)[0]
    answer = TASK.prediction(out, NAMES, {})
    png = Image.open(io.BytesIO(base64.b64decode(answer["mask_png"])))
    assert png.format == "PNG" and np.array_equal(np.asarray(png), PRED[0])
    assert answer["classes"] == NAMES
    assert answer["class_share"] == {"background": 0.5, "a": 2 / 6, "b": 1 / 6, "c": 0.0}
    columns = TASK.prediction_columns(one_hot(PRED, 4), NAMES, {})
    assert columns["share_background"] == ["0.500000"] and columns["share_c"] == ["0.000000"]
    probabilities = TASK.outputs(np.random.default_rng(1).normal(size=(2, 4, 3, 3)), {})
    assert probabilities.dtype == np.float32
    assert np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-6)
    assert parse_label(mask_to_label(PRED[0], NAMES)).pixel_counts() == {
        "background": 3,
        "a": 2,
        "b": 1,
    }
