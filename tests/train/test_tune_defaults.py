"""What `dlw tune`'s shipped defaults do (bench/tune.py measured them): TPE's start-up trials
are random search's first trials of the same seed, then TPE aims; the median pruner waits for
the start-up trials and the warm-up epoch; trials train on the live weights (no weight
average) unless tune.weight_average says so, and `dlw train` keeps train.ema_decay."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from conftest import FAST_CONFIG, build_digits_project
from dlworkflow.config import Tune
from dlworkflow.project import Project
from dlworkflow.train.tune import space as space_mod
from dlworkflow.train.tune import study as study_mod
from dlworkflow.train.tune import tune
from dlworkflow.train.tune.trial import trial_overrides

optuna = pytest.importorskip("optuna")

SPACE = {
    "train.learning_rate": {"type": "log_uniform", "low": 1.0e-5, "high": 1.0e-1},
    "train.batch_size": {"type": "categorical", "choices": [16, 32, 64]},
}


def settings(tmp_path: Path, **tune_keys: Any) -> study_mod.StudySettings:
    """A new project's study with dlw's `tune:` defaults but the space, the seed and
    `tune_keys`."""
    project = Project.init(tmp_path / "p", name="p")
    project.update_config({"tune.space": SPACE, "tune.seed": 11, **tune_keys})
    return study_mod.settings_for(project)


def first_trials(settings_: study_mod.StudySettings, n: int) -> list[dict[str, Any]]:
    """The params of the first `n` trials of a study of dlw's sampler on an objective that
    peaks at learning rate 1e-2."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=study_mod.make_sampler(settings_))
    dists = space_mod.distributions(settings_.space)
    out = []
    for _ in range(n):
        trial = study.ask(dists)
        study.tell(trial, -abs(math.log10(trial.params["train.learning_rate"]) + 2.0))
        out.append(trial.params)
    return out


def test_the_defaults_are_tpe_three_start_up_trials_median_pruner_live_weights() -> None:
    tune_ = Tune()
    assert (tune_.sampler, tune_.startup_trials, tune_.pruner) == ("tpe", 3, "median")
    assert tune_.weight_average is False


def test_tpe_start_up_trials_are_random_searchs_first_trials_then_it_aims(
    tmp_path: Path,
) -> None:
    tpe = settings(tmp_path / "tpe")
    rnd = settings(tmp_path / "random", **{"tune.sampler": "random"})
    startup = tpe.startup_trials
    assert startup == Tune().startup_trials and tpe.seed == rnd.seed
    n = startup + 8
    by_tpe, by_random = first_trials(tpe, n), first_trials(rnd, n)
    assert by_tpe[:startup] == by_random[:startup]  # the same seed draws the same start-up
    assert by_tpe[startup] != by_random[startup]  # then TPE models the trials it has

    def miss(params: dict[str, Any]) -> float:  # decades from the best learning rate
        return abs(math.log10(params["train.learning_rate"]) + 2.0)

    aimed, drawn = by_tpe[startup:], by_random[startup:]
    assert sum(map(miss, aimed)) / len(aimed) < sum(map(miss, drawn)) / len(drawn)


def test_the_median_pruner_waits_for_the_start_up_trials_and_the_warm_up(
    tmp_path: Path,
) -> None:
    made = settings(tmp_path)
    study = optuna.create_study(direction="maximize", pruner=study_mod.make_pruner(made))
    assert isinstance(study.pruner, optuna.pruners.MedianPruner)

    def run(values: list[float]) -> bool:
        """Report `values` epoch by epoch; whether the pruner stopped the trial."""
        trial = study.ask()
        for epoch, value in enumerate(values, start=1):
            trial.report(value, epoch)
            if trial.should_prune():
                study.tell(trial, state=optuna.trial.TrialState.PRUNED)
                return True
        study.tell(trial, values[-1])
        return False

    good = [0.8, 0.9, 0.95]
    bad = [0.1, 0.1, 0.1]
    for _ in range(made.startup_trials - 1):
        assert not run(good)
    assert not run(bad)  # one trial short of the start-up trials: never pruned
    assert run(bad)  # after them: below the median at epoch warmup_epochs + 1
    trial = study.ask()
    trial.report(0.0, made.warmup_epochs)  # the warm-up epochs are never pruned
    assert not trial.should_prune()


def test_trial_overrides_drop_the_weight_average_unless_asked_or_searched(
    tmp_path: Path,
) -> None:
    assert trial_overrides(settings(tmp_path / "a"))["train.ema_decay"] is None
    kept = settings(tmp_path / "b", **{"tune.weight_average": True})
    assert "train.ema_decay" not in trial_overrides(kept)
    decay = {"type": "uniform", "low": 0.5, "high": 0.9}
    searched = settings(tmp_path / "c", **{"tune.space": {**SPACE, "train.ema_decay": decay}})
    assert "train.ema_decay" not in trial_overrides(searched)
    assert kept.name != settings(tmp_path / "d").name  # another study: other trials


def test_a_trial_trains_the_live_weights_while_train_keeps_its_average(tmp_path: Path) -> None:
    from mlflow import MlflowClient

    project = build_digits_project(
        tmp_path,
        config={
            **FAST_CONFIG,
            "train.ema_decay": 0.9,  # as `dlw init` writes it
            "tune.space": {  # rates that learn in an epoch, so the average shows
                "train.learning_rate": {"type": "log_uniform", "low": 5.0e-3, "high": 2.0e-2}
            },
            "tune.epochs": 1,
            "tune.seed": 2,
        },
    )
    live = tune(project, trials=1, progress=False)
    project.update_config({"tune.weight_average": True})
    averaged = tune(project, trials=1, progress=False)
    assert live.study != averaged.study
    assert project.config.train.ema_decay == 0.9  # dlw tune never changes the train config
    client = MlflowClient(tracking_uri=f"sqlite:///{project.paths.mlflow_db}")
    logged = [
        client.get_run(result.trials[0]["mlflow_run_id"]).data.params["train.ema_decay"]
        for result in (live, averaged)
    ]
    assert logged == ["None", "0.9"]
    # the same sampled trial (same seed), trained both ways: the average changes the score
    assert live.trials[0]["params"] == averaged.trials[0]["params"]
    assert live.trials[0]["value"] != averaged.trials[0]["value"]
