"""Slices without configuration (evaluate.auto_slices), the worst slice, and inclusion
(data.sensitive_columns), on real data: scikit-learn's digits (images: sliced by brightness
and, after an addition, by source), reviews (texts: by length), diabetes (a table: by its most
important features; its `sex` column as a sensitive one)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from dlworkflow.evaluate.auto_slices import auto_columns, source_of, worst_slice
from dlworkflow.evaluate.slices import SliceError, slice_report
from dlworkflow.project import Project
from modality_data import TINY_TRANSFORMER, review_sample
from modality_data import trained_project as trained
from task_projects import regression_project

DIGITS = {
    "model.name": "mlp",
    "train.epochs": 1,
    "train.batch_size": 64,
    "train.learning_rate": 0.002,
    "train.threads": 2,
    "evaluate.bootstrap_samples": 200,
}


@pytest.fixture(scope="module")
def digits(tmp_path_factory: pytest.TempPathFactory) -> Project:
    """Digits (8x8 images), trained one epoch, evaluate.slices left empty."""
    project = Project.init(tmp_path_factory.mktemp("auto") / "digits")
    project.define(metric="accuracy", target=0.5)
    project.update_config(DIGITS)
    project.ingest("builtin:digits", progress=False)
    project.split()
    project.train(progress=False)
    return project


def test_evaluate_slices_images_by_brightness_without_configuration(digits: Project):
    report = digits.evaluate("val").report
    # before: report["slices"] == [] whenever evaluate.slices is empty
    assert report["slices_auto"] is True
    columns = {entry["column"]: entry for entry in report["slices"]}
    assert "brightness" in columns  # recorded per image at ingest: nothing decoded again
    assert "image size" not in columns  # every digit is 8x8: a single value says nothing
    entry = columns["brightness"]
    assert entry["by"] == "quartile" and entry.get("auto") is True
    assert sum(s["n"] for s in entry["slices"]) == report["n"]
    for s in entry["slices"]:
        assert s["low"] <= s["metric"] <= s["high"]
    assert "worst_slice" in report and report["inclusion"] == []
    saved = json.loads((digits.root / "reports/evaluate/val/metrics.json").read_text())
    assert saved["slices"] == report["slices"] and saved["slices_auto"] is True


def test_test_slices_the_sealed_test_set_too(digits: Project):
    result = digits.test()
    report = result.report
    assert report["split"] == "test" and report["slices_auto"] is True
    assert [e["column"] for e in report["slices"]] == ["brightness"]
    rows = dict(result.rows())
    assert "slices by brightness" in rows and "worst slice" in rows
    assert rows["importance (val)"].startswith("occlusion of a 4x4 grid")
    # the report's results show them, and the occlusion heatmap
    from dlworkflow.report.evidence import gather
    from dlworkflow.report.sections import results

    body = results(gather(digits, with_audit=False)).body
    assert "Sliced by what the data has" in body and "What the model relies on" in body
    assert "r1c1" in body and "the fall of the metric with each cell occluded" in body
    assert (digits.root / report["figures"]["importance"]).is_file()


def test_configured_slices_win_and_auto_slices_can_be_turned_off(digits: Project):
    digits.update_config({"evaluate.auto_slices": False})
    try:
        report = Project.load(digits.root).evaluate("val").report
        assert report["slices"] == [] and report["slices_auto"] is False
    finally:
        digits.update_config({"evaluate.auto_slices": True})
    digits.update_config({"evaluate.slices": ["contrast"]})
    try:
        report = Project.load(digits.root).evaluate("val").report
        assert [e["column"] for e in report["slices"]] == ["contrast"]
        assert report["slices_auto"] is False
    finally:
        digits.update_config({"evaluate.slices": []})


def test_source_folder_and_additions_become_a_slice():
    assert source_of("add1/3/scan-7.png", "3") == "add1"
    assert source_of("3/mnist-00007.png", "3") == "original"  # the label folder is no source
    assert source_of("scanner-b/3/x.png", "3") == "scanner-b"
    rows = pd.DataFrame(
        {
            "sample_id": ["0/a.png", "1/b.png", "add1/0/c.png", "add1/1/d.png"],
            "label": ["0", "1", "0", "1"],
            "width": [28, 28, 8, 8],
            "height": [28, 28, 8, 8],
            "brightness": [30.0, 40.0, 50.0, 60.0],
            "group": [None, None, None, None],
        }
    )
    frame = auto_columns(rows, modality="image", important=[])
    assert list(frame.columns) == ["image size", "brightness", "source"]
    assert frame["source"].tolist() == ["original", "original", "add1", "add1"]
    assert frame["image size"].tolist() == ["28x28", "28x28", "8x8", "8x8"]


def test_the_worst_slice_is_flagged_only_when_its_interval_is_below(digits: Project):
    """Real digits labels; the predictions are right on the bright half and a coin toss on
    the dark half: the dark slices' intervals lie below the overall accuracy."""
    from dlworkflow.store import load_split

    rows = load_split(digits, "val")
    y = rows["label"].astype(int).to_numpy()
    dark = rows["brightness"].to_numpy() < np.median(rows["brightness"])
    rng = np.random.default_rng(0)
    predicted = np.where(dark & (rng.random(len(y)) < 0.5), (y + 1) % 10, y)
    proba = np.eye(10)[predicted] * 0.9 + 0.01
    overall = float((predicted == y).mean())
    slices = slice_report(
        rows,
        y,
        proba,
        ["brightness"],
        metric="accuracy",
        n_resamples=200,
        confidence=0.95,
        seed=0,
        min_samples=20,
    )
    worst = worst_slice(slices, overall, higher_is_better=True)
    assert worst is not None and worst["column"] == "brightness"
    assert worst["high"] < overall and worst["metric"] == min(
        s["metric"] for s in slices[0]["slices"]
    )
    assert worst_slice(slices, 0.0, higher_is_better=True) is None  # nothing lies below 0


def test_texts_are_sliced_by_length(tmp_path):
    source = review_sample(tmp_path, 240, seed=3)
    project = trained(
        tmp_path / "text",
        task="text-classification",
        source=source,
        config={**TINY_TRANSFORMER, "evaluate.slice_min_samples": 5, "evaluate.importance": False},
    )
    report = project.evaluate("val").report
    (entry,) = [e for e in report["slices"] if e["column"] == "text length (words)"]
    assert entry["by"] == "quartile" and sum(s["n"] for s in entry["slices"]) == report["n"]


@pytest.fixture(scope="module")
def diabetes(tmp_path_factory: pytest.TempPathFactory) -> Project:
    return regression_project(
        tmp_path_factory.mktemp("auto") / "diabetes",
        epochs=4,
        **{"evaluate.slice_min_samples": 10, "evaluate.bootstrap_samples": 200},
    )


def test_tables_are_sliced_by_their_most_important_features(diabetes: Project):
    report = Project.load(diabetes.root).evaluate("val").report
    important = [e["name"] for e in report["importance"]["features"] if e["drop"] > 0][:2]
    assert [e["column"] for e in report["slices"]] == important
    assert report["worst_slice"] is None or report["worst_slice"]["column"] in important


def test_tables_without_importance_are_sliced_by_a_proxy(diabetes: Project):
    diabetes.update_config({"evaluate.importance": False})
    try:
        report = Project.load(diabetes.root).evaluate("val").report
    finally:
        diabetes.update_config({"evaluate.importance": True})
    assert report["importance"] is None
    columns = [e["column"] for e in report["slices"]]
    assert len(columns) == 2 and "bmi" in columns  # body mass explains the most variance


def test_sensitive_columns_get_groups_and_the_largest_gap(diabetes: Project):
    diabetes.update_config({"data.sensitive_columns": ["sex"]})
    try:
        report = Project.load(diabetes.root).evaluate("val").report
    finally:
        diabetes.update_config({"data.sensitive_columns": []})
    (entry,) = report["inclusion"]
    assert entry["column"] == "sex" and len(entry["slices"]) == 2
    gap = entry["gap"]
    values = {s["value"]: s["metric"] for s in entry["slices"]}
    # rmse: lower is better, so the better group has the smaller error
    assert values[gap["better"]] <= values[gap["worse"]]
    assert gap["value"] == pytest.approx(values[gap["worse"]] - values[gap["better"]])
    assert gap["low"] <= gap["value"] <= gap["high"]


def test_an_unknown_sensitive_column_names_the_valid_ones(diabetes: Project):
    diabetes.update_config({"data.sensitive_columns": ["gender"]})
    try:
        with pytest.raises(SliceError) as caught:
            Project.load(diabetes.root).evaluate("val")
    finally:
        diabetes.update_config({"data.sensitive_columns": []})
    text = str(caught.value)
    assert "data.sensitive_columns" in text and "'gender'" in text
    assert "sex" in caught.value.expected and "bmi" in caught.value.expected
