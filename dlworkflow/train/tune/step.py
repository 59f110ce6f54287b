"""`dlw tune`: run (or continue) the project's study, record it, report it, apply the best.

    result = tune(project)                               # == Project.tune(), `dlw tune`
    result = tune(project, trials=30, workers=4, apply=True)
    result = tune(project, backend="ray", address="ray://head:10001")

One `dlw tune` at a time per project (`.dlw/locks/tune.lock`). The ledger step "tune" records
the study, its best value and parameters, the number of complete, pruned and failed trials and
the space it searched (`space_source`: "configured", or "default" when tune.space is empty and
the default space of the model and strategy was searched, space.py); the MLflow run of this
invocation is the parent of one child run per trial it ran.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

from dlworkflow import store
from dlworkflow.errors import TrainError
from dlworkflow.fileio import run_lock
from dlworkflow.results import StepResult
from dlworkflow.store.privacy import check_privacy_gate
from dlworkflow.train import tracking
from dlworkflow.train.tune import apply as apply_mod
from dlworkflow.train.tune import space as space_mod
from dlworkflow.train.tune import study as study_mod

if TYPE_CHECKING:
    import optuna

    from dlworkflow.train.tune.space import SearchSpace
    from dlworkflow.train.tune.study import StudyCallback, StudySettings
    from dlworkflow.workspace import StepRun, Workspace

BACKENDS = ("optuna", "ray")


@dataclass
class TuneResult(StepResult):
    study: str
    storage: str
    backend: str
    metric: str
    best_value: float | None
    best_params: dict[str, Any]
    best_trial: int | None
    n_trials: int  # in the study, all runs of `dlw tune` together
    n_complete: int
    n_pruned: int
    n_failed: int
    n_new: int  # trials this invocation ran
    seconds: float
    mlflow_run_id: str
    ledger_run_id: int
    browse: str = ""
    report: str = ""  # reports/tune.html, or why there is none
    applied: bool = False
    diff: str = ""  # the YAML diff --apply wrote
    space_source: str = "configured"  # "default": tune.space was empty, the default was searched
    space_basis: str = ""  # e.g. "default for small_cnn (scratch): 6 parameters"
    space: dict[str, Any] = field(default_factory=dict)  # {key: spec} as searched
    epochs: int | None = None  # epochs of each trial (tune.epochs or train.epochs)
    planned: int = 0  # the trials asked for (tune.trials or --trials)
    timeout_s: float | None = None  # the time budget (tune.timeout_s, --timeout or --budget)
    trials: list[dict[str, Any]] = field(default_factory=list, repr=False)

    @property
    def stopped_for_budget(self) -> bool:
        """Fewer trials than asked, because the time budget ran out (not failures)."""
        return bool(
            self.timeout_s and self.n_trials < self.planned and self.seconds >= self.timeout_s
        )

    def title(self) -> str:
        return f"tune: {self.study}"

    def _stop_rows(self) -> list[tuple[str, str]]:
        if not self.stopped_for_budget or self.timeout_s is None:
            return []
        budget = f"{self.timeout_s / 60:g} min"
        return [("stopped", f"at the time budget ({budget}); {self.planned} trials asked for")]

    def rows(self) -> list[tuple[str, Any]]:
        best = (
            "none complete"
            if self.best_value is None
            else f"{self.best_value:.4f} (trial {self.best_trial})"
        )
        rows: list[tuple[str, Any]] = [
            (
                "trials",
                f"{self.n_trials} ({self.n_complete} complete, {self.n_pruned} pruned, "
                f"{self.n_failed} failed; {self.n_new} run now)",
            ),
            *self._stop_rows(),
            (f"best val {self.metric}", best),
            *((f"  {key}", _fmt(value)) for key, value in self.best_params.items()),
            ("search space", self.space_basis or self.space_source),
            ("backend", self.backend),
            ("time", f"{self.seconds:.1f} s"),
            ("study", f"{self.study} in {self.storage}"),
            ("report", self.report),
            ("MLflow run", self.mlflow_run_id),
            ("browse MLflow", self.browse),
        ]
        if self.applied:
            rows.append(("applied", self.diff or "dlworkflow.yaml already had these values"))
        return rows

    def to_json(self) -> dict[str, Any]:
        """`dlw tune --json`: the study's summary (as the ledger records it), the --apply
        diff and one row per trial of the study."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        trials = out.pop("trials")
        return {**out, "stopped_for_budget": self.stopped_for_budget, "trials": trials}


def tune(
    project: Workspace,
    *,
    trials: int | None = None,
    timeout: float | None = None,
    workers: int | None = None,
    backend: str = "optuna",
    address: str | None = None,
    apply: bool = False,
    progress: bool = True,
    callbacks: Sequence[StudyCallback] = (),
    write_report: Callable[[Workspace, optuna.Study], Any] | None = None,
) -> TuneResult:
    """Run the study of `tune.space` to `trials` trials in total (default tune.trials; a
    resumed study counts its earlier trials) or `timeout` seconds, on `workers` processes
    (optuna) or a Ray cluster (backend "ray", `address`; None: a local Ray). apply: write the
    best parameters into dlworkflow.yaml. callbacks(study, trial): after each trial this
    process runs (optuna backend). write_report(project, study) -> path: the study's page
    (Project.tune passes dlworkflow.report.tune_page's; the report layer sits above this
    one). Trials read the train and validation splits only."""
    if backend not in BACKENDS:
        raise TrainError(
            f"Unknown tuning backend {backend!r}.",
            expected=" or ".join(BACKENDS),
            received=repr(backend),
            fix="pass --backend optuna or --backend ray",
        )
    if address is not None and backend != "ray":
        raise TrainError(
            "--address names a Ray cluster: it needs --backend ray.",
            received=f"--address {address} with --backend {backend}",
            fix="add --backend ray, or drop --address",
        )
    check_privacy_gate(project)
    store.read_split_info(project)  # StepOrderError before `dlw split`
    searched = space_mod.resolve(project)  # tune.space, or the default space when it is empty
    space_mod.check_space(project.config, searched.space)
    settings = study_mod.settings_for(
        project, trials=trials, timeout=timeout, workers=workers, progress=progress, space=searched
    )
    if progress and searched.is_default:
        _say_default(searched)
    with run_lock(project.paths.state / "locks" / "tune.lock", what="dlw tune"):
        return _run(
            project,
            settings,
            searched,
            backend=backend,
            address=address,
            apply=apply,
            callbacks=callbacks,
            write_report=write_report,
        )


def _run(
    project: Workspace,
    settings: StudySettings,
    searched: SearchSpace,
    *,
    backend: str,
    address: str | None,
    apply: bool,
    callbacks: Sequence[StudyCallback],
    write_report: Callable[[Workspace, optuna.Study], Any] | None,
) -> TuneResult:
    started = time.perf_counter()
    inputs = {"split": project.upstream_hash("split") or ""}
    with project.step("tune", inputs=inputs) as run:
        before = _numbers(settings)
        tags = {
            "dlw.step": "tune",
            tracking.LEDGER_TAG: str(run.run_id),
            "dlw.tune.study": settings.name,
            "dlw.tune.backend": backend,
        }
        with tracking.tracked_run(project, run_name=f"tune-{settings.name}", tags=tags) as parent:
            parent.log_params(settings.describe())
            settings = study_mod.replace(
                settings, parent_run_id=parent.run_id, ledger_run_id=run.run_id
            )
            study = _optimize(
                project, settings, backend=backend, address=address, callbacks=callbacks
            )
            _mark_space(study, searched)  # reports/tune.html says which space it searched
            summary = summarise(study, settings)
            summary["n_new"] = len(set(summary.pop("numbers")) - before)
            parent.log_metrics(_parent_metrics(summary, settings.metric))
        if summary["best_value"] is None:
            raise TrainError(
                f"No trial of the study {settings.name} completed "
                f"({summary['n_failed']} failed, {summary['n_pruned']} pruned).",
                received=_first_error(summary["trials"]),
                fix="fix the error above (often a value of tune.space the model cannot use), "
                "then run `dlw tune` again",
            )
        report = str(write_report(project, study)) if write_report else ""
        diff = apply_mod.apply_best(project, summary["best_params"]) if apply else ""
        result = TuneResult(
            study=settings.name,
            storage=settings.storage_url,
            backend=backend,
            metric=settings.metric,
            seconds=time.perf_counter() - started,
            mlflow_run_id=parent.run_id,
            ledger_run_id=run.run_id,
            browse=tracking.browse_hint(project),
            report=report,
            applied=apply,
            diff=diff,
            space_source=searched.source,
            space_basis=searched.describe(),
            space=searched.dump(),
            epochs=settings.epochs,
            planned=settings.trials,
            timeout_s=settings.timeout_s,
            **summary,
        )
        record(run, result)
    return result


def _optimize(
    project: Workspace,
    settings: StudySettings,
    *,
    backend: str,
    address: str | None,
    callbacks: Sequence[StudyCallback],
) -> optuna.Study:
    if backend == "ray":
        from dlworkflow.train.tune import ray_backend

        ray_backend.run_ray(project, settings, address=address)
        return study_mod.load(settings)  # Ray's trials are written into the same study
    return study_mod.optimize(project, settings, callbacks=callbacks)


def _value(trial: optuna.trial.FrozenTrial) -> float:
    """The value of a complete trial (Optuna sets it on every complete one)."""
    assert trial.value is not None
    return float(trial.value)


def summarise(study: optuna.Study, settings: StudySettings) -> dict[str, Any]:
    """Counts, the best complete trial (value, decoded params) and one row a trial."""
    counts = study_mod.counts(study)
    complete = [t for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]
    best = max(complete, key=_value) if complete else None  # maximised metric
    return {
        "best_value": _value(best) if best else None,
        "best_params": space_mod.decode(best.params, settings.space) if best else {},
        "best_trial": best.number if best else None,
        "n_trials": counts["total"],
        "n_complete": counts["complete"],
        "n_pruned": counts["pruned"],
        "n_failed": counts["failed"],
        "trials": [trial_row(t, settings) for t in study.get_trials(deepcopy=False)],
        "numbers": [t.number for t in study.get_trials(deepcopy=False)],
    }


def trial_row(trial: optuna.trial.FrozenTrial, settings: StudySettings) -> dict[str, Any]:
    attrs = trial.user_attrs
    return {
        "number": trial.number,
        "state": trial.state.name.lower(),
        "value": trial.value,
        "params": space_mod.decode(trial.params, settings.space),
        "epochs_run": attrs.get("epochs_run"),
        "duration_s": attrs.get("duration_s"),
        "pid": attrs.get("pid"),
        "mlflow_run_id": attrs.get("mlflow_run_id"),
        "error": attrs.get("error"),
    }


def record(run: StepRun, result: TuneResult) -> None:
    run.outputs = {"hash": f"{result.study}:{result.best_trial}", "storage": result.storage}
    best = "none" if result.best_value is None else f"{result.best_value:.4f}"
    default = " in the default search space" if result.space_source == "default" else ""
    run.summary = {
        "headline": f"best val {result.metric} {best} after {result.n_trials} trials "
        f"({result.n_pruned} pruned){default}",
        "study": result.study,
        "storage": result.storage,
        "backend": result.backend,
        "metric": result.metric,
        "best_value": result.best_value,
        "best_params": result.best_params,
        "best_trial": result.best_trial,
        "n_trials": result.n_trials,
        "n_complete": result.n_complete,
        "n_pruned": result.n_pruned,
        "n_failed": result.n_failed,
        "n_new": result.n_new,
        "stopped_for_budget": result.stopped_for_budget,
        "mlflow_run_id": result.mlflow_run_id,
        "report": result.report,
        "applied": result.applied,
        "seconds": round(result.seconds, 2),
        "space_source": result.space_source,
        "space_basis": result.space_basis,
        "space": result.space,
        "epochs": result.epochs,
    }


def _mark_space(study: optuna.Study, searched: SearchSpace) -> None:
    """The study's user attributes say which space it searched (the page reads them)."""
    study.set_user_attr("space_source", searched.source)
    study.set_user_attr("space_basis", searched.describe())
    study.set_user_attr("space", searched.dump())


def _say_default(searched: SearchSpace) -> None:
    """One line on stderr before the trials: tune.space is empty, the default is searched."""
    from rich.console import Console

    Console(stderr=True, highlight=False, markup=False).print(
        f"tune.space is empty: searching the {searched.describe()} "
        f"(`dlw config show` lists it; {space_mod.DEFAULT_FIX})"
    )


def _numbers(settings: StudySettings) -> set[int]:
    """Trial numbers the study has before this run (none for a new study)."""
    storage = study_mod.open_storage(settings)
    try:
        study_id = storage.get_study_id_from_name(settings.name)
    except KeyError:
        return set()
    return {t.number for t in storage.get_all_trials(study_id, deepcopy=False)}


def _parent_metrics(summary: dict[str, Any], metric: str) -> dict[str, float]:
    out = {
        f"tune.{k}": float(summary[k])
        for k in ("n_trials", "n_complete", "n_pruned", "n_failed", "n_new")
    }
    if summary["best_value"] is not None:
        out[f"best_val_{metric}"] = summary["best_value"]
    return out


def _first_error(trials: list[dict[str, Any]]) -> str:
    errors = [t["error"] for t in trials if t.get("error")]
    return errors[0] if errors else "no trial finished"


def _fmt(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)
