"""All nine steps through the CLI for the regression and multi-label tasks, on real data.

tabular-regression: the first 340 of scikit-learn's 442 diabetes patients are the project's
data; the other 102 are traffic the project has never seen (monitored as feature rows, then
retrained on with their labels). tabular-multilabel: the first 1,600 of river's 2,417 Yeast
genes, the other 817 likewise. Each test drives `dlw` (typer's CliRunner, `-p ROOT`) from
init to a project with no stale step, and checks what each step leaves behind: the test's
verdict in the metric's direction, the exported metadata (target scaling, label thresholds),
predictions.csv, the served answer for the same row, the report, monitor.html and the
retrain decision in the ledger."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from dlworkflow.cli import app
from dlworkflow.project import Project

runner = CliRunner()
TOKEN = "e2e-token-" + "y" * 24
AUTH = {"Authorization": f"Bearer {TOKEN}"}
SMALL = {"evaluate.bootstrap_samples": 200}


def dlw(*args: str) -> Any:
    return runner.invoke(app, list(args), catch_exceptions=False)


def _ok(result: Any, *codes: int) -> Any:
    assert result.exit_code in (codes or (0,)), result.output[-4000:]
    return result


def _features(frame: pd.DataFrame, start: int) -> pd.DataFrame:
    """The rows without their label, with ids that name their position in the full table."""
    rows = frame.drop(columns=["label"]).copy()
    rows.insert(0, "id", [f"row{start + i}" for i in range(len(rows))])
    return rows


def _served(root: Path, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """POST the records to the champion served in-process (the bearer token required)."""
    from dlworkflow.config import Serve
    from dlworkflow.deploy.serve.app import create_app

    server = create_app(root, Serve(), token=TOKEN)
    try:
        with TestClient(server) as client:
            assert client.post("/v1/predict", json={"rows": records[:1]}).status_code == 401
            answer = client.post("/v1/predict", headers=AUTH, json={"rows": records})
            assert answer.status_code == 200, answer.text
            return list(answer.json()["predictions"])
    finally:
        server.state.server.close()


def _records(frame: pd.DataFrame, features: list[str]) -> list[dict[str, Any]]:
    return [{f: float(row[f]) for f in features} for _, row in frame.iterrows()]


def _flow(
    tmp_path: Path,
    *,
    task: str,
    metric: str,
    target: float,
    table: pd.DataFrame,
    n: int,
    epochs: int,
) -> dict[str, Any]:
    """init .. export through the CLI; returns what the task-specific checks need."""
    root = tmp_path / "proj"
    p = ["-p", str(root)]
    seen, unseen = table.head(n), table.iloc[n:]
    source = tmp_path / "data.csv"
    seen.to_csv(source, index=False)

    _ok(dlw("init", str(root), "--task", task))
    project = Project.load(root)
    project.update_config({**SMALL, "train.epochs": epochs})
    _ok(
        dlw(
            "define",
            *p,
            "--metric",
            metric,
            "--target",
            str(target),
            "--objective",
            f"end-to-end {task}",
        )
    )
    ingested = _ok(dlw("ingest", str(source), *p))
    assert f"{n:,}" in ingested.output
    _ok(dlw("explore", *p))
    eda = (root / "reports" / "eda.html").read_text(encoding="utf-8")
    _ok(dlw("split", *p))
    trained = _ok(dlw("train", *p, "--epochs", str(epochs)))
    assert "Traceback" not in trained.output
    status = Project.load(root).status()
    for step in ("define", "ingest", "explore", "split", "train"):
        assert status.state_of(step) == "done", (step, status)

    tested = _ok(dlw("test", *p))
    assert "PASS" in tested.output and metric in tested.output
    again = dlw("test", *p, "--json")
    assert again.exit_code == 0, again.output[-4000:]
    verdict = json.loads(again.stdout)

    _ok(dlw("export", *p))
    meta = json.loads((root / "models" / "v1" / "metadata.json").read_text())
    assert meta["task"] == task and meta["verdict"] == "PASS"

    rows = _features(unseen.head(25), n)
    rows_csv = tmp_path / "rows.csv"
    rows.drop(columns=["id"]).to_csv(rows_csv, index=False)
    out = tmp_path / "predictions.csv"
    _ok(dlw("predict", str(rows_csv), *p, "--out", str(out)))
    predicted = pd.read_csv(out)
    assert len(predicted) == len(rows)
    assert "error" not in predicted or predicted["error"].isna().all(), predicted.head()
    features = [c for c in table.columns if c != "label"]
    served = _served(root, _records(rows, features))
    assert [s["id"] for s in served][:1] and len(served) == len(rows)

    _ok(dlw("report", *p, "--no-pdf"))
    report = (root / "reports" / "report.html").read_text(encoding="utf-8")

    return {
        "root": root,
        "p": p,
        "eda": eda,
        "tested": tested.output,
        "verdict": verdict,
        "meta": meta,
        "predicted": predicted,
        "served": served,
        "report": report,
        "unseen": unseen,
        "n": n,
    }


def _step9_and_run(tmp_path: Path, flow: dict[str, Any]) -> Project:
    """monitor on unseen feature rows, retrain on the same rows with labels, then `dlw run`:
    no step is left stale."""
    root, p, unseen, n = flow["root"], flow["p"], flow["unseen"], flow["n"]
    live = tmp_path / "live.csv"
    _features(unseen, n).to_csv(live, index=False)
    monitored = _ok(dlw("monitor", *p, "--inputs", str(live)), 0, 4)
    assert (root / "reports" / "monitor.html").is_file()
    project = Project.load(root)
    record = project.ledger.latest("monitor")
    assert record is not None and record.outputs["status"] in ("OK", "ALERT"), record
    assert (record.outputs["status"] == "ALERT") == (monitored.exit_code == 4)
    assert record.outputs["n"] == len(unseen)  # every unseen row predicted and checked
    assert any(c["group"] == "prediction" for c in record.outputs["checks"]), record.outputs

    fresh = tmp_path / "fresh.csv"
    labelled = unseen.copy()
    labelled.to_csv(fresh, index=False)
    retrained = _ok(dlw("retrain", "--data", str(fresh), *p), 0, 3)
    decision = Project.load(root).ledger.latest("retrain")
    assert decision is not None and decision.outputs.get("outcome"), decision
    assert (decision.outputs["outcome"] == "promoted") == (retrained.exit_code == 0), (
        decision.outputs
    )

    _ok(dlw("run", *p), 0, 3)
    project = Project.load(root)
    status = project.status()
    stale = [(s.title, s.detail) for s in status.steps if s.state == "stale"]
    assert not stale, stale
    shown = _ok(dlw("status", *p))
    assert "stale" not in shown.output and "all steps done" in shown.output, shown.output
    return project


def test_tabular_regression_through_all_nine_steps(tmp_path: Path):
    from dlworkflow.datasets.diabetes import load_table

    table = load_table()
    flow = _flow(
        tmp_path,
        task="tabular-regression",
        metric="rmse",
        target=70.0,
        table=table,
        n=340,
        epochs=10,
    )
    # explore: the target section of a regression (the value's summary, not class counts)
    assert "label" in flow["eda"] and "skew" in flow["eda"].lower()
    # test: the criterion in RMSE's direction, every regression metric with its value
    assert "rmse" in flow["tested"] and "<=" in flow["tested"]
    verdict = flow["verdict"]
    assert verdict["verdict"]["passed"] is True
    metrics = verdict["report"]["metrics"]
    assert {"rmse", "mae", "r2", "mape"} <= set(metrics), metrics
    rmse = metrics["rmse"]
    assert rmse["value"] == pytest.approx(verdict["verdict"]["value"]) and rmse["value"] <= 70
    assert rmse["low"] <= rmse["value"] <= rmse["high"]
    assert metrics["r2"]["value"] > 0  # better than predicting the mean
    # the target scaling of the train split travels with the export
    from dlworkflow.store import load_split

    target = flow["meta"]["target"]
    train_y = load_split(Project.load(flow["root"]), "train")["label"].astype(float)
    assert target["mean"] == pytest.approx(train_y.mean(), rel=1e-4), target
    assert target["std"] == pytest.approx(train_y.std(), rel=5e-3), target
    # predict: a finite value per row, in the range of the disease-progression scores
    values = flow["predicted"]["value"].to_numpy(dtype=float)
    assert np.isfinite(values).all() and values.std() > 5
    assert ((values > 0) & (values < 400)).all(), values
    # serve: the same row gets the same value (predictions.csv writes 6 significant digits,
    # so a value of 100-400 is there to 1e-3: compared to half a unit of the 6th digit)
    served = [s["value"] for s in flow["served"]]
    assert all(isinstance(v, float) for v in served)
    assert served == pytest.approx(values.tolist(), rel=5e-6, abs=1e-9)
    # report: RMSE and the residuals; a confusion matrix is said not to apply, and not drawn
    report = flow["report"]
    assert "rmse" in report.lower() and "residual" in report.lower()
    assert "Confusion matrix on the sealed test set" not in report
    assert "not applicable to tabular-regression" in report

    project = _step9_and_run(tmp_path, flow)
    assert project.ledger.latest("report") is not None


def test_tabular_multilabel_through_all_nine_steps(tmp_path: Path):
    from dlworkflow.datasets.yeast import load_table

    table = load_table()
    flow = _flow(
        tmp_path,
        task="tabular-multilabel",
        metric="macro_f1",
        target=0.3,
        table=table,
        n=1600,
        epochs=8,
    )
    labels = flow["meta"]["classes"]  # the model's output order (the thresholds' order)
    assert sorted(labels) == sorted(f"Class{i}" for i in range(1, 15))
    # explore: the label section (support per label, co-occurrence)
    assert "Class14" in flow["eda"] and "co-occurrence" in flow["eda"].lower()
    assert "macro_f1" in flow["tested"] and ">=" in flow["tested"]
    verdict = flow["verdict"]
    assert verdict["verdict"]["passed"] is True
    metrics = verdict["report"]["metrics"]
    assert {"macro_f1", "micro_f1", "map", "subset_accuracy", "hamming_loss"} <= set(metrics)
    macro_f1 = metrics["macro_f1"]
    assert macro_f1["value"] == pytest.approx(verdict["verdict"]["value"])
    assert macro_f1["value"] >= 0.3 and macro_f1["low"] <= macro_f1["value"] <= macro_f1["high"]
    thresholds = flow["meta"]["target"]["thresholds"]
    assert len(thresholds) == 14 and all(0 < t < 1 for t in thresholds)
    predicted = flow["predicted"]
    assert "labels" in predicted and [f"p_{c}" for c in labels] == [
        c for c in predicted.columns if c.startswith("p_")
    ]
    probs = predicted[[f"p_{c}" for c in labels]].to_numpy(dtype=float)
    assert ((probs >= 0) & (probs <= 1)).all()
    # serve: the label set is the labels whose probability reaches the exported threshold,
    # and the probabilities are predict's
    for k, answer in enumerate(flow["served"]):
        assert set(answer) >= {"labels", "probabilities"}
        assert sorted(answer["probabilities"]) == sorted(labels)
        served_probs = [answer["probabilities"][c] for c in labels]
        assert served_probs == pytest.approx(probs[k].tolist(), abs=1e-4)
        expected = [c for c, t in zip(labels, thresholds) if answer["probabilities"][c] >= t]
        assert sorted(answer["labels"]) == sorted(expected)
        cell = predicted["labels"].iloc[k]
        written = [] if isinstance(cell, float) and math.isnan(cell) else str(cell).split("|")
        assert sorted(written) == sorted(answer["labels"])
    assert any(a["labels"] for a in flow["served"])
    # report: macro F1 and a per-label table, no confusion matrix
    report = flow["report"]
    assert "macro_f1" in report.lower() or "macro f1" in report.lower()
    assert "per-label" in report.lower() or "per label" in report.lower()
    assert "Class14" in report and "Confusion matrix on the sealed test set" not in report
    assert "not applicable to tabular-multilabel" in report

    _step9_and_run(tmp_path, flow)


def test_demo_of_the_multilabel_task_leaves_nothing_stale(tmp_path: Path):
    folder = tmp_path / "demo"
    result = dlw("demo", str(folder), "--task", "tabular-multilabel", "--epochs", "3")
    assert result.exit_code in (0, 3), result.output[-4000:]
    # it ends with the time per step, the total last
    tail = result.output[result.output.rindex("time per step") :]
    for step in (
        "define",
        "ingest",
        "explore",
        "split",
        "train",
        "test",
        "export",
        "monitor",
        "retrain",
        "report",
        "total",
    ):
        assert step in tail, tail
    assert "total" in result.output.strip().splitlines()[-2], tail
    project = Project.load(folder)
    tested, retrained = project.ledger.latest("test"), project.ledger.latest("retrain")
    assert tested is not None and retrained is not None
    assert (tested.outputs["verdict"] == "PASS") == (result.exit_code == 0), tested.outputs
    assert project.config.task == "tabular-multilabel"
    assert retrained.outputs["outcome"], "retrain decided nothing"
    status = project.status()
    assert not [(s.title, s.detail) for s in status.steps if s.state == "stale"]
    assert [s.state for s in status.steps if s.ledger_step] == ["done"] * 8
