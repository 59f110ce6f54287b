"""`dlw evaluate` and `dlw test` for the regression and multi-label tasks, on real data:
scikit-learn's diabetes (tabular regression, success RMSE <= 70) and the first 800 genes of
Yeast (tabular multi-label, 14 labels, success macro F1 >= 0.3), each trained for 8 epochs
(tests/task_projects.py). The metrics are cross-checked against scikit-learn on the same
predictions, every interval contains its estimate, the baselines are the task's own, and the
gate judges RMSE in its direction (lower is better: the pessimistic end is the upper one)."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest

from dlworkflow.evaluate.bootstrap import bootstrap_interval
from dlworkflow.evaluate.full_report import metrics_file
from dlworkflow.models.predict import load_model, predict_outputs
from dlworkflow.project import Project
from dlworkflow.store import load_split
from dlworkflow.tasks import task_of
from task_projects import multilabel_project, regression_project

PNG = b"\x89PNG\r\n\x1a\n"
# `dlw test --json`, as classification's
JSON_KEYS = {
    "verdict",
    "exit_code",
    "model",
    "n_samples",
    "accuracy",
    "companion_metric",
    "companion",
    "previous_reads",
    "seal_hash",
    "metrics_file",
    "report",
}
SHARED_KEYS = {
    "metrics",
    "n",
    "confidence",
    "split",
    "model",
    "modality",
    "primary_metric",
    "primary_metric_agreed",
    "unknown_labels",
    "slices",
    "baselines",
    "figures",
    "task",
    "calibration",
}


@pytest.fixture(scope="module")
def regression(tmp_path_factory: pytest.TempPathFactory) -> Project:
    """Diabetes, trained; validation sliced by sex (two values, each with enough samples)."""
    return regression_project(
        tmp_path_factory.mktemp("regression") / "diabetes",
        **{"evaluate.slices": ["sex"], "evaluate.slice_min_samples": 10},
    )


@pytest.fixture(scope="module")
def multilabel(tmp_path_factory: pytest.TempPathFactory) -> Project:
    return multilabel_project(tmp_path_factory.mktemp("multilabel") / "yeast")


def _val_outputs(project: Project) -> tuple[np.ndarray, np.ndarray, dict]:
    """(encoded targets, outputs, model meta) of the validation rows, computed here."""
    model, meta = load_model(project)
    rows = load_split(project, "val")
    task = task_of(meta["task"])
    y = task.encode(rows["label"].astype(str).tolist(), meta["classes"])
    return y, predict_outputs(project, model, meta, rows), meta


def _contains(m: dict) -> bool:
    return m["low"] <= m["value"] <= m["high"]


# --- regression ----------------------------------------------------------------------------


def test_regression_evaluate_reports_every_metric_with_an_interval(regression: Project):
    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

    result = regression.evaluate("val")
    report = result.report
    assert set(report) >= SHARED_KEYS
    assert (report["task"], report["split"], report["primary_metric"]) == (
        "tabular-regression",
        "val",
        "rmse",
    )
    assert report["calibration"] is None and report["unknown_labels"] == 0
    assert set(report["metrics"]) == {"rmse", "mae", "r2", "mape"}
    for name, m in report["metrics"].items():
        assert _contains(m), (name, m)
        assert m["low"] < m["high"], name  # 67 patients: a real spread, not a point
    assert report == json.loads(Path(metrics_file(regression.root, "val")).read_text())

    y, out, _ = _val_outputs(regression)
    assert report["n"] == len(y) == 67 and out.shape == (67, 1)
    m = report["metrics"]
    assert m["rmse"]["value"] == pytest.approx(
        math.sqrt(mean_squared_error(y, out[:, 0])), rel=1e-9
    )
    assert m["mae"]["value"] == pytest.approx(mean_absolute_error(y, out[:, 0]), rel=1e-9)
    assert m["r2"]["value"] == pytest.approx(r2_score(y, out[:, 0]), rel=1e-9)
    assert m["mape"]["value"] == pytest.approx(np.mean(np.abs(out[:, 0] - y) / np.abs(y)), rel=1e-9)
    # the vectorised interval is the resampling loop's (the same draws for the same seed)
    loop = bootstrap_interval(
        lambda t, p: math.sqrt(mean_squared_error(t, p[:, 0])),
        y.astype(np.float64),
        out,
        n_resamples=report["n_resamples"],
        confidence=report["confidence"],
        seed=report["seed"],
    )
    assert (m["rmse"]["low"], m["rmse"]["high"]) == pytest.approx(loop, rel=1e-9)
    assert 40 < m["rmse"]["value"] < 70  # the target's standard deviation is 77

    labels = [label for label, _ in result.rows()]
    assert "RMSE (lower is better)" in labels and "R^2" in labels
    assert "calibration" in labels and "largest errors" in labels


def test_regression_baselines_mean_median_and_ridge(regression: Project):
    report = regression.evaluate("val").report
    b = report["baselines"]
    assert (b["metric"], b["higher_is_better"]) == ("rmse", False)
    train = load_split(regression, "train")["label"].astype(float).to_numpy()
    y, _, _ = _val_outputs(regression)
    assert b["mean"]["prediction"] == pytest.approx(train.mean())
    assert b["median"]["prediction"] == pytest.approx(np.median(train))
    for name in ("mean", "median"):
        constant = b[name]["prediction"]
        assert b[name]["value"] == pytest.approx(np.sqrt(np.mean((y - constant) ** 2)), rel=1e-6)
    simple = b["simple"]
    assert simple["model"] == "ridge regression on the table encoding"
    assert simple["n_train"] == len(train) and simple["alpha"] > 0
    assert simple["value"] < b["mean"]["value"] - 5  # ridge explains much of the variance
    assert b["network"] == report["metrics"]["rmse"]
    for name in ("network", "mean", "median", "simple"):
        assert _contains(b[name]), name
    d = b["difference"]  # network - ridge, paired
    assert d["value"] == pytest.approx(b["network"]["value"] - simple["value"])
    assert d["low"] <= d["value"] <= d["high"] and d["low"] < d["high"]
    assert b["simple_as_good"] == (d["high"] >= 0)  # lower is better: as good unless < 0


def test_regression_error_analysis_and_residual_plot(regression: Project):
    report = regression.evaluate("val").report
    errors = report["largest_errors"]
    assert len(errors) == 16
    sizes = [abs(e["residual"]) for e in errors]
    assert sizes == sorted(sizes, reverse=True) and sizes[0] == report["residuals"]["max_abs"]
    for e in errors:
        assert e["residual"] == pytest.approx(e["true"] - e["predicted"])
        assert set(e["features"]) == {"age", "sex", "bmi", "bp", "s1", "s2"}  # sensitivity none
    y, out, _ = _val_outputs(regression)
    assert report["residuals"]["mean"] == pytest.approx(float(np.mean(y - out[:, 0])), rel=1e-6)

    figures = report["figures"]
    png = regression.root / figures["residuals"]
    assert png.name == "residuals.png" and png.read_bytes()[:8] == PNG
    with open(regression.root / figures["errors_table"], newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert [r["sample_id"] for r in rows] == [e["sample_id"] for e in errors]
    assert float(rows[0]["residual"]) == pytest.approx(errors[0]["residual"])


def test_regression_slices_by_a_feature(regression: Project):
    report = regression.evaluate("val").report
    (entry,) = report["slices"]
    assert (entry["column"], entry["by"], entry["metric"]) == ("sex", "value", "rmse")
    assert sum(s["n"] for s in entry["slices"]) == report["n"]
    assert len(entry["slices"]) == 2
    for s in entry["slices"]:
        assert s["low"] <= s["metric"] <= s["high"]


def test_regression_test_is_judged_in_the_direction_of_rmse(regression: Project):
    result = regression.test()  # success criterion: rmse <= 70
    v = result.verdict
    rmse = result.report["metrics"]["rmse"]
    assert (v.metric, v.higher_is_better, v.target) == ("rmse", False, 70.0)
    assert v.value == rmse["value"] < 70 and v.passed and result.exit_code == 0
    assert (
        v.sentence().startswith(f"PASS: test rmse {v.value:.4f}") and "<= target 70" in v.sentence()
    )
    rows = dict(result.rows())
    assert rows["target"] == "rmse <= 70"
    assert rows["mae"] == f"{result.report['metrics']['mae']['value']:.4f}"  # the companion
    assert result.accuracy is None and result.companion_metric == "mae"
    out = result.to_json()
    assert set(out) == JSON_KEYS and out["accuracy"] is None
    assert out["report"] == json.loads(Path(out["metrics_file"]).read_text())

    try:
        regression.update_config({"problem.target": 1.0})
        failed = regression.test()
        assert not failed.verdict.passed and failed.exit_code == 3
        assert "> target 1" in failed.verdict.sentence()
        # judged on the interval: the pessimistic end of an RMSE interval is its HIGH end
        regression.update_config(
            {"problem.target": rmse["high"] + 0.01, "evaluate.gate_on": "lower_bound"}
        )
        strict = regression.test()
        assert strict.verdict.judged_value == strict.verdict.interval[1] == rmse["high"]
        assert strict.verdict.passed
        assert "the upper bound of the 95% CI" in strict.verdict.sentence()
        assert dict(strict.rows())["target"].endswith("(judged on the interval's upper bound)")
        regression.update_config({"problem.target": rmse["high"] - 0.01})
        assert not regression.test().verdict.passed  # the estimate meets it, the interval not
        assert rmse["value"] < rmse["high"] - 0.01
    finally:
        regression.update_config({"problem.target": 70.0, "evaluate.gate_on": "value"})


# --- multi-label ---------------------------------------------------------------------------


def test_multilabel_evaluate_metrics_match_scikit_learn(multilabel: Project):
    from sklearn.metrics import (
        accuracy_score,
        average_precision_score,
        f1_score,
        hamming_loss,
    )

    result = multilabel.evaluate("val")
    report = result.report
    assert set(report) >= SHARED_KEYS
    assert (report["task"], report["primary_metric"]) == ("tabular-multilabel", "macro_f1")
    assert report["calibration"] is None
    assert set(report["metrics"]) == {
        "macro_f1",
        "micro_f1",
        "map",
        "subset_accuracy",
        "hamming_loss",
    }
    for name, m in report["metrics"].items():
        assert _contains(m), (name, m)
        assert m["low"] < m["high"], name

    y, out, meta = _val_outputs(multilabel)
    truth = y.astype(int)
    thresholds = np.array(meta["target"]["thresholds"])
    pred = (out >= thresholds).astype(int)
    assert [report["thresholds"][name] for name in meta["classes"]] == list(thresholds)
    judged = [j for j in range(truth.shape[1]) if truth[:, j].any() or pred[:, j].any()]
    m = report["metrics"]
    assert m["macro_f1"]["value"] == pytest.approx(
        f1_score(truth, pred, average="macro", labels=judged, zero_division=0), rel=1e-9
    )
    assert m["micro_f1"]["value"] == pytest.approx(f1_score(truth, pred, average="micro"), rel=1e-9)
    with_positives = [j for j in range(truth.shape[1]) if truth[:, j].any()]
    assert m["map"]["value"] == pytest.approx(
        np.mean([average_precision_score(truth[:, j], out[:, j]) for j in with_positives]), rel=1e-9
    )
    assert m["subset_accuracy"]["value"] == pytest.approx(accuracy_score(truth, pred))
    assert m["hamming_loss"]["value"] == pytest.approx(hamming_loss(truth, pred))

    labels = [label for label, _ in result.rows()]
    assert "Hamming loss (lower is better)" in labels and "F1 per label (support)" in labels


def test_multilabel_per_label_table_and_most_wrong_samples(multilabel: Project):
    report = multilabel.evaluate("val").report
    y, out, meta = _val_outputs(multilabel)
    table = report["per_label"]
    assert [r["label"] for r in table] == meta["classes"] and len(table) == 14
    assert [r["support"] for r in table] == y.sum(axis=0).astype(int).tolist()
    pred = out >= np.array(meta["target"]["thresholds"])
    for j, r in enumerate(table):
        tp = int((pred[:, j] & (y[:, j] > 0.5)).sum())
        assert r["predicted"] == int(pred[:, j].sum())
        if r["support"] and r["predicted"]:
            assert r["precision"] == pytest.approx(tp / r["predicted"])
            assert r["recall"] == pytest.approx(tp / r["support"])
    wrong = report["most_wrong"]
    counts = [w["wrong"] for w in wrong]
    assert counts == sorted(counts, reverse=True) and counts[0] == int(
        (pred != (y > 0.5)).sum(axis=1).max()
    )
    for w in wrong:
        assert w["wrong"] == len(w["missed"]) + len(w["extra"]) > 0
        assert set(w["missed"]) <= set(w["true"].split("|"))
        assert not set(w["extra"]) & set(w["true"].split("|"))
    figures = report["figures"]
    assert (multilabel.root / figures["per_label"]).read_bytes()[:8] == PNG
    with open(multilabel.root / figures["per_label_table"], newline="", encoding="utf-8") as f:
        assert [r["label"] for r in csv.DictReader(f)] == meta["classes"]


def test_multilabel_baselines_prevalence_and_one_vs_rest_logistic(multilabel: Project):
    report = multilabel.evaluate("val").report
    b = report["baselines"]
    assert (b["metric"], b["higher_is_better"]) == ("macro_f1", True)
    y_train = task_of("tabular-multilabel").encode(
        load_split(multilabel, "train")["label"].astype(str).tolist(), report["outputs"]
    )
    prevalence = b["prevalence"]["prevalence"]
    assert list(prevalence.values()) == pytest.approx(y_train.mean(axis=0).tolist())
    simple = b["simple"]
    assert simple["model"] == "one-vs-rest logistic regression on the table encoding"
    assert len(simple["threshold_values"]) == 14
    # prevalence >= 0.5 predicts only the two commonest labels: a poor macro F1
    assert b["prevalence"]["value"] < 0.2 < simple["value"]
    for name in ("network", "prevalence", "simple"):
        assert _contains(b[name]), name
    d = b["difference"]
    assert d["value"] == pytest.approx(b["network"]["value"] - simple["value"])
    assert d["low"] <= d["value"] <= d["high"]
    assert b["simple_as_good"] == (d["low"] <= 0)


def test_multilabel_test_verdict_and_companion(multilabel: Project):
    result = multilabel.test()  # success criterion: macro_f1 >= 0.3
    v = result.verdict
    assert (v.metric, v.higher_is_better) == ("macro_f1", True)
    assert v.passed == (v.value >= 0.3) and v.value == result.report["metrics"]["macro_f1"]["value"]
    assert result.companion_metric == "micro_f1" and result.accuracy is None
    assert result.companion == result.report["metrics"]["micro_f1"]["value"]
    assert dict(result.rows())["target"] == "macro_f1 >= 0.3"
    assert set(result.to_json()) == JSON_KEYS
    assert result.report["split"] == "test" and len(result.report["per_label"]) == 14


def test_temperature_scaling_is_left_out_where_there_is_no_softmax(regression: Project):
    regression.update_config({"evaluate.temperature_scaling": True})
    try:
        result = regression.evaluate("val")
    finally:
        regression.update_config({"evaluate.temperature_scaling": False})
    assert result.report["calibration"] is None
    assert regression.ledger.latest("evaluate").outputs["temperature"] is None
