"""`dlw evaluate` and the full report of `dlw test` on a real network: an MLP trained for one
short epoch on scikit-learn's digits (under-trained on purpose: a logistic regression on the
pixels beats it, and the report has to say so)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from sklearn import metrics as skm
from typer.testing import CliRunner

from dlworkflow.cli import app
from dlworkflow.evaluate.baselines import simple_as_good, simple_model_proba
from dlworkflow.evaluate.bootstrap import bootstrap_interval
from dlworkflow.evaluate.calibration import fit_temperature
from dlworkflow.evaluate.slices import SliceError, slice_report
from dlworkflow.metrics import METRICS
from dlworkflow.models.predict import label_indices, load_model, predict_logits, predict_proba
from dlworkflow.project import Project
from dlworkflow.store import load_split, read_split_info

runner = CliRunner()
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("evaluate") / "proj"
    project = Project.init(root)
    project.define(metric="balanced_accuracy", target=0.5)
    project.update_config(
        {
            "model.name": "mlp",
            "train.epochs": 1,
            "train.batch_size": 64,
            "train.learning_rate": 0.0005,
            "train.threads": 2,
            "evaluate.slices": ["brightness"],
            "evaluate.temperature_scaling": True,
        }
    )
    project.ingest("builtin:digits", progress=False)
    project.split()
    project.train(progress=False)
    return root


@pytest.fixture(scope="module")
def evaluated(root) -> dict:
    """`dlw evaluate` through the CLI, once for the module."""
    result = runner.invoke(
        app, ["evaluate", "-p", str(root)], catch_exceptions=False, env={"COLUMNS": "200"}
    )
    assert result.exit_code == 0, result.output
    report = json.loads((root / "reports/evaluate/val/metrics.json").read_text())
    return {"output": result.output, "report": report}


def val_predictions(project: Project) -> tuple[np.ndarray, np.ndarray, list[str]]:
    model, meta = load_model(project)
    rows = load_split(project, "val")
    return (
        label_indices(rows, meta["classes"]),
        predict_proba(project, model, meta, rows),
        meta["classes"],
    )


def test_dlw_evaluate_reports_on_validation_and_never_reads_the_test_set(root, evaluated):
    project = Project.load(root)
    out = evaluated["output"]
    assert "evaluation on val" in out and "balanced_accuracy" in out
    assert "AUROC" in out and "reports/evaluate/val/ (confusion.png" in out
    record = project.ledger.latest("evaluate")
    assert record.outputs["split"] == "val" and record.outputs["metric"] == "balanced_accuracy"
    assert project.ledger.test_reads() == []
    status = project.status()
    assert [s.number for s in status.steps] == list(range(1, 10))  # no tenth step
    assert status.state_of("test") == "not run"

    refused = runner.invoke(app, ["evaluate", "-p", str(root), "--split", "test"])
    assert refused.exit_code == 2 and "sealed" in refused.output
    assert project.ledger.test_reads() == []
    assert len(project.ledger.history("evaluate")) == 1  # the refusal ran nothing


def test_metrics_json_equals_scikit_learn_on_the_network_predictions(root, evaluated):
    report = evaluated["report"]
    y, proba, classes = val_predictions(Project.load(root))
    pred = proba.argmax(1)
    m = {name: v["value"] for name, v in report["metrics"].items()}
    assert report["n"] == len(y) == read_split_info(Project.load(root)).counts["val"]
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    assert m["balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(y, pred))
    assert m["macro_f1"] == pytest.approx(skm.f1_score(y, pred, average="macro"))
    assert m["weighted_f1"] == pytest.approx(skm.f1_score(y, pred, average="weighted"))
    assert m["auroc"] == pytest.approx(skm.roc_auc_score(y, proba, multi_class="ovr"), abs=1e-6)
    assert m["auprc"] == pytest.approx(
        skm.average_precision_score(np.eye(len(classes))[y], proba), abs=1e-6
    )
    assert report["top_k"]["3"] == pytest.approx(skm.top_k_accuracy_score(y, proba, k=3))
    np.testing.assert_array_equal(report["confusion"], skm.confusion_matrix(y, pred))
    for name, v in report["metrics"].items():
        assert v["low"] <= v["value"] <= v["high"], name
    pairs = report["confused_pairs"]
    cm = np.array(report["confusion"])
    np.fill_diagonal(cm, 0)
    assert pairs[0]["count"] == cm.max() > 0
    mistakes = report["mistakes"]
    assert len(mistakes) == 16 and all(x["true"] != x["predicted"] for x in mistakes)
    assert [x["confidence"] for x in mistakes] == sorted(
        (x["confidence"] for x in mistakes), reverse=True
    )
    assert mistakes[0]["confidence"] == pytest.approx(proba.max(1)[pred != y].max(), abs=1e-6)


def test_figures_exist_and_are_valid_pngs(root, evaluated):
    figures = evaluated["report"]["figures"]
    assert set(figures) == {"confusion", "reliability", "mistakes", "importance"}  # occlusion
    for path in figures.values():
        path = root / path
        assert path.parent == root / "reports/evaluate/val"
        assert path.read_bytes()[:8] == PNG_MAGIC
        with Image.open(path) as img:
            img.verify()
        with Image.open(path) as img:
            assert img.width >= 300 and img.height >= 200


def test_temperature_is_fitted_on_validation(root, evaluated):
    cal = evaluated["report"]["calibration"]
    project = Project.load(root)
    model, meta = load_model(project)
    rows = load_split(project, "val")
    logits = predict_logits(project, model, meta, rows)
    t = fit_temperature(logits, label_indices(rows, meta["classes"]))
    assert cal["temperature"] == pytest.approx(t)
    assert project.ledger.latest("evaluate").outputs["temperature"] == pytest.approx(t)
    assert cal["scaled"]["nll"] < cal["nll"]  # fitted to minimise it on this very split


def test_slices_by_a_real_metadata_column(root, evaluated):
    """Image brightness (a manifest column measured at ingest) by quartile."""
    (entry,) = evaluated["report"]["slices"]
    assert entry["column"] == "brightness" and entry["by"] == "quartile"
    assert len(entry["slices"]) == 4
    assert sum(s["n"] for s in entry["slices"]) == evaluated["report"]["n"]
    project = Project.load(root)
    rows = load_split(project, "val")
    y, proba, _ = val_predictions(project)
    quartile = pd.qcut(rows["brightness"], 4, labels=False).to_numpy()
    for q, s in enumerate(entry["slices"]):  # ordered by their lower edge
        mask = quartile == q
        assert mask.sum() == s["n"]
        assert s["metric"] == pytest.approx(METRICS.get("balanced_accuracy")(y[mask], proba[mask]))
        assert s["low"] <= s["metric"] <= s["high"]
    tiny = slice_report(
        rows,
        y,
        proba,
        ["brightness"],
        metric="accuracy",
        n_resamples=100,
        confidence=0.9,
        seed=0,
        min_samples=100,
    )[0]["slices"]
    assert all(s["low"] is None and "skipped" in s["note"] for s in tiny)
    with pytest.raises(SliceError, match="colour") as err:
        slice_report(
            rows,
            y,
            proba,
            ["colour"],
            metric="accuracy",
            n_resamples=100,
            confidence=0.9,
            seed=0,
            min_samples=1,
        )
    assert "brightness" in err.value.expected
    # a misnamed column is refused before any work, with the columns there are
    project.update_config({"evaluate.slices": ["colour"]})
    try:
        refused = runner.invoke(app, ["evaluate", "-p", str(root)], env={"COLUMNS": "200"})
        assert refused.exit_code == 2 and "'colour'" in refused.output
        assert "brightness" in refused.output
        assert len(project.ledger.history("evaluate")) == 1
    finally:
        project.update_config({"evaluate.slices": ["brightness"]})


def test_baselines_and_the_simple_model_flag(root, evaluated):
    b = evaluated["report"]["baselines"]
    project = Project.load(root)
    val = load_split(project, "val")
    train_counts = load_split(project, "train")["label"].value_counts()
    majority = train_counts.index[train_counts.argmax()]
    assert b["majority"]["class"] == majority
    assert b["majority"]["share"] == pytest.approx((val["label"] == majority).mean())
    assert b["majority"]["value"] == pytest.approx(0.1)  # balanced accuracy of one class of 10
    # the under-trained network loses to logistic regression on the pixels: flagged
    assert b["simple"]["value"] > 0.9 and b["network"]["value"] < b["simple"]["value"] - 0.1
    assert b["simple_as_good"] is True and b["difference"]["high"] < 0
    assert "simple model is BETTER than the network" in evaluated["output"]
    # ...and not flagged when the network is the clearly better one (roles swapped, same
    # real predictions: the contender is now the under-trained network)
    y, network, classes = val_predictions(project)
    model, meta = load_model(project)
    train = load_split(project, "train")
    strong, _ = simple_model_proba(project, meta, train, label_indices(train, classes), val, seed=0)
    kw = {"n_resamples": 300, "confidence": 0.95, "seed": 0}
    assert simple_as_good("balanced_accuracy", y, strong, network, **kw)[0] is False
    assert simple_as_good("balanced_accuracy", y, network, strong, **kw)[0] is True
    assert simple_as_good("balanced_accuracy", y, strong, strong, **kw)[0] is True  # a tie


def test_dlw_test_computes_the_same_full_report_on_the_test_set(root, evaluated):
    project = Project.load(root)
    result = project.test()
    report = result.report
    assert report["split"] == "test" and report["n"] == result.n_samples
    assert len(project.ledger.test_reads()) == 1
    folder = root / "reports/evaluate/test"
    for name in ("confusion.png", "reliability.png", "mistakes.png", "metrics.json"):
        assert (folder / name).is_file()
    # the verdict is judged on the report's numbers, equal to the original bootstrap loop
    m = report["metrics"]["balanced_accuracy"]
    assert result.verdict.value == m["value"]
    assert result.verdict.interval == (m["low"], m["high"])
    # test uses the temperature fitted on validation, and records it
    assert report["calibration"]["temperature"] == pytest.approx(
        evaluated["report"]["calibration"]["temperature"]
    )
    assert project.ledger.latest("test").summary["temperature"] == pytest.approx(
        report["calibration"]["temperature"]
    )
    rendered = dict(result.rows())
    assert "verdict" in rendered and "AUROC (macro OvR)" in rendered
    assert "WARNING" in rendered  # the simple-model flag travels into the test result


def test_the_verdict_interval_is_the_resampling_loop_interval():
    """The report's interval (vectorised) and bootstrap_interval (the loop the verdict used
    before) agree on real network-like predictions."""
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression

    x, y = load_digits(return_X_y=True)
    proba = LogisticRegression(C=1e-4, max_iter=200).fit(x[:200], y[:200]).predict_proba(x[1500:])
    from dlworkflow.evaluate.report import metric_report

    r = metric_report(
        y[1500:], proba, [str(c) for c in range(10)], n_resamples=300, confidence=0.95, seed=42
    )
    loop = bootstrap_interval(
        METRICS.get("balanced_accuracy"), y[1500:], proba, n_resamples=300, confidence=0.95, seed=42
    )
    m = r["metrics"]["balanced_accuracy"]
    assert (m["low"], m["high"]) == pytest.approx(loop, abs=1e-12)
