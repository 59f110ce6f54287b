"""The full report of the dense tasks on real ingested data, judged by hand-built networks
(training is another step's business): builtin:trees (deepforest's NEON tree crowns, 56
tiles of 400 px grouped by image) and the first 120 mosaics of digit-masks (real MNIST
digits, derived masks). The report carries every metric with its interval, per-class
scores, error analysis and its figures, the box-prior / majority baseline with the paired
difference; the gate judges map / miou, and importance records why it was not measured."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from dlworkflow.evaluate.full_report import full_report, metrics_file
from dlworkflow.evaluate.gate import judge
from dlworkflow.evaluate.test_step import TestResult
from dlworkflow.models.predict import predict_logits, predict_outputs
from dlworkflow.project import Project
from dlworkflow.store import load_split
from dlworkflow.tasks import task_of

PNG = b"\x89PNG\r\n\x1a\n"
MOSAICS = 120
SETTINGS = {
    "evaluate.bootstrap_samples": 100,
    "evaluate.importance": True,
    "evaluate.slice_min_samples": 5,
}


def _project(root: Path, task: str, source: str, metric: str, target: float) -> Project:
    project = Project.init(root, task=task)
    project.update_config(SETTINGS)
    project.define(metric=metric, target=target, objective="tests")
    project.ingest(source, progress=False)
    project.split()
    return project


class StrideConv:
    """A fixed, seeded stride-4 convolution: C + 4 CenterNet maps (detection)."""

    @staticmethod
    def make(in_channels: int, out_channels: int):
        import torch

        torch.manual_seed(0)
        conv = torch.nn.Conv2d(in_channels, out_channels, kernel_size=4, stride=4)
        with torch.no_grad():
            conv.bias[: out_channels - 4] = -2.0  # heatmap logits around sigmoid 0.1
        return conv


class Threshold:
    """Ink (normalised pixel >= 0.5) is the digit 0, the rest background: a poor but real
    segmentation network of the 11 digit-mask classes."""

    @staticmethod
    def make(classes: int):
        import torch

        class Net(torch.nn.Module):
            def forward(self, x):
                ink = 40.0 * (x[:, :1] - 0.5)
                rest = torch.full_like(ink, -20.0).expand(-1, classes - 2, -1, -1)
                return torch.cat([-ink, ink, rest], dim=1)

        return Net()


@pytest.fixture(scope="module")
def trees(tmp_path_factory: pytest.TempPathFactory):
    project = _project(
        tmp_path_factory.mktemp("trees") / "p", "object-detection", "builtin:trees", "map", 0.3
    )
    meta = {
        "name": "stride-conv",
        "task": "object-detection",
        "modality": "image",
        "classes": ["Tree"],
        "image_size": [128, 128],
        "in_channels": 3,
        "mean": [0.5, 0.5, 0.5],
        "std": [0.25, 0.25, 0.25],
        "target": {
            "stride": 4,
            "input_size": [128, 128],
            "max_detections": 100,
            "nms_iou": 0.5,
            "score_threshold": 0.3,
        },
        "weights_sha256": "0" * 64,
    }
    return project, StrideConv.make(3, 5), meta


@pytest.fixture(scope="module")
def digits(tmp_path_factory: pytest.TempPathFactory):
    from dlworkflow.datasets.digit_masks import write_digit_masks

    root = tmp_path_factory.mktemp("digits")
    source = write_digit_masks(root / "digit-masks")
    for kind in ("images", "masks"):  # the first MOSAICS of the 1,250
        for path in sorted((source / kind).glob("*.png"))[MOSAICS:]:
            path.unlink()
    project = _project(root / "p", "semantic-segmentation", str(source), "miou", 0.5)
    names = ["background", *(str(d) for d in range(10))]
    meta = {
        "name": "threshold",
        "task": "semantic-segmentation",
        "modality": "image",
        "classes": names,
        "image_size": [56, 56],
        "in_channels": 1,
        "mean": [0.0],
        "std": [1.0],
        "target": {},
        "weights_sha256": "1" * 64,
    }
    return project, Threshold.make(len(names)), meta


def _judged(project: Project, report: dict, metric: str, target: float):
    """The gate's verdict on the report's metric, and the rows `dlw test` shows."""
    task = task_of(report["task"])
    m = report["metrics"][metric]
    verdict = judge(
        metric=metric,
        value=m["value"],
        interval=(m["low"], m["high"]),
        confidence=report["confidence"],
        target=target,
        higher_is_better=task.metric(metric).higher_is_better,
    )
    result = TestResult(
        verdict=verdict,
        n_samples=report["n"],
        accuracy=None,
        model=report["model"],
        previous_reads=0,
        seal_hash="0" * 64,
        report=report,
        root=str(project.root),
        companion_metric=task.companion_metric,
        companion=report["metrics"][task.companion_metric]["value"],
        criterion=task.metric(metric).criterion(target),
    )
    captions = [caption for caption, path in result.figures() if path.is_file()]
    return verdict, {**dict(result.rows()), "figures shown": captions}


def _contains(m: dict) -> bool:
    return m["low"] <= m["value"] <= m["high"]


def test_detection_report_on_tree_tiles(trees):
    project, model, meta = trees
    rows = load_split(project, "val")
    report = full_report(project, model, meta, rows, split="val", temperature=None)
    assert report == json.loads(Path(metrics_file(project.root, "val")).read_text())
    assert (report["kind"], report["n"], report["primary_metric"]) == ("detection", 12, "map")
    assert set(report["metrics"]) == {"map", "map50", "map75", "ap_small", "ap_medium", "ap_large"}
    for name in ("map", "map50"):
        assert _contains(report["metrics"][name]), name
    assert report["calibration"] is None
    [tree] = report["per_class"]
    assert tree["class"] == "Tree" and tree["boxes"] > 100
    assert tree["ap"]["value"] == pytest.approx(report["metrics"]["map"]["value"])
    errors = report["errors"]
    assert errors["boxes"] == tree["boxes"] == errors["found"] + errors["missed"]
    assert errors["shown"] == errors["found"] + errors["false_positives"]  # one class
    assert errors["worst_images"] and errors["worst_images"][0]["errors"] > 0
    # the baseline is the box prior, with the paired difference of the network to it
    b = report["baselines"]
    assert b["metric"] == "map" and b["simple"]["model"].startswith("box prior")
    assert b["simple"]["value"] > 0.0 and b["difference"]["low"] is not None
    assert b["difference"]["value"] == pytest.approx(b["network"]["value"] - b["simple"]["value"])
    for key in ("per_class", "box_errors"):
        assert (project.root / report["figures"][key]).read_bytes().startswith(PNG)
    imp = report["importance"]
    assert imp["not_applicable"] and imp["features"] == []
    assert "not applicable to dense tasks yet" in imp["summary"]
    m = report["metrics"]["map"]
    verdict, shown = _judged(project, report, "map", m["value"])  # a target it just meets
    assert verdict.passed and verdict.metric == "map"
    assert not _judged(project, report, "map", min(1.0, m["value"] + 0.01))[0].passed
    assert shown["AP per class (true boxes)"].startswith("Tree ")
    assert f"of {errors['boxes']} true boxes {errors['found']} found" in shown["errors"]
    assert "simple model" in shown and "map50" in shown  # the companion metric
    assert any(c.startswith("false positives (red)") for c in shown["figures shown"])


def test_dense_outputs_come_batch_by_batch_as_the_task_makes_them(trees, digits):
    for project, model, meta in (trees, digits):
        rows = load_split(project, "val").head(40)
        task = task_of(meta["task"])
        out = predict_outputs(project, model, meta, rows)
        whole = task.outputs(predict_logits(project, model, meta, rows), meta["target"])
        assert out.shape == whole.shape and out.dtype == np.asarray(whole).dtype
        np.testing.assert_allclose(out, whole, rtol=1e-5, atol=1e-6)
        empty = predict_outputs(project, model, meta, rows.head(0))
        assert empty.shape == (0, *whole.shape[1:])


def test_segmentation_report_and_the_gate_on_digit_masks(digits):
    project, model, meta = digits
    rows = load_split(project, "val")
    report = full_report(project, model, meta, rows, split="val", temperature=None)
    assert (report["kind"], report["n"], report["primary_metric"]) == ("segmentation", 19, "miou")
    assert set(report["metrics"]) == {"miou", "dice", "pixel_accuracy"}
    for m in report["metrics"].values():
        assert _contains(m) and m["low"] < m["high"]
    per_class = {e["class"]: e for e in report["per_class"]}
    assert per_class["background"]["iou"]["value"] > 0.9  # ink by threshold: the background
    assert per_class["5"]["iou"]["value"] == 0.0  # never predicted
    present = [e["iou"]["value"] for e in per_class.values() if e["iou"]["value"] is not None]
    assert np.mean(present) == pytest.approx(report["metrics"]["miou"]["value"])
    worst = report["worst_images"]
    assert len(worst) == 8 and worst[0]["iou"] <= worst[-1]["iou"]
    b = report["baselines"]
    assert b["simple"]["model"] == "per-pixel majority class of the training masks"
    # ink as "0" finds the background better than the majority's all-background does
    assert b["difference"]["low"] > 0 and not b["simple_as_good"]
    assert (project.root / report["figures"]["worst_masks"]).read_bytes().startswith(PNG)
    verdict, shown = _judged(project, report, "miou", 0.5)
    assert not verdict.passed and "miou" in verdict.sentence()  # 11 classes, one found
    assert "IoU per class (pixels)" in shown and "lowest IoU" in shown
    assert "not applicable to dense tasks yet" in shown["importance (val)"]
