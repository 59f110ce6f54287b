"""The runs section beyond the list: the comparison of runs (/runs/compare), the tune study
(/runs/study), and the MLflow runs that `dlw evaluate` and `dlw test` log, all on real runs.

compared_root: a copy of ui_root trained once more (learning rate 0.003, one epoch: a second
train run) and tuned (`dlw tune`, two one-epoch trials: a study with two trial runs). Every
figure a test checks is read back from the MLflow store or the Optuna study, not assumed."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from pagekit import logged_in, rows, text

from conftest import SECOND_LR, copy_project
from dlworkflow.project import Project


def _client(root: Path) -> Any:
    from dlworkflow.train import tracking

    return tracking.open_client(Project.load(root))


def _runs(root: Path, step: str) -> list[Any]:
    """The store's runs of `step` (tags.dlw.step), oldest first."""
    client = _client(root)
    runs = client.search_runs(
        [e.experiment_id for e in client.search_experiments()],
        filter_string=f"tags.`dlw.step` = '{step}'",
        order_by=["attributes.start_time ASC"],
    )
    return list(runs)


def _series(page: str, chart_id: str) -> list[str]:
    svg = re.search(rf'<svg[^>]*id="{chart_id}".*?</svg>', page, flags=re.S)
    assert svg, f"no chart {chart_id}"
    return re.findall(r'<g class="series" data-label="([^"]*)">', svg.group(0))


# ---- evaluate and test in MLflow --------------------------------------------------------------
def test_evaluate_logs_a_run_with_the_splits_metrics_and_report(ui_root):
    project = Project.load(ui_root)
    (run,) = _runs(ui_root, "evaluate")
    report = json.loads((ui_root / "reports/evaluate/val/metrics.json").read_text())
    train = _runs(ui_root, "train")[0]
    assert run.info.run_name == "evaluate val" and run.info.status == "FINISHED"
    tags = run.data.tags
    assert tags["dlw.evaluated_mlflow_run"] == train.info.run_id
    assert tags["dlw.model_versions"] == "1"  # ui_root exported its weights as v1 first
    assert tags["dlw.ledger_run_id"] == str(project.ledger.latest("evaluate").id)
    assert run.data.params["split"] == "val"
    assert run.data.params["data.dataset_version"] == train.data.params["data.dataset_version"]
    for name, m in report["metrics"].items():
        assert run.data.metrics[f"val_{name}"] == pytest.approx(m["value"])
        assert run.data.metrics[f"val_{name}_ci_low"] == pytest.approx(m["low"])
    assert run.data.metrics["val_n"] == report["n"]
    artifacts = {a.path for a in _client(ui_root).list_artifacts(run.info.run_id, "report")}
    assert "report/metrics.json" in artifacts
    assert all(a.endswith((".json", ".png")) for a in artifacts) and len(artifacts) <= 6
    assert project.ledger.latest("evaluate").summary["mlflow_run_id"] == run.info.run_id


def test_each_test_read_logs_a_run_with_its_verdict_target_and_read_count(client, tested_root):
    project = Project.load(tested_root)
    runs = _runs(tested_root, "test")
    assert len(runs) == 2  # `dlw test` twice
    report = json.loads((tested_root / "reports/evaluate/test/metrics.json").read_text())
    verdict = project.ledger.latest("test").outputs["verdict"]
    for k, run in enumerate(runs, start=1):
        assert run.info.run_name == "test"
        assert run.data.tags["dlw.verdict"] == verdict
        assert run.data.metrics["passed"] == float(verdict == "PASS")
        assert run.data.metrics["target"] == 0.9 and run.data.params["target"] == "0.9"
        assert run.data.metrics["test_reads"] == k
    last = runs[-1].data.metrics
    assert last["test_accuracy"] == pytest.approx(report["metrics"]["accuracy"]["value"])
    page = logged_in(client, tested_root).get("/runs").text  # listed, never ticked
    listed = [r for r in rows(page, "run") if 'data-step="test"' in r]
    assert len(listed) == 2 and not any('type="checkbox"' in r for r in listed)
    assert all(f"test {verdict}" in text(r) for r in listed)
    assert f"{last['test_accuracy']:.4g}" in text(listed[0])


# ---- the runs page ----------------------------------------------------------------------------
def test_the_runs_page_ticks_train_and_tune_runs_and_lists_evaluate_runs(client, compared_root):
    page = logged_in(client, compared_root).get("/runs").text
    assert '<form method="get" action="/runs/compare" id="compare-form">' in page
    listed = rows(page, "run")
    train_ids = [r.info.run_id for r in _runs(compared_root, "train")]
    evaluate = _runs(compared_root, "evaluate")
    assert len(train_ids) == 2 and len(evaluate) == 1
    for run_id in train_ids:
        assert f'name="run" value="{run_id}"' in page
    row = next(r for r in listed if evaluate[0].info.run_id in r)
    assert 'data-step="evaluate"' in row and 'type="checkbox"' not in row
    value = evaluate[0].data.metrics["val_accuracy"]
    assert f"{value:.4g}" in text(row)
    trials = [r for r in listed if 'data-step="tune trial"' in r]
    assert len(trials) == 2 and all('type="checkbox"' in r for r in trials)


# ---- the comparison ---------------------------------------------------------------------------
def test_two_train_runs_side_by_side_config_diff_metrics_and_curves(client, compared_root):
    first, second = _runs(compared_root, "train")
    c = logged_in(client, compared_root)
    response = c.get("/runs/compare", params={"run": [first.info.run_id, second.info.run_id]})
    assert response.status_code == 200
    page = response.text
    diff = re.search(r'<table class="diff" id="config-diff">.*?</table>', page, flags=re.S)
    assert diff
    lr = next(r for r in rows(diff.group(0), "differs") if "train.learning_rate" in r)
    assert [first.data.params["train.learning_rate"], str(SECOND_LR)] == re.findall(
        r"<td>([^<]*)</td>", lr
    )
    assert "model.name" not in diff.group(0)  # the same in both: folded away
    same = re.search(r'<details id="config-same">.*?</details>', page, flags=re.S)
    assert same and "model.name" in same.group(0) and "small_cnn" in same.group(0)
    metrics = re.search(r'id="compare-metrics">.*?</table>', page, flags=re.S)
    assert metrics
    best = re.search(r"<code>best_val_accuracy</code></th>(.*?)</tr>", metrics.group(0), re.S)
    assert best
    shown = re.findall(r'<td class="num">([^<]*)</td>', best.group(1))
    assert shown == [f"{r.data.metrics['best_val_accuracy']:.4g}" for r in (first, second)]
    labels = [f"{r.info.run_name} ({r.info.run_id[:8]})" for r in (first, second)]
    for chart in ("curve-train-loss", "curve-val-loss", "curve-val-accuracy"):
        assert _series(page, chart) == labels
    svg = re.search(r'<svg[^>]*id="curve-val-loss".*?</svg>', page, flags=re.S)
    assert svg and svg.group(0).count("<circle") == 2  # one epoch each
    assert "<script" not in page


def test_trials_compare_with_the_train_run(client, compared_root):
    ids = [r.info.run_id for r in _runs(compared_root, "tune") if "dlw.tune.trial" in r.data.tags]
    train = _runs(compared_root, "train")[0].info.run_id
    page = logged_in(client, compared_root).get("/runs/compare", params={"run": [*ids, train]})
    assert page.status_code == 200
    assert len(_series(page.text, "curve-val-accuracy")) == 3


@pytest.mark.parametrize(
    ("picked", "status", "says"),
    [
        (1, 400, "Pick at least 2 runs to compare"),
        (9, 400, "At most 8 runs can be compared at once: 9 given."),
    ],
)
def test_too_few_or_too_many_runs_are_refused_with_the_reason(
    client, compared_root, picked, status, says
):
    real = _runs(compared_root, "train")[0].info.run_id
    asked = [real] + [f"{k:032x}" for k in range(picked - 1)]
    response = logged_in(client, compared_root).get("/runs/compare", params={"run": asked})
    assert response.status_code == status
    assert says in text(response.text)


def test_an_unknown_run_is_404_and_an_evaluate_run_is_not_compared(client, compared_root):
    c = logged_in(client, compared_root)
    train = _runs(compared_root, "train")[0].info.run_id
    missing = c.get("/runs/compare", params={"run": [train, "f" * 32]})
    assert missing.status_code == 404
    assert f"No run '{'f' * 32}' in this project's MLflow store." in text(missing.text)
    odd = c.get("/runs/compare", params={"run": [train, "../etc/passwd"]})
    assert odd.status_code == 404
    evaluate = _runs(compared_root, "evaluate")[0].info.run_id
    refused = c.get("/runs/compare", params={"run": [train, evaluate]})
    assert refused.status_code == 400
    assert "the comparison is for train and tune runs" in text(refused.text)


# ---- the tune study ---------------------------------------------------------------------------
def test_the_study_page_shows_the_studys_trials_best_and_mlflow_runs(client, compared_root):
    import optuna

    from dlworkflow.train.tune.study import study_db

    db = study_db(Project.load(compared_root))
    summary = Project.load(compared_root).ledger.latest("tune").summary
    study = optuna.load_study(study_name=summary["study"], storage=f"sqlite:///{db}")
    trials = study.get_trials()
    before = (db.stat().st_mtime_ns, db.read_bytes())
    c = logged_in(client, compared_root)
    page = c.get("/runs/study").text
    assert summary["study"] in page
    listed = rows(page, "trial")
    assert len(listed) == len(trials) == 2
    for row, trial in zip(listed, trials, strict=True):
        cells = text(row).split()
        assert cells[0] == str(trial.number) and trial.state.name.lower() in cells
        assert f"{trial.value:.4f}" in cells
        assert f'value="{trial.user_attrs["mlflow_run_id"]}"' in row
        lr = trial.params["train.learning_rate"]
        assert f"train.learning_rate={lr:.3g}" in text(row).replace(" =", "=")
    best = study.best_trial
    assert 'class="trial best"' in page and f'id="trial-{best.number}"' in page
    box = re.search(r'id="study-best">.*?</table>', page, flags=re.S)
    assert box and f"{best.value:.4f}" in box.group(0)
    assert best.user_attrs["mlflow_run_id"] in box.group(0)
    history = re.search(r'<svg[^>]*id="study-history".*?</svg>', page, flags=re.S)
    assert history and history.group(0).count("<circle") == 2  # the two complete trials
    # read-only: the file is unchanged and a writer gets its lock at once
    assert (db.stat().st_mtime_ns, db.read_bytes()) == before
    with sqlite3.connect(db, timeout=0) as conn:
        conn.execute("BEGIN IMMEDIATE")
        conn.rollback()


def test_without_a_study_the_page_says_which_command_to_run(client, ui_root):
    from dlworkflow.train.tune.study import study_db

    page = logged_in(client).get("/runs/study")
    assert page.status_code == 200
    assert "No tuning study yet. Run dlw tune --trials 20" in text(page.text)
    assert not study_db(Project.load(ui_root)).exists()  # nothing created


def test_a_store_that_refuses_costs_the_run_not_the_step(ui_root, tmp_path):
    """log_step_run on a tracking URI that cannot be opened: no run, the reason, no raise."""
    from dlworkflow.evaluate.tracked import log_step_run

    project = Project.load(copy_project(ui_root, tmp_path / "proj"))
    (tmp_path / "a-file").write_text("not a folder")
    project.update_config({"tracking.uri": f"sqlite:///{tmp_path}/a-file/x.db"})
    report = json.loads((ui_root / "reports/evaluate/val/metrics.json").read_text())
    logged = log_step_run(
        Project.load(project.root),
        step="evaluate",
        split="val",
        report=report,
        meta={"name": "small_cnn"},
        ledger_run_id=None,
    )
    assert logged.run_id is None
    assert logged.row()[1].startswith("not logged: MLflow tracking failed")


def test_pruned_trials_say_when_and_the_trials_are_paged(client, ui_root, tmp_path, monkeypatch):
    """A study made as `dlw tune` makes it (study.settings_for, study.load), its trials told
    by hand: complete 0.5, pruned after epoch 2 at 0.3, complete 0.7; no ledger row names it."""
    from optuna.trial import TrialState

    from dlworkflow.train.tune import study as study_mod
    from dlworkflow.ui import study as study_page

    project = Project.load(copy_project(ui_root, tmp_path / "proj"))
    study = study_mod.load(study_mod.settings_for(project))
    for value, state in ((0.5, TrialState.COMPLETE), (0.3, TrialState.PRUNED), (0.7, None)):
        trial = study.ask()
        trial.report(value - 0.1, 1)
        trial.report(value, 2)
        if state is TrialState.PRUNED:
            study.tell(trial, state=state)
        else:
            study.tell(trial, value)
    monkeypatch.setattr(study_page, "PAGE_SIZE", 2)
    c = logged_in(client, project.root)
    first = c.get("/runs/study").text
    assert study.study_name in first
    listed = [text(r) for r in rows(first, "trial")]
    assert len(listed) == 2 and 'rel="next" href="/runs/study?page=2"' in first
    assert listed[1].split()[:3] == ["1", "pruned", "0.3000"] and "epoch 2" in listed[1]
    assert "epoch 2" not in listed[0]
    history = re.search(r'<svg[^>]*id="study-history".*?</svg>', first, flags=re.S)
    assert history and history.group(0).count("<circle") == 2
    assert history.group(0).count('<path d="M') == 1  # the pruned trial's cross
    second = c.get("/runs/study", params={"page": 2}).text
    (last,) = [text(r) for r in rows(second, "trial best")]
    assert last.split()[:4] == ["2", "best", "complete", "0.7000"]


def test_a_study_file_that_is_not_one_is_said_not_a_server_error(client, ui_root, tmp_path):
    from dlworkflow.train.tune.study import study_db

    project = Project.load(copy_project(ui_root, tmp_path / "proj"))
    db = study_db(project)
    db.parent.mkdir(parents=True, exist_ok=True)
    db.write_bytes(b"not a database" * 100)
    page = logged_in(client, project.root).get("/runs/study")
    assert page.status_code == 200
    assert "The study file could not be read (" in text(page.text)
    assert db.read_bytes() == b"not a database" * 100
