"""`dlw evaluate` of image regression and image multi-label on real digits (scikit-learn's
8x8 UCI digits as 16x16 PNGs): the simple models see the downscaled pixels, and the largest
errors are shown as thumbnails."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from dlworkflow.project import Project
from modality_data import helpers

digit_image = helpers("conftest.py").digit_image
write_png = helpers("conftest.py").write_png

PER_DIGIT = 20
PNG = b"\x89PNG\r\n\x1a\n"


def _labels(digit: int) -> str:
    parts = ["even" if digit % 2 == 0 else "odd", "big" if digit >= 5 else "small"]
    if digit in (0, 6, 8, 9):
        parts.append("loop")
    return "|".join(parts)


def _project(root: Path, task: str, label_of, metric: str, target: float) -> Project:
    rows = []
    for digit in range(10):
        for k in range(PER_DIGIT):
            rel = f"img/d{digit}-{k:03d}.png"
            write_png(root / "data" / rel, digit_image(digit, k))
            rows.append({"path": rel, "label": label_of(digit)})
    source = root / "data" / "samples.csv"
    with open(source, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=["path", "label"])
        writer.writeheader()
        writer.writerows(rows)
    project = Project.init(root / "p", task=task)
    project.update_config({"train.learning_rate": 3e-3, "evaluate.bootstrap_samples": 300})
    project.define(metric=metric, target=target)
    project.ingest(str(source), progress=False)
    project.split()
    project.train(epochs=6, progress=False)
    return project


def test_image_regression_report_with_a_ridge_on_pixels_and_error_thumbnails(tmp_path):
    project = _project(tmp_path, "image-regression", str, "rmse", 2.0)
    report = project.evaluate("val").report
    assert report["modality"] == "image" and set(report["metrics"]) == {"rmse", "mae", "r2", "mape"}
    b = report["baselines"]
    assert b["simple"]["model"] == "ridge regression on 16x16 pixels"
    spread = float(np.std(np.repeat(np.arange(10.0), PER_DIGIT)))  # about 2.87
    # pixels say much about the digit's value: the ridge beats predicting the mean
    assert b["simple"]["value"] < b["mean"]["value"] and b["mean"]["value"] == pytest.approx(
        spread, rel=0.25
    )
    assert b["difference"]["low"] <= b["difference"]["value"] <= b["difference"]["high"]
    figures = report["figures"]
    assert "errors_table" not in figures
    for key in ("residuals", "errors"):
        assert (project.root / figures[key]).read_bytes()[:8] == PNG
    assert len(report["largest_errors"]) == min(16, report["n"])


def test_image_multilabel_report_with_one_vs_rest_on_pixels(tmp_path):
    project = _project(tmp_path, "image-multilabel", _labels, "macro_f1", 0.7)
    report = project.evaluate("val").report
    assert [r["label"] for r in report["per_label"]] == ["big", "even", "loop", "odd", "small"]
    b = report["baselines"]
    assert b["simple"]["model"] == "one-vs-rest logistic regression on 16x16 pixels"
    assert b["simple"]["value"] > b["prevalence"]["value"]
    figures = report["figures"]
    for key in ("per_label", "errors"):  # errors: thumbnails of the most wrong samples
        assert (project.root / figures[key]).read_bytes()[:8] == PNG
    assert "errors_table" not in figures
