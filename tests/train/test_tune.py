"""`dlw tune` on real digit images: a study that is interrupted and resumed, prunes its bad
trials, never reads the test set nor replaces the trained model, records one MLflow child run
per trial, applies its best parameters; parallel workers; search-space validation."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from conftest import FAST_CONFIG, build_digits_project
from dlworkflow.config import ParamSpec
from dlworkflow.errors import ConfigError, TrainError
from dlworkflow.project import Project
from dlworkflow.train.tune import TuneResult, run_trial, tune
from dlworkflow.train.tune import space as space_mod
from dlworkflow.train.tune import study as study_mod

TRIALS = 5
SPACE = {  # a learning rate down to 1e-6 makes trials the median pruner stops
    "train.learning_rate": {"type": "log_uniform", "low": 1.0e-6, "high": 3.0e-2},
    "train.batch_size": {"type": "categorical", "choices": [16, 32]},
}
TUNE = {
    "tune.space": SPACE,
    "tune.epochs": 2,
    "tune.sampler": "random",
    "tune.seed": 25,
    "tune.pruner": "median",
    "tune.startup_trials": 1,
    "tune.warmup_epochs": 0,
}


class Interrupted(Exception):
    """Stands in for a killed `dlw tune`."""


def stop_after(n: int) -> Any:
    def callback(study: Any, trial: Any) -> None:
        if trial.number + 1 >= n:
            raise Interrupted(f"stopped after trial {trial.number}")

    return callback


@pytest.fixture(scope="module")
def studied(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A trained project, then a study of TRIALS trials: interrupted after 2, then resumed."""
    project = build_digits_project(tmp_path_factory.mktemp("tune"), config={**FAST_CONFIG, **TUNE})
    project.train(epochs=1, progress=False)
    pointer = project.paths.train_dir / "best.json"
    before = {
        "pointer": pointer.read_bytes(),
        "train_runs": len(project.ledger.history("train")),
        "run_dirs": sorted(p.name for p in project.paths.train_dir.iterdir()),
    }
    with pytest.raises(Interrupted):
        tune(project, trials=TRIALS, progress=False, callbacks=[stop_after(2)])
    result = tune(project, trials=TRIALS, progress=False)
    return {"project": project, "result": result, "before": before, "pointer": pointer}


def test_study_finishes_with_the_best_value_and_params_in_the_space(studied: dict) -> None:
    result: TuneResult = studied["result"]
    assert result.n_trials == TRIALS and [t["number"] for t in result.trials] == list(range(5))
    complete = [t for t in result.trials if t["state"] == "complete"]
    assert result.best_value == max(t["value"] for t in complete)
    assert 0.0 <= result.best_value <= 1.0
    lr = result.best_params["train.learning_rate"]
    assert 1e-6 <= lr <= 3e-2 and result.best_params["train.batch_size"] in (16, 32)
    best = result.trials[result.best_trial]
    assert best["params"] == result.best_params and best["value"] == result.best_value
    # better than chance (10 classes) after 2 epochs at the best learning rate
    assert result.best_value > 0.3
    assert dict(result.rows())["best val accuracy"].startswith(f"{result.best_value:.4f}")


def test_the_median_pruner_stops_bad_trials(studied: dict) -> None:
    result: TuneResult = studied["result"]
    pruned = [t for t in result.trials if t["state"] == "pruned"]
    assert result.n_pruned == len(pruned) >= 1
    for trial in pruned:  # stopped before its last epoch, and worse than the best
        assert trial["epochs_run"] < 2
        assert trial["value"] < result.best_value
    assert result.n_complete + result.n_pruned + result.n_failed == TRIALS


def test_an_interrupted_study_resumes_where_it_stopped(studied: dict) -> None:
    project: Project = studied["project"]
    result: TuneResult = studied["result"]
    runs = project.ledger.history("tune")
    assert [r.status for r in runs] == ["failed", "done"]
    assert result.n_new == TRIALS - 2  # trials 0 and 1 were kept from the first run
    summary = runs[-1].summary
    assert summary["study"] == result.study and summary["n_trials"] == TRIALS
    assert summary["best_value"] == result.best_value
    assert (project.paths.state / "tune" / "study.db").is_file()
    again = tune(project, trials=TRIALS, progress=False)  # nothing left to run
    assert again.n_new == 0 and again.study == result.study and again.n_trials == TRIALS


def test_trials_never_read_the_test_set_nor_replace_the_trained_model(studied: dict) -> None:
    project: Project = studied["project"]
    before = studied["before"]
    assert project.ledger.test_reads() == []
    assert studied["pointer"].read_bytes() == before["pointer"]
    assert len(project.ledger.history("train")) == before["train_runs"]
    assert sorted(p.name for p in project.paths.train_dir.iterdir()) == before["run_dirs"]


def test_every_trial_is_an_mlflow_child_run_of_its_tune_run(studied: dict) -> None:
    from mlflow import MlflowClient

    project: Project = studied["project"]
    result: TuneResult = studied["result"]
    client = MlflowClient(tracking_uri=f"sqlite:///{project.paths.mlflow_db}")
    experiment = client.get_experiment_by_name(project.config.name)
    runs = client.search_runs([experiment.experiment_id], max_results=1000)
    parents = {
        r.info.run_id: r
        for r in runs
        if r.data.tags.get("dlw.step") == "tune" and "mlflow.parentRunId" not in r.data.tags
    }
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") in parents]
    assert len(parents) >= 2  # the interrupted run and the resumed one (and later ones)
    assert parents[result.mlflow_run_id].data.metrics["tune.n_trials"] == TRIALS
    by_id = {r.info.run_id: r for r in children}
    assert sorted(by_id) == sorted(t["mlflow_run_id"] for t in result.trials)
    for trial in result.trials:
        run = by_id[trial["mlflow_run_id"]]
        assert run.data.tags["dlw.tune.trial"] == str(trial["number"])
        assert float(run.data.params["tune.train.learning_rate"]) == pytest.approx(
            trial["params"]["train.learning_rate"]
        )
        curve = client.get_metric_history(run.info.run_id, "val_accuracy")
        assert len(curve) == trial["epochs_run"]
        assert run.info.status == ("KILLED" if trial["state"] == "pruned" else "FINISHED")


def test_run_trial_reports_every_epoch_and_returns_the_best_value(studied: dict) -> None:
    project: Project = studied["project"]
    seen: list[tuple[int, float]] = []
    value = run_trial(
        project,
        {"train.learning_rate": 0.01},
        epochs=2,
        report=lambda epoch, v: seen.append((epoch, v)),
    )
    assert [e for e, _ in seen] == [1, 2] and value == max(v for _, v in seen)
    assert studied["pointer"].read_bytes() == studied["before"]["pointer"]
    assert len(project.ledger.history("train")) == studied["before"]["train_runs"]


def test_workers_run_trials_in_separate_processes(studied: dict) -> None:
    project: Project = studied["project"]
    project.update_config({"tune.epochs": 1, "tune.pruner": "none"})  # another study
    try:
        result = tune(project, trials=4, workers=2, progress=False)
    finally:
        project.update_config({"tune.epochs": 2, "tune.pruner": "median"})
    assert result.study != studied["result"].study
    assert result.n_trials == 4 and result.n_complete == 4
    pids = {t["pid"] for t in result.trials}
    assert len(pids) == 2 and os.getpid() not in pids
    assert project.ledger.test_reads() == []


def test_apply_writes_the_best_params_into_the_yaml_and_shows_the_diff(studied: dict) -> None:
    project: Project = studied["project"]
    result: TuneResult = studied["result"]
    name_before = study_mod.settings_for(project).name
    applied = tune(project, trials=TRIALS, progress=False, apply=True)
    assert applied.applied and applied.n_new == 0
    assert "-  learning_rate:" in applied.diff and "+  learning_rate:" in applied.diff
    cfg = Project.load(project.root).config
    assert cfg.train.learning_rate == result.best_params["train.learning_rate"]
    assert cfg.train.batch_size == result.best_params["train.batch_size"]
    assert project.ledger.latest("tune").summary["applied"] is True
    # the tuned values are the searched keys: the study is still the same one
    assert study_mod.settings_for(project).name == name_before


@pytest.mark.parametrize(
    ("key", "spec", "message"),
    [
        ("train.learnig_rate", {"type": "uniform", "low": 0.1, "high": 0.2}, "no setting"),
        ("augment.flip", {"type": "uniform", "low": 0.0, "high": 2.0}, "not valid"),
        ("split.seed", {"type": "int", "low": 1, "high": 9}, "only settings of the train step"),
        ("train.epochs", {"type": "int", "low": 1, "high": 9}, "tune.epochs"),
        ("train.optimizer", {"type": "categorical", "choices": ["adamw", "adam"]}, "not valid"),
        ("train.batch_size", {"type": "int", "low": 8.5, "high": 64}, "whole-number"),
        (
            "model.name",
            {"type": "categorical", "choices": ["small_cnn", "resnet9000"]},
            "not a model",
        ),
    ],
)
def test_a_bad_search_space_fails_naming_the_key(
    tmp_path: Path, key: str, spec: dict, message: str
) -> None:
    project = Project.init(tmp_path / "p", name="p")
    project.update_config({"tune.space": {key: spec}})
    with pytest.raises(ConfigError) as info:
        space_mod.check_space(project.config, project.config.tune.space)
    assert key in str(info.value) and message in str(info.value)


def test_an_empty_space_and_a_wrong_backend_are_refused(digits_project: Project) -> None:
    with pytest.raises(ConfigError, match="The search space is empty"):
        space_mod.check_space(digits_project.config, {})  # tune.space empty: the default
    with pytest.raises(TrainError, match="Unknown tuning backend"):
        tune(digits_project, backend="hyperopt", progress=False)


def test_list_choices_round_trip_through_the_study() -> None:
    spec = ParamSpec(type="categorical", choices=[[8, 16], [16, 32]])
    dist = space_mod.distributions({"model.params.channels": spec})["model.params.channels"]
    assert dist.choices == (json.dumps([8, 16]), json.dumps([16, 32]))
    decoded = space_mod.decode(
        {"model.params.channels": "[16, 32]"}, {"model.params.channels": spec}
    )
    assert decoded == {"model.params.channels": [16, 32]}
    assert space_mod.samples(ParamSpec(type="int", low=1, high=4)) == [1, 4]


def test_trials_a_killed_run_left_running_become_failed(tmp_path: Path) -> None:
    project = Project.init(tmp_path / "p", name="p")
    project.update_config({"tune.space": SPACE})
    settings = study_mod.settings_for(project)
    study = study_mod.load(settings)
    study.tell(study.ask(), 0.5)
    orphan = study.ask()  # its process was killed: the storage still says RUNNING
    assert study_mod.recover_interrupted(study) == [orphan.number]
    trial = study_mod.load(settings).trials[orphan.number]
    assert trial.state.name == "FAIL" and "interrupted" in trial.user_attrs["error"]
    assert study_mod.counts(study) == {
        "complete": 1,
        "pruned": 0,
        "failed": 1,
        "running": 0,
        "total": 2,
    }


@pytest.mark.parametrize(
    ("sampler", "expected"),
    [("tpe", "TPESampler"), ("random", "RandomSampler")],
)
def test_each_sampler_is_seeded_with_its_startup_trials(
    tmp_path: Path, sampler: str, expected: str
) -> None:
    project = Project.init(tmp_path / "p", name="p")
    project.update_config({"tune.space": SPACE, "tune.sampler": sampler, "tune.seed": 3})
    settings = study_mod.settings_for(project)
    made = study_mod.make_sampler(settings)
    assert type(made).__name__ == expected
    if sampler != "random":
        assert made._n_startup_trials == settings.startup_trials  # noqa: SLF001
    import optuna

    dists = space_mod.distributions(settings.space)
    firsts = [  # the same seed draws the same first trial
        optuna.create_study(sampler=study_mod.make_sampler(settings)).ask(dists).params
        for _ in range(2)
    ]
    assert firsts[0] == firsts[1]


def test_tune_budget_starts_no_trial_after_it_and_says_it_stopped(tmp_path: Path) -> None:
    """`dlw tune --budget 0.01` (0.6 s) with 20 trials asked: the first trial outlasts the
    budget, so no second one starts; the table and the ledger say it stopped for the budget."""
    from typer.testing import CliRunner

    from dlworkflow.cli import app

    project = build_digits_project(tmp_path, config={**FAST_CONFIG, **TUNE})
    args = ["tune", "-p", str(project.root), "--trials", "20", "--budget", "0.01"]
    done = CliRunner().invoke(app, args, env={"COLUMNS": "200"})
    assert done.exit_code == 0, done.output
    assert "at the time budget (0.01 min); 20 trials asked for" in done.output
    summary = Project.load(project.root).ledger.latest("tune").summary
    assert summary["n_trials"] < 20 and summary["stopped_for_budget"] is True
    both = CliRunner().invoke(app, [*args, "--timeout", "5"])
    assert both.exit_code == 2 and "give one" in both.output
