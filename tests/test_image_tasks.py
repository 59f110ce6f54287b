"""Image regression and image multi-label through ingest, split and train, on real digits
(scikit-learn's 8x8 UCI digits as 16x16 PNGs): the digit's value as a number to regress, and
properties of the digit (parity, size, closed loops) as a label set."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from dlworkflow.project import Project
from modality_data import helpers

digit_image = helpers("conftest.py").digit_image
write_png = helpers("conftest.py").write_png

PER_DIGIT = 20


def _table(root: Path, label_of) -> Path:
    rows = []
    for digit in range(10):
        for k in range(PER_DIGIT):
            rel = f"img/d{digit}-{k:03d}.png"
            write_png(root / rel, digit_image(digit, k))
            rows.append({"path": rel, "label": label_of(digit)})
    with open(root / "samples.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=["path", "label"])
        writer.writeheader()
        writer.writerows(rows)
    return root / "samples.csv"


def _labels(digit: int) -> str:
    parts = ["even" if digit % 2 == 0 else "odd", "big" if digit >= 5 else "small"]
    if digit in (0, 6, 8, 9):
        parts.append("loop")
    return "|".join(parts)


def _project(tmp_path: Path, task: str, label_of, metric: str, target: float) -> Project:
    source = _table(tmp_path / "data", label_of)
    project = Project.init(tmp_path / "p", task=task)
    project.update_config({"train.learning_rate": 3e-3, "augment.mixup": 0.2})
    project.define(metric=metric, target=target)
    project.ingest(str(source), progress=False)
    project.split()
    return project


def test_image_regression_learns_the_digits_value_and_keeps_its_scaling(tmp_path):
    project = _project(tmp_path, "image-regression", str, "rmse", 2.0)
    result = project.train(epochs=12, progress=False)
    meta = json.loads((Path(result.folder) / "model.json").read_text())
    assert meta["task"] == "image-regression" and meta["classes"] == ["value"]
    values = np.repeat(np.arange(10.0), PER_DIGIT)
    assert meta["target"]["mean"] == pytest.approx(4.5, abs=0.4)  # the train split's
    assert meta["target"]["std"] == pytest.approx(values.std(), rel=0.1)
    # predicting the mean would score an RMSE of about 2.87 (the values' spread)
    assert result.metric == "rmse" and result.best_metric < 0.75 * values.std()
    assert [row["val_rmse"] for row in result.history][result.best_epoch - 1] == min(
        row["val_rmse"] for row in result.history
    )  # the best epoch is the lowest RMSE


def test_image_multilabel_learns_label_sets_with_thresholds_per_label(tmp_path):
    project = _project(tmp_path, "image-multilabel", _labels, "macro_f1", 0.7)
    result = project.train(epochs=12, progress=False)
    meta = json.loads((Path(result.folder) / "model.json").read_text())
    assert meta["classes"] == ["big", "even", "loop", "odd", "small"]
    thresholds = meta["target"]["thresholds"]
    assert len(thresholds) == 5 and all(0.05 <= t <= 0.95 for t in thresholds)
    assert result.metric == "macro_f1" and result.best_metric > 0.7
    assert result.companion_metric == "micro_f1" and result.val_companion > 0.7
