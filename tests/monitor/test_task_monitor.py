"""`dlw monitor` and retrain's champion/challenger comparison for regression and multi-label
models, on real data: a diabetes regression model (the first 322 of scikit-learn's 442
patients; the last 120 are held out, never seen by the project) and a Yeast multi-label model
(first 800 genes; genes 800+ are held out).

The regression model's predictions are logged exactly as the server logs them
(`observe.prepare` + `observe.infer` + `observe.records` into .dlw/serve/predictions.jsonl);
the multi-label model's come from `--inputs` tables run through the champion."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dlworkflow.monitor.logread import read_log, to_sample
from dlworkflow.monitor.retrain_state import PROMOTED, decide
from dlworkflow.project import Project
from dlworkflow.runtime import observe
from dlworkflow.runtime.bundle import load_bundle
from task_projects import multilabel_project, yeast_csv

START = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)
HELD_OUT = 800  # Yeast genes from here on are not in the multi-label project
PATIENTS = 322  # diabetes patients in the regression project; the other 120 are held out


# ---- fixtures ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def reg(tmp_path_factory):
    """Diabetes regression on the first 322 patients: trained 20 epochs, tested (PASS) and
    exported as v1 (champion); and the whole table (ids row<i>)."""
    from dlworkflow.datasets.diabetes import load_table

    root = tmp_path_factory.mktemp("reg")
    table = load_table()
    table.insert(0, "id", [f"row{i}" for i in range(len(table))])
    source = root / "diabetes.csv"
    table.drop(columns="id").head(PATIENTS).to_csv(source, index=False)
    project = Project.init(root / "proj", task="tabular-regression")
    project.update_config({"evaluate.bootstrap_samples": 300})
    project.define(metric="rmse", target=70.0, objective="tests")
    project.ingest(str(source), progress=False)
    project.split()
    project.train(epochs=20, progress=False)
    assert project.test().verdict.passed
    project.export()
    return project, load_bundle(project.root / "models" / "v1"), table


@pytest.fixture(scope="module")
def multi(tmp_path_factory):
    """Yeast multi-label on the first 800 genes, tested and exported as v1 (champion)."""
    root = tmp_path_factory.mktemp("multi")
    project = multilabel_project(root, epochs=12, **{"evaluate.bootstrap_samples": 300})
    assert project.test().verdict.passed
    project.export()
    table = pd.read_csv(yeast_csv(root / "all.csv", n=2417))
    return project, load_bundle(root / "models" / "v1"), table


def _log(project: Project, bundle, rows: pd.DataFrame) -> list[dict]:
    """What the server logs for these rows (ids = the rows' ids), one a minute."""
    values = observe.table_records(rows, bundle.preprocessing["features"])
    x, summaries = observe.prepare(bundle, values)
    out, emb = observe.infer(bundle, x)
    records = observe.records(bundle, summaries, out, emb, ids=rows["id"].astype(str).tolist())
    for k, record in enumerate(records):
        record["ts"] = (START + timedelta(minutes=k)).isoformat(timespec="milliseconds")
    folder = project.root / ".dlw" / "serve"
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("predictions*.jsonl*"):
        old.unlink()
    (folder / "predictions.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in records), encoding="utf-8"
    )
    return records


def _labels(path: Path, ids: list[str], labels: list[str]) -> Path:
    path.write_text("id,label\n" + "".join(f"{i},{y}\n" for i, y in zip(ids, labels)))
    return path


def _check(result, group: str):
    found = [c for c in result.checks_objects if c.group == group]
    assert len(found) == 1, [c.name for c in result.checks_objects]
    return found[0]


# ---- regression ----------------------------------------------------------------------------
def test_regression_records_carry_the_predicted_value(reg):
    project, bundle, table = reg
    rows = table.tail(40)
    records = _log(project, bundle, rows)
    x = bundle.prepare_rows(observe.table_records(rows, bundle.preprocessing["features"]))
    logits = bundle.session.run(["logits"], {"input": x})[0]
    target = bundle.metadata["target"]
    expected = logits[:, 0] * target["std"] + target["mean"]  # the standardisation undone
    assert [r["value"] for r in records] == pytest.approx(expected.tolist(), rel=1e-5)
    assert all("confidence" not in r and "probs" not in r for r in records)
    sample = to_sample(read_log(project.root, version=1).records)
    assert len(sample) == 40 and sample.value is not None
    assert sample.value.tolist() == [r["value"] for r in records]
    assert np.isnan(sample.confidence).all()


def test_regression_held_out_traffic_raises_no_alert(reg, tmp_path):
    """The 120 held-out patients (the same population as the validation reference): the
    predicted values' distribution does not move, and the live RMSE with labels is sklearn's
    RMSE of the logged predictions, below the alert ceiling."""
    from sklearn.metrics import mean_squared_error

    project, bundle, table = reg
    rows = table.iloc[PATIENTS:]
    records = _log(project, bundle, rows)
    labels = _labels(tmp_path / "labels.csv", rows["id"].tolist(), [repr(v) for v in rows["label"]])
    result = project.monitor(labels=labels)
    prediction = _check(result, "prediction")
    assert prediction.name == "predicted value" and not prediction.alert, prediction.sentence
    assert prediction.p_value > result.level
    assert not any(c.group == "confidence" for c in result.checks_objects)
    live = _check(result, "performance")
    assert live.name == "live rmse"
    predicted = np.array([r["value"] for r in records])
    truth = rows["label"].to_numpy()
    assert live.live == pytest.approx(mean_squared_error(truth, predicted) ** 0.5, rel=1e-9)
    assert live.reference == pytest.approx(bundle.metadata["test_value"])
    assert not live.alert and result.status == "OK", live.sentence
    assert live.details["ceiling"] > live.details["test_value"]  # lower is better
    html = (project.root / "reports" / "monitor.html").read_text()
    assert "Mean predicted value" in html and "Predicted-class shares" not in html
    assert html.count("data:image/png;base64,") == len(result.pngs) >= 3


def test_regression_shifted_traffic_alerts_on_predictions_and_rmse(reg, tmp_path):
    """The 30% of all patients with the highest target: the predicted values move up (KS +
    PSI alert) and the live RMSE gets worse than the test estimate by more than the allowed
    change (an alert in RMSE's direction: higher is worse)."""
    from sklearn.metrics import mean_squared_error

    project, bundle, table = reg
    rows = table[table["label"] >= table["label"].quantile(0.7)]
    records = _log(project, bundle, rows)
    labels = _labels(tmp_path / "labels.csv", rows["id"].tolist(), [repr(v) for v in rows["label"]])
    result = project.monitor(labels=labels)
    assert result.status == "ALERT" and result.exit_code == 4
    prediction = _check(result, "prediction")
    assert prediction.alert, prediction.sentence
    assert prediction.live > prediction.reference  # the predicted values moved up
    assert prediction.effect >= project.config.monitor.psi_threshold
    live = _check(result, "performance")
    rmse = mean_squared_error(rows["label"], [r["value"] for r in records]) ** 0.5
    assert live.live == pytest.approx(rmse, rel=1e-9)
    assert live.live > bundle.metadata["test_value"]
    assert live.alert, live.sentence
    assert live.details["interval"][0] > live.details["ceiling"]


# ---- multi-label ----------------------------------------------------------------------------
def _inputs(path: Path, table: pd.DataFrame, start: int) -> Path:
    frame = table.drop(columns=["label"]).copy()
    frame.insert(0, "id", [f"gene{start + i}" for i in range(len(frame))])
    frame.to_csv(path, index=False)
    return path


def test_multilabel_held_out_genes_raise_no_label_alert(multi, tmp_path):
    project, bundle, table = multi
    held = table.iloc[HELD_OUT : HELD_OUT + 600]
    ids = [f"gene{HELD_OUT + i}" for i in range(len(held))]
    labels = _labels(tmp_path / "labels.csv", ids, held["label"].tolist())
    result = project.monitor(inputs=_inputs(tmp_path / "held.csv", held, HELD_OUT), labels=labels)
    check = _check(result, "prediction")
    assert check.name == "predicted labels"
    assert not check.alert and check.details["moved"] == [], check.sentence
    per_label = {r["label"]: r for r in check.details["per_label"]}
    assert sorted(per_label) == sorted(bundle.classes)
    assert all(r["live_mean_probability"] is not None for r in per_label.values())
    live = _check(result, "performance")
    assert live.name == f"live {bundle.metadata['metric']}"
    task, target = bundle.task, bundle.target
    sample = to_sample(observe.records(bundle, *_summaries_and_outputs(bundle, held)))
    y = task.encode(held["label"].tolist(), bundle.classes)
    assert live.live == pytest.approx(
        task.score(live.details["metric"], y, sample.probs, target), abs=1e-9
    )


def _summaries_and_outputs(bundle, rows: pd.DataFrame):
    values = observe.table_records(rows, bundle.preprocessing["features"])
    x, summaries = observe.prepare(bundle, values)
    out, emb = observe.infer(bundle, x)
    return summaries, out, emb


def test_multilabel_genes_of_one_label_flag_that_label(multi, tmp_path):
    """Held-out genes that all carry Class1 (about a third of all genes do): the predicted
    rate of Class1 jumps and the check names it among the labels that moved."""
    project, bundle, table = multi
    held = table.iloc[HELD_OUT:]
    shifted = held[held["label"].str.split("|").map(lambda s: "Class1" in s)].head(300)
    result = project.monitor(inputs=_inputs(tmp_path / "class1.csv", shifted, HELD_OUT))
    check = _check(result, "prediction")
    assert check.alert and "Class1" in check.details["moved"], check.sentence
    row = next(r for r in check.details["per_label"] if r["label"] == "Class1")
    assert row["live_rate"] - row["reference_rate"] >= project.config.monitor.prediction_shift
    assert row["live_mean_probability"] > row["reference_mean_probability"]
    assert "Class1" in check.sentence
    for other in check.details["per_label"]:  # flagged = significant and large enough
        assert other["moved"] == (
            other["p_value"] < result.level
            and abs(other["change"]) >= project.config.monitor.prediction_shift
        )


# ---- retrain: champion vs challenger in RMSE's direction -------------------------------------
@pytest.fixture(scope="module")
def weak(reg):
    """The same project trained 1 epoch at learning rate 1e-5 (close to predicting the mean:
    RMSE about 75 against about 47), exported (forced) as v2."""
    project = reg[0]
    project.update_config({"train.learning_rate": 1e-5})
    project.train(epochs=1, progress=False)
    project.export(force=True, reason="a weaker challenger for the comparison test")
    return project


def _compare(project: Project, champion: int, challenger: int) -> dict:
    from dlworkflow.evaluate.compare import compare

    models = project.root / "models"
    with project.step("retrain", inputs={"champion": champion, "challenger": challenger}):
        return compare(
            project,
            champion=models / f"v{champion}",
            challenger=models / f"v{challenger}",
            on="test",
        )


def test_compare_promotes_the_lower_rmse_challenger_and_keeps_the_champion_otherwise(weak):
    from sklearn.metrics import mean_squared_error

    project = weak
    margin = 5.0  # RMSE units: the challenger must be at least 5 lower
    better = _compare(project, champion=2, challenger=1)  # 1 epoch vs 20 epochs
    assert better["metric"] == "rmse" and better["higher_is_better"] is False
    c = better["compared"]
    assert c["challenger"] < c["champion"] - margin
    assert c["improvement"] == pytest.approx(-c["difference"])
    assert c["interval"][0] <= c["difference"] <= c["interval"][1]
    assert decide(passed=True, verdict="PASS", comparison=better, margin=margin).outcome == PROMOTED
    worse = _compare(project, champion=1, challenger=2)
    w = worse["compared"]
    assert w["challenger"] == pytest.approx(c["champion"]) and w["difference"] > 0
    assert w["interval"] == pytest.approx([-c["interval"][1], -c["interval"][0]], abs=2e-6)
    kept = decide(passed=True, verdict="PASS", comparison=worse, margin=margin)
    assert kept.outcome != PROMOTED and "lower is better" in kept.reason
    # a challenger better by less than the margin is kept out too
    assert (
        decide(
            passed=True,
            verdict="PASS",
            comparison=better,
            margin=c["champion"] - c["challenger"] + 0.5,
        ).outcome
        != PROMOTED
    )
    # the champion's RMSE is sklearn's on the sealed test rows through the exported model
    with project.step("retrain", inputs={"check": 1}):
        from dlworkflow.store.sealed import open_test_set

        rows = open_test_set(project, purpose="test check", slice="test")
    bundle = load_bundle(project.root / "models" / "v1")
    values = observe.table_records(rows, bundle.preprocessing["features"])
    predicted = observe.predict_outputs(bundle, bundle.prepare_rows(values))[:, 0]
    rmse = mean_squared_error(rows["label"].astype(float), predicted) ** 0.5
    assert c["challenger"] == pytest.approx(rmse, abs=1e-5)


def test_exports_from_before_tasks_are_monitored_as_classification():
    """metadata.json without "task" (and with the success criterion's number as "target")."""
    task, target = observe.metadata_task({"modality": "tabular", "target": 0.9})
    assert task.single_label and task.modality == "tabular" and target == {}
    task, target = observe.metadata_task(
        {"modality": "tabular", "task": "tabular-regression", "target": {"mean": 2.0, "std": 3.0}}
    )
    assert task.kind == "regression" and target == {"mean": 2.0, "std": 3.0}
