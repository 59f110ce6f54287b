"""`dlw export` and `dlw predict` for the regression and multi-label tasks, on real data
(scikit-learn's diabetes, the first 800 genes of Yeast), after a PASS from `dlw test`
(diabetes: test RMSE about 45 <= 70; Yeast: macro F1 about 0.42 >= 0.3): metadata.json carries
the task and the target that travels with the model (target scaling, thresholds), ONNX Runtime
reproduces the PyTorch model's task outputs (parity), the bundle's predictions are the task's,
and `dlw predict` writes the task's columns."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from typing import Any

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from dlworkflow.cli import app
from dlworkflow.fileio import atomic_write_json, read_json
from dlworkflow.models.predict import load_model, predict_logits
from dlworkflow.project import Project
from dlworkflow.runtime.bundle import Bundle, BundleError, load_bundle
from dlworkflow.runtime.observe import runtime_inputs, table_records
from dlworkflow.store import load_split
from task_projects import multilabel_project, regression_project


def _export(project: Project) -> dict[str, Any]:
    """`dlw test` (once, on the sealed test split), then `dlw export` of the passing model."""
    verdict = project.test().verdict
    result = project.export()
    meta = read_json(result.folder / "metadata.json")
    assert verdict.verdict == meta["verdict"] == "PASS" and meta["forced"] is None
    assert meta["test_value"] == pytest.approx(verdict.value)
    assert result.champion == result.version  # a PASS export is the champion
    return {
        "project": project,
        "result": result,
        "folder": result.folder,
        "meta": meta,
        "bundle": load_bundle(result.folder, threads=1),
    }


@pytest.fixture(scope="module")
def regression(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return _export(regression_project(tmp_path_factory.mktemp("regression")))


@pytest.fixture(scope="module")
def multilabel(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return _export(multilabel_project(tmp_path_factory.mktemp("multilabel")))


def _val(project: Project, bundle: Bundle) -> tuple[pd.DataFrame, np.ndarray]:
    rows = load_split(project, "val").reset_index(drop=True)
    return rows, runtime_inputs(bundle, rows)


def _torch_outputs(project: Project, bundle: Bundle, rows: pd.DataFrame) -> np.ndarray:
    model, meta = load_model(project)
    return bundle.task.outputs(predict_logits(project, model, meta, rows), meta["target"])


# ---- regression -----------------------------------------------------------------------------


def test_regression_export_records_the_task_its_target_scaling_and_parity(regression):
    project, meta = regression["project"], regression["meta"]
    trained = load_model(project)[1]
    train_y = np.array([float(t) for t in load_split(project, "train")["label"]])
    assert meta["task"] == "tabular-regression" and meta["classes"] == ["value"]
    assert meta["target"] == trained["target"]  # the target scaling travels with the model
    assert meta["target"]["mean"] == pytest.approx(train_y.mean())
    assert meta["target"]["std"] == pytest.approx(train_y.std())
    assert 60 < meta["target"]["std"] < 90  # diabetes progression: sd about 77
    assert meta["outputs"]["kind"] == "regression" and meta["outputs"]["names"] == ["value"]
    assert meta["outputs"]["prediction"] == ["value"]
    assert "target.std + target.mean" in meta["outputs"]["rule"]
    assert meta["success_target"] == 70.0 and meta["criterion"] == "rmse <= 70"
    assert meta["metric"] == "rmse" and meta["test_value"] <= 70  # lower is better: PASS
    parity = meta["parity"]
    assert parity["n"] == len(load_split(project, "val")) > 50
    assert parity["compared"] == "values in the target's units"
    assert parity["tolerance"] == pytest.approx(1e-4 * meta["target"]["std"])
    assert parity["max_abs_diff"] <= parity["tolerance"] and parity["agreement"] == 1.0
    assert "target's units" in dict(regression["result"].rows())["parity (validation)"]


def test_regression_bundle_predicts_values_in_the_targets_units(regression):
    project, bundle = regression["project"], regression["bundle"]
    rows, x = _val(project, bundle)
    y = np.array([float(t) for t in rows["label"]])
    out = bundle.predict_outputs(x)
    assert out.shape == (len(rows), 1)
    np.testing.assert_allclose(out, _torch_outputs(project, bundle, rows), atol=1e-3)
    rmse = float(np.sqrt(np.mean((out[:, 0] - y) ** 2)))
    logits = bundle.predict_logits(x)[:, 0]  # the standardised scale, without the scaling
    assert rmse < y.std()  # better than predicting the mean: the model learned something
    assert float(np.sqrt(np.mean((logits - y) ** 2))) > 2 * rmse  # the scaling is undone
    assert bundle.predictions(x)[:3] == [{"value": float(v)} for v in out[:3, 0]]


def test_dlw_predict_writes_regression_values(regression, tmp_path):
    project, bundle = regression["project"], regression["bundle"]
    rows, x = _val(project, bundle)
    features = bundle.preprocessing["features"]
    good = tmp_path / "rows.csv"
    pd.DataFrame(table_records(rows, features)).to_csv(good, index=False)
    bad = tmp_path / "no_bmi.csv"
    pd.DataFrame(table_records(rows.head(2), features)).drop(columns=["bmi"]).to_csv(
        bad, index=False
    )
    out = tmp_path / "predictions.csv"
    result = _dlw("predict", good, bad, "-p", project.root, "--out", out)
    assert result.exit_code == 0, result.output
    lines = list(csv.reader(out.open()))
    assert lines[0] == ["path", "value", "error"]
    expected = bundle.predict_outputs(x)[:, 0]
    assert [line[1] for line in lines[1 : 1 + len(rows)]] == [f"{v:.9g}" for v in expected]
    assert all(line[2] == "" for line in lines[1 : 1 + len(rows)])
    assert lines[-1][:2] == [str(bad), ""] and "bmi" in lines[-1][2]
    assert f"mean {expected.mean():.4g}" in result.output and "errors" in result.output


# ---- multi-label ----------------------------------------------------------------------------


def test_multilabel_export_carries_the_thresholds_and_label_sets_agree(multilabel):
    project, meta = multilabel["project"], multilabel["meta"]
    trained = load_model(project)[1]
    assert meta["task"] == "tabular-multilabel"
    assert meta["target"] == trained["target"]
    thresholds = meta["target"]["thresholds"]
    assert len(thresholds) == len(meta["classes"]) == 14
    assert all(0.05 <= t <= 0.95 for t in thresholds) and len(set(thresholds)) > 1  # tuned
    assert meta["outputs"]["kind"] == "multilabel"
    assert meta["outputs"]["prediction"] == ["labels", "probabilities"]
    assert meta["criterion"] == "macro_f1 >= 0.3" and meta["test_value"] >= 0.3
    parity = meta["parity"]
    assert parity["compared"] == "label probabilities"
    assert parity["agreement_of"] == "same label set" and parity["agreement"] == 1.0
    assert parity["max_abs_diff"] <= 1e-4 and parity["n"] > 100


def test_multilabel_bundle_predicts_labels_at_their_thresholds(multilabel):
    project, bundle = multilabel["project"], multilabel["bundle"]
    rows, x = _val(project, bundle)
    out = bundle.predict_outputs(x)
    np.testing.assert_allclose(out, _torch_outputs(project, bundle, rows), atol=1e-4)
    thresholds = bundle.target["thresholds"]
    predictions = bundle.predictions(x)
    for row, prediction in zip(out, predictions):
        assert prediction["labels"] == [
            name for name, p, t in zip(bundle.classes, row, thresholds) if p >= t
        ]
        assert prediction["probabilities"] == {n: float(p) for n, p in zip(bundle.classes, row)}
    assert sum(len(p["labels"]) for p in predictions) > len(predictions)  # real label sets
    truth = [set(t.split("|")) for t in rows["label"]]
    hits = sum(len(set(p["labels"]) & t) for p, t in zip(predictions, truth))
    assert hits > 0.5 * sum(len(t) for t in truth)  # most true labels are predicted


def test_dlw_predict_writes_multilabel_labels_and_probabilities(multilabel, tmp_path):
    project, bundle = multilabel["project"], multilabel["bundle"]
    rows, x = _val(project, bundle)
    source = tmp_path / "genes.csv"
    pd.DataFrame(table_records(rows, bundle.preprocessing["features"])).to_csv(source, index=False)
    out = tmp_path / "predictions.csv"
    result = _dlw("predict", source, "-p", project.root, "--out", out)
    assert result.exit_code == 0, result.output
    lines = list(csv.DictReader(out.open()))
    names = bundle.classes
    assert list(lines[0]) == ["path", "labels", *[f"p_{n}" for n in names], "error"]
    assert len(lines) == len(rows)
    for line, prediction in zip(lines, bundle.predictions(x)):
        assert line["labels"] == "|".join(prediction["labels"])
        assert [float(line[f"p_{n}"]) for n in names] == pytest.approx(
            [prediction["probabilities"][n] for n in names], abs=1e-6
        )
    counts: dict[str, int] = {}
    for prediction in bundle.predictions(x):
        for label in prediction["labels"]:
            counts[label] = counts.get(label, 0) + 1
    top = max(counts, key=lambda k: counts[k])
    assert f"{top}: {counts[top]}" in result.output


# ---- the runtime: torch-free, older exports, unknown tasks ----------------------------------


def test_the_runtime_and_the_tasks_import_no_torch():
    code = (
        "import sys; import dlworkflow.tasks, dlworkflow.runtime.bundle, "
        "dlworkflow.deploy.serve.app, dlworkflow.deploy.export.predict; "
        "from dlworkflow.tasks import task_of; task_of('tabular-regression').outputs("
        "__import__('numpy').zeros((1, 1)), {'mean': 1.0, 'std': 2.0}); "
        "bad = [m for m in sys.modules if m == 'torch' or m.startswith('torch.')]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def test_exports_made_before_tasks_are_classification_and_unknown_tasks_are_refused(
    regression, tmp_path
):
    old = tmp_path / "v1"
    shutil.copytree(regression["folder"], old)
    meta = json.loads((old / "metadata.json").read_text())
    meta.pop("task")
    meta["target"] = 0.5  # before tasks: the success criterion's number
    atomic_write_json(old / "metadata.json", meta)
    bundle = load_bundle(old, threads=1)
    assert bundle.task.kind == "classification" and bundle.task.modality == "tabular"
    assert bundle.target == {}
    meta["task"] = "tabular-ranking"
    atomic_write_json(old / "metadata.json", meta)
    with pytest.raises(BundleError, match="tabular-ranking"):
        load_bundle(old, threads=1)


def _dlw(*args: Any) -> Any:
    return CliRunner().invoke(app, [str(a) for a in args], env={"COLUMNS": "200", "NO_COLOR": "1"})
