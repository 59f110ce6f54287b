"""One tuning trial: train with the config overridden by the trial's parameters, on the train
split, scored on validation, reported every epoch so the backend can prune it.

    value = run_trial(project, {"train.learning_rate": 3e-3}, epochs=3,
                      report=lambda epoch, value: ...)

It reuses the train step's own build and loop (train/step.py `_build`, strategies.train_model),
on a `Project.with_overrides` view, so a trial trains exactly what `dlw train` would with those
settings. What `dlw train` records it does not: no "train" ledger step, no trained-model pointer,
no saved weights. It reads the train and validation splits only (never the sealed test set).
Each trial is an MLflow child run of the study's run (tag mlflow.parentRunId) with its
parameters and its per-epoch curves.
"""

from __future__ import annotations

import math
import os
import time
import traceback
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from dlworkflow import store
from dlworkflow.train import strategies, tracking
from dlworkflow.train.callbacks import LambdaCallback
from dlworkflow.train.step import _build, run_params
from dlworkflow.train.trainer import LoopConfig

if TYPE_CHECKING:
    import optuna

    from dlworkflow.train.callbacks import FitState
    from dlworkflow.train.tune.study import StudySettings
    from dlworkflow.workspace import Workspace

Report = Callable[[int, float], None]  # (1-based epoch, validation primary metric)
Note = Callable[[str, Any], None]  # (key, value): facts about the trial (user attrs)
PARENT_TAG = "mlflow.parentRunId"
TRIAL_TAG = "dlw.tune.trial"
STUDY_TAG = "dlw.tune.study"


def run_trial(
    project: Workspace,
    params: dict[str, Any],
    *,
    epochs: int | None,
    report: Report,
    parent_run_id: str | None = None,
    trial_number: int | None = None,
    study_name: str | None = None,
    ledger_run_id: int | None = None,
    overrides: dict[str, Any] | None = None,
    note: Note | None = None,
    stopped: tuple[type[BaseException], ...] = (),
) -> float:
    """Train with `params` (dotted config keys) for `epochs` (None: train.epochs); the best
    validation value of the primary metric.

    report(epoch, value) is called after every epoch; it raises the backend's prune exception
    to stop the trial (it propagates; the MLflow run ends KILLED when the exception is one of
    `stopped` or optuna.TrialPruned, FAILED otherwise). overrides: further dotted keys that are
    not searched (e.g. train.threads of a worker). note(key, value) receives mlflow_run_id,
    epochs_run, best_epoch and seconds.
    """
    note = note or (lambda key, value: None)
    started = time.perf_counter()
    view = project.with_overrides(
        {**params, **(overrides or {}), **({"train.epochs": epochs} if epochs else {})}
    )
    cfg = view.config
    split_info = store.read_split_info(view)
    metric = cfg.problem.primary_metric or "accuracy"
    loop = LoopConfig.from_train_config(cfg.train, metric=metric, seed=cfg.seed)
    generator, strategy, model, data = _build(view, split_info, None, progress=False)
    tags = {"dlw.step": "tune", TRIAL_TAG: str(trial_number)}
    if parent_run_id:
        tags[PARENT_TAG] = parent_run_id
    if study_name:
        tags[STUDY_TAG] = study_name
    if ledger_run_id is not None:
        tags[tracking.LEDGER_TAG] = str(ledger_run_id)
    key = f"val_{metric}"

    def on_epoch_end(state: FitState) -> None:  # report may raise to prune the trial
        note("epochs_run", state.epoch)
        report(state.epoch, float(state.row[key]))

    name = f"trial-{trial_number}" if trial_number is not None else "trial"
    with tracking.tracked_run(
        view, run_name=name, tags=tags, stopped=(*stopped, *_pruned_types())
    ) as tracker:
        note("mlflow_run_id", tracker.run_id)
        tracker.log_params(
            {
                **run_params(view, split_info, loop, model, data),
                **strategy.params(),
                **{f"tune.{k}": v for k, v in params.items()},
            }
        )
        result = strategies.train_model(
            strategy,
            view,
            model,
            data,
            loop,
            generator=generator,
            callbacks=[tracker, LambdaCallback(on_epoch_end=on_epoch_end)],
        )
        tracker.log_metrics(
            {f"best_val_{metric}": result.best_metric, "best_epoch": result.best_epoch},
            step=result.best_epoch,
        )
    note("best_epoch", result.best_epoch)
    note("seconds", round(time.perf_counter() - started, 3))
    return float(result.best_metric)


def run_one(
    project: Workspace, settings: StudySettings, study: optuna.Study, trial: optuna.Trial
) -> optuna.trial.FrozenTrial:
    """Run an asked Optuna trial to its end and tell the study: COMPLETE with its value,
    PRUNED (the median or ASHA pruner said so), or FAIL (an error, or a non-finite value;
    the error is kept in the trial's user attribute "error")."""
    import optuna
    from optuna.trial import TrialState

    from dlworkflow.train.tune import space as space_mod

    started = time.perf_counter()
    params = space_mod.suggest(trial, settings.space)

    def report(epoch: int, value: float) -> None:
        trial.report(value, epoch)
        if epoch < settings.epochs and trial.should_prune():  # the last epoch saves nothing
            raise optuna.TrialPruned(f"pruned at epoch {epoch}: val {settings.metric} {value:.4f}")

    state, value = TrialState.COMPLETE, None
    try:
        value = run_trial(
            project,
            params,
            epochs=settings.epochs,
            report=report,
            parent_run_id=settings.parent_run_id,
            trial_number=trial.number,
            study_name=settings.name,
            ledger_run_id=settings.ledger_run_id,
            overrides=trial_overrides(settings),
            note=trial.set_user_attr,
        )
        if not math.isfinite(value):
            trial.set_user_attr("error", f"non-finite validation {settings.metric}: {value}")
            state, value = TrialState.FAIL, None
    except optuna.TrialPruned:
        state = TrialState.PRUNED
    except Exception as exc:  # a failed trial is recorded; the study goes on
        trial.set_user_attr("error", f"{type(exc).__name__}: {exc}"[:2000])
        trial.set_user_attr("traceback", traceback.format_exc()[-4000:])
        state = TrialState.FAIL
    trial.set_user_attr("duration_s", round(time.perf_counter() - started, 3))
    frozen = study.tell(trial, value, state=state)
    if settings.progress:
        show_trial(frozen, settings)
    return frozen


def trial_overrides(settings: StudySettings) -> dict[str, Any]:
    """What every trial of the study changes in the config without searching it: the
    worker's train.threads, and no weight average unless tune.weight_average (or the space
    searches train.ema_decay)."""
    out: dict[str, Any] = {"train.threads": settings.threads} if settings.threads else {}
    if not settings.weight_average and "train.ema_decay" not in settings.space:
        out["train.ema_decay"] = None
    return out


def _pruned_types() -> tuple[type[BaseException], ...]:
    try:
        import optuna
    except ImportError:  # pragma: no cover - optuna is a dependency
        return ()
    return (optuna.TrialPruned,)


def show_trial(trial: optuna.trial.FrozenTrial, settings: StudySettings) -> None:
    """One line per finished trial on stderr (all workers share it), with the pid of the
    process that trained it."""
    from rich.console import Console

    attrs = trial.user_attrs
    params = ", ".join(f"{k.split('.')[-1]}={_short(v)}" for k, v in trial.params.items())
    state = trial.state.name.lower()
    value = f"val {settings.metric} {trial.value:.4f}" if trial.value is not None else ""
    if state == "pruned":
        value = f"pruned at epoch {attrs.get('epochs_run', '?')}"
    elif state == "fail":
        value = f"failed: {str(attrs.get('error', ''))[:120]}"
    Console(stderr=True, highlight=False, markup=False).print(
        f"trial {trial.number} ({attrs.get('pid', os.getpid())}): {value}  [{params}]"
    )


def _short(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)
