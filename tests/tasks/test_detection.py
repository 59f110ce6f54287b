"""The object-detection task: the boxes label, quarantine reasons, encoding, the CenterNet
loss and decoding, the serving threshold, predictions and the box-prior baseline."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dlworkflow.tasks import TargetError, task_of
from dlworkflow.tasks.boxes import (
    best_f1_threshold,
    box_prior_fit,
    box_prior_outputs,
    decode,
    iou_matrix,
    nms,
)
from dlworkflow.tasks.detection import dump_boxes, load_boxes

TASK = task_of("object-detection")
LABEL = '{"size":[100,80],"boxes":[[50,10,90.123,40,"b"],[10,10,30,30,"a"]]}'


def test_the_label_is_compact_sorted_json_in_pixels_and_round_trips():
    text = TASK.parse_target(LABEL, column="label")
    assert text == '{"size":[100,80],"boxes":[[10,10,30,30,"a"],[50,10,90.12,40,"b"]]}'
    assert load_boxes(text) == ((100, 80), [(10, 10, 30, 30, "a"), (50, 10, 90.12, 40, "b")])
    assert dump_boxes((100, 80), load_boxes(text)[1]) == text
    empty = TASK.parse_target('{"size":[10,10],"boxes":[]}', column="label")
    assert load_boxes(empty) == ((10, 10), [])  # a valid negative image
    assert TASK.name == "object-detection" and TASK.dense and TASK.kind == "detection"


@pytest.mark.parametrize(
    ("label", "reason"),
    [
        ('{"size":[10,10],"boxes":[[1,1,1,5,"a"]]}', "degenerate box"),
        ('{"size":[10,10],"boxes":[[4,4,2,5,"a"]]}', "degenerate box"),
        ('{"size":[10,10],"boxes":[[1,1,11,5,"a"]]}', "outside the 10x10 image"),
        ('{"size":[10,10],"boxes":[[-1,1,5,5,"a"]]}', "outside the 10x10 image"),
        ("[1, 2", "not JSON"),
        ('{"size":[10,10]}', 'not {"size"'),
        ('{"boxes":[]}', "no image size"),
        ('{"size":[10,10],"boxes":[[1,1,5,"a"]]}', "not [x1, y1, x2, y2, class]"),
        ('{"size":[10,10],"boxes":[[1,1,5,5,""]]}', "has no class"),
        ('{"size":[10,10],"boxes":[[1,"x",5,5,"a"]]}', "not a number"),
        ("", "empty"),
    ],
)
def test_malformed_labels_are_quarantined_with_the_reason(label, reason):
    with pytest.raises(TargetError) as err:
        TASK.parse_target(label, column="annotations")
    assert reason in err.value.reason and "(annotations)" in err.value.reason


def test_classes_counts_strata_and_unknown_labels_come_from_the_boxes():
    a = dump_boxes((50, 50), [(1, 1, 9, 9, "tree"), (2, 2, 8, 8, "tree"), (3, 3, 9, 9, "dead")])
    b = dump_boxes((50, 50), [])
    assert TASK.output_names([a, b]) == ["dead", "tree"]
    assert TASK.target_counts({a: 2, b: 5}) == {"dead": 2, "tree": 4}
    assert TASK.strata([a, b]) == ["tree", "(none)"]
    assert TASK.unknown_labels(a, {"tree"}) == ["dead"]
    assert TASK.unknown_labels(b, set()) == []


def test_encode_normalises_pads_and_marks_unknown_classes():
    y = TASK.encode([LABEL, '{"size":[5,5],"boxes":[]}'], ["a", "b"])
    assert y.shape == (2, 2, 5) and y.dtype == np.float32
    np.testing.assert_allclose(y[0, 0], [0.5, 0.125, 0.90123, 0.5, 1], atol=1e-6)
    np.testing.assert_allclose(y[0, 1], [0.1, 0.125, 0.3, 0.375, 0], atol=1e-6)
    assert (y[1, :, 4] == -1).all()
    assert TASK.known(y).tolist() == [True, True]
    assert TASK.known(TASK.encode([LABEL], ["a"])).tolist() == [False]  # "b" unknown


def test_iou_and_per_class_nms():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [0, 0, 10, 10], [20, 20, 30, 30]])
    assert iou_matrix(boxes[:1], boxes[1:2])[0, 0] == pytest.approx(81 / 119)
    keep = nms(boxes, np.array([0.9, 0.8, 0.7, 0.6]), np.array([0, 0, 1, 0]), iou=0.5)
    assert keep.tolist() == [0, 2, 3]  # box 2 is another class: kept


def _logits_for(y: np.ndarray, classes: int, h: int, w: int) -> np.ndarray:
    """The outputs a perfect CenterNet would give for y (one peak per box)."""
    logits = np.full((len(y), classes + 4, h, w), -8.0)
    for i, rows in enumerate(y):
        for x1, y1, x2, y2, c in rows[rows[:, 4] >= 0]:
            cx, cy = (x1 + x2) / 2 * w, (y1 + y2) / 2 * h
            ix, iy = int(cx), int(cy)
            logits[i, int(c), iy, ix] = 6.0
            logits[i, classes:, iy, ix] = [
                np.log((x2 - x1) * w),
                np.log((y2 - y1) * h),
                cx - ix,
                cy - iy,
            ]
    return logits


def test_outputs_decode_peaks_to_the_boxes_and_the_metrics_reach_one():
    y = TASK.encode([LABEL, '{"size":[5,5],"boxes":[]}'], ["a", "b"])
    out = TASK.outputs(_logits_for(y, 2, 20, 25), {})
    assert out.shape == (2, 100, 6)
    found = out[0][out[0][:, 4] > 0.5]
    assert len(found) == 2 and len(out[1][out[1][:, 4] > 0.5]) == 0
    order = np.argsort(found[:, 5])
    np.testing.assert_allclose(found[order, :4], y[0, ::-1, :4], atol=1e-5)
    scores = TASK.scores(y, out, np.ones((1, 2)), {"input_size": [80, 100]})
    assert scores["map"][0] == pytest.approx(1.0) and scores["map50"][0] == pytest.approx(1.0)
    assert scores["ap_small"][0] == pytest.approx(1.0)  # 20x20 and 40x30 pixels
    assert np.isnan(scores["ap_large"][0])  # no box over 96x96 pixels
    target = TASK.fit_on_validation(y, out, TASK.fit_target(y))
    assert 0.5 < target["score_threshold"] <= found[:, 4].min()
    shown = TASK.prediction(out[0], ["a", "b"], target)
    assert shown["count"] == 2 and {b["label"] for b in shown["boxes"]} == {"a", "b"}
    columns = TASK.prediction_columns(out, ["a", "b"], target)
    assert columns["count"] == [2, 0] and len(json.loads(columns["boxes"][0])) == 2


def test_the_loss_is_lowest_for_the_perfect_outputs_and_trains():
    import torch

    y = TASK.encode([LABEL, '{"size":[5,5],"boxes":[]}'], ["a", "b"])
    perfect = torch.tensor(_logits_for(y, 2, 20, 25), dtype=torch.float32)
    noise = perfect + torch.randn_like(perfect)
    y_t = torch.from_numpy(y)
    assert TASK.loss(perfect, y_t, {}) < TASK.loss(noise, y_t, {})
    logits = torch.zeros(2, 6, 20, 25, requires_grad=True)
    optimizer = torch.optim.Adam([logits], lr=0.1)
    first = None
    for _ in range(60):
        optimizer.zero_grad()
        loss = TASK.loss(logits, y_t, {})
        loss.backward()
        optimizer.step()
        first = float(loss.detach()) if first is None else first
    assert float(loss.detach()) < 0.2 * first
    decoded = TASK.outputs(logits.detach().numpy(), {})
    assert TASK.scores(y, decoded, np.ones((1, 2)), {})["map50"][0] == pytest.approx(1.0)


def test_the_box_prior_tiles_the_image_with_the_mean_box_of_each_class():
    y = TASK.encode(
        [dump_boxes((100, 100), [(0, 0, 20, 20, "a"), (10, 10, 40, 50, "b")])], ["a", "b"]
    )
    params = box_prior_fit(y)
    np.testing.assert_allclose(params["sizes"], [[0.2, 0.2], [0.3, 0.4]], atol=1e-6)
    out = box_prior_outputs(params, 3)
    assert out.shape == (3, 100, 6) and (out[0] == out[2]).all()
    a = out[0][out[0][:, 5] == 0]
    assert len(a) == 25 and np.allclose(a[:, 2] - a[:, 0], 0.2)  # a 5x5 grid of 20% boxes
    assert len(set(out[0][out[0][:, 5] >= 0, 4])) == 1  # one constant score (equal shares)
    json.dumps(params)  # JSON-ready


def test_the_serving_threshold_maximises_f1_at_iou_half():
    y = np.array([[[0, 0, 0.5, 0.5, 0], [0.5, 0.5, 1, 1, 0]]], dtype=np.float32)
    out = np.array(
        [[[0, 0, 0.5, 0.5, 0.9, 0], [0.6, 0.0, 0.9, 0.3, 0.8, 0], [0.5, 0.5, 1, 1, 0.4, 0]]]
    )
    # 0.9: tp (F1 2/3); 0.8: +fp (1/2); 0.4: +tp (4/5) -> the best keeps all three
    assert best_f1_threshold(y, out) == 0.4
    assert best_f1_threshold(y, out[:, :2]) == 0.9
    assert len(decode(np.zeros((1, 5, 4, 4)), classes=1, top_k=3)[0]) == 3
