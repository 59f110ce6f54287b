"""hyperparameters_tuned reads the ledger's "tune" record: a finished study earns the point and
its evidence says which space was searched (the default one when tune.space is empty), the
trials and the best validation value beside the trained configuration's; without one, every
missing point names `dlw tune`, which needs no configuration. The records are written by the
tune step's own `record` from a TuneResult (tests/train/test_tune_default_space.py runs the
study for real)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

from dlworkflow.report.audit.judges_tune import hyperparameters_tuned
from dlworkflow.train.tune.step import TuneResult, record


def tune_summary(**changes: Any) -> dict[str, Any]:
    """The ledger summary `dlw tune` writes for a default-space study of 4 one-epoch trials."""
    result = TuneResult(
        study="mnist-demo-7db4a16855c4",
        storage="sqlite:///.dlw/tune/study.db",
        backend="optuna",
        metric="accuracy",
        best_value=0.9078,
        best_params={"train.learning_rate": 0.00797, "train.batch_size": 64},
        best_trial=1,
        n_trials=4,
        n_complete=4,
        n_pruned=0,
        n_failed=0,
        n_new=4,
        seconds=31.0,
        mlflow_run_id="abc",
        ledger_run_id=9,
        space_source="default",
        space_basis="default space for small_cnn (scratch strategy): 6 parameters",
        space={"train.learning_rate": {"type": "log_uniform", "low": 5e-4, "high": 5e-2}},
        epochs=1,
    )
    for key, value in changes.items():
        setattr(result, key, value)
    run = SimpleNamespace(outputs={}, summary={})
    record(run, result)  # type: ignore[arg-type]
    return run.summary


class Ev:
    """The part of audit.evidence.Evidence the judge reads."""

    def __init__(
        self,
        tune: list[tuple[str, dict]] = (),  # (status, summary), ledger runs 10, 11, ...
        train: list[tuple[int, dict]] = (),  # (ledger run, summary) of done train runs
        lr_find: bool = False,
    ) -> None:
        self._tune = [
            SimpleNamespace(id=10 + i, status=st, summary=su) for i, (st, su) in enumerate(tune)
        ]
        self._train = [
            SimpleNamespace(id=run, status="done", summary=s, config_hash=f"c{run}")
            for run, s in train
        ]
        self.lr_find_plot = Path("reports/lr_find.png") if lr_find else None

    def history(self, step: str) -> list[Any]:
        runs = {"tune": self._tune, "train": self._train}[step]
        return [r for r in runs if r.status == "done"]

    def latest(self, step: str) -> Any:
        runs = {"tune": self._tune, "train": self._train}[step]
        return runs[-1] if runs else None

    @property
    def train(self) -> Any:
        return self._train[-1] if self._train else None


TRAINED = (5, {"metric": "accuracy", "val_metric": 0.9787, "epochs_run": 3})
RETRAINED = (12, {"metric": "accuracy", "val_metric": 0.95, "epochs_run": 1})  # after the study


def test_a_default_space_study_earns_the_point_with_its_numbers() -> None:
    got = hyperparameters_tuned(Ev(tune=[("done", tune_summary())], train=[TRAINED, RETRAINED]))
    assert got.points == 1.0 and not got.failed
    text = got.evidence
    assert "the default space for small_cnn (scratch strategy): 6 parameters" in text
    assert "(tune.space is empty)" in text
    assert "4 trials (4 complete, 0 pruned, 0 failed) of up to 1 epoch;" in text
    assert "best validation accuracy 0.9078 (trial 1)" in text
    # beside the configuration trained before the study (not the retrain after it)
    assert "against 0.9787 for the configuration trained before it (ledger run 5, " in text
    assert "best of 3 epochs)" in text
    assert "nothing applied (`dlw tune --apply`" in text


def test_a_configured_space_is_named_as_configured() -> None:
    summary = tune_summary(space_source="configured", space_basis="", applied=True)
    got = hyperparameters_tuned(Ev(tune=[("done", summary)]))
    assert got.points == 1.0
    assert "searched tune.space of dlworkflow.yaml (1 parameter)" in got.evidence
    assert "default" not in got.evidence and "written into dlworkflow.yaml" in got.evidence
    assert "trained before it" not in got.evidence  # no train run to compare with


def test_without_a_finished_study_the_next_step_is_dlw_tune() -> None:
    nothing = hyperparameters_tuned(Ev(train=[TRAINED]))
    assert nothing.points == 0.0
    assert nothing.next_step.startswith("`dlw tune` (no configuration needed")
    assert "dlw config show" in nothing.next_step
    # an interrupted study is not a finished search; a range test earns half
    half = hyperparameters_tuned(
        Ev(tune=[("failed", {})], train=[TRAINED, RETRAINED], lr_find=True)
    )
    assert half.points == 0.5 and half.next_step.startswith("`dlw tune`")
    assert "a `dlw tune` run that did not finish (failed)" in half.evidence
    assert "2 training configurations compared" in half.evidence
