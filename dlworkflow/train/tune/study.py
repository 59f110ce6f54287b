"""The Optuna study of `dlw tune`: where it lives, how it samples and prunes, who runs trials.

The study is stored in SQLite inside the project (`.dlw/tune/study.db`), so a killed study
resumes where it stopped: its name is the project's name plus a hash of everything that makes
trials comparable (the space, the sampler and pruner settings, the epochs, the seed, the metric,
the split and the rest of the train step's config), so a changed space starts a new study and
an unchanged one continues. `tune.trials` counts the study's trials in total (complete and
pruned, earlier runs included). `--workers N` runs N processes (spawn) on the shared storage:
this process is worker 0; each worker claims a trial slot under a file lock, so the study never
runs more than `trials` trials.
"""

from __future__ import annotations

import dataclasses
import math
import multiprocessing
import os
import socket
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from dlworkflow.errors import TrainError
from dlworkflow.fileio import sha256_json
from dlworkflow.train.tune import space as space_mod

if TYPE_CHECKING:
    import optuna

    from dlworkflow.config import ParamSpec
    from dlworkflow.train.tune.space import SearchSpace
    from dlworkflow.workspace import Workspace

StudyCallback = Callable[["optuna.Study", "optuna.trial.FrozenTrial"], None]
MAX_CONSECUTIVE_FAILURES = 3  # a worker stops after this many failed trials in a row
_WORKER_SEED_STRIDE = 1000


@dataclass(frozen=True)
class StudySettings:
    """Everything a worker (this process, a spawned one, or a Ray trial) needs: picklable."""

    root: str
    name: str
    storage_url: str
    space: dict[str, ParamSpec]
    metric: str
    trials: int
    timeout_s: float | None
    epochs: int
    sampler: str
    pruner: str
    startup_trials: int
    warmup_epochs: int
    workers: int
    seed: int
    threads: int | None = None  # train.threads of each trial (CPU cores / workers)
    # the primary metric is monitored higher-is-better
    direction: Literal["minimize", "maximize"] = "maximize"
    parent_run_id: str | None = None  # the MLflow run of this `dlw tune`
    ledger_run_id: int | None = None
    progress: bool = False
    space_source: str = "configured"  # or "default": tune.space was empty (space.resolve)
    weight_average: bool = False  # trials keep train.ema_decay (else: the live weights)

    def describe(self) -> dict[str, Any]:
        """Flat MLflow params of the study."""
        out: dict[str, Any] = {
            f"tune.{k}": getattr(self, k)
            for k in (
                "name",
                "metric",
                "trials",
                "timeout_s",
                "epochs",
                "sampler",
                "pruner",
                "startup_trials",
                "warmup_epochs",
                "workers",
                "seed",
                "direction",
                "space_source",
                "weight_average",
            )
        }
        out.update(
            {f"tune.space.{k}": v.model_dump(exclude_none=True) for k, v in self.space.items()}
        )
        return out


def settings_for(
    project: Workspace,
    *,
    trials: int | None = None,
    timeout: float | None = None,
    workers: int | None = None,
    progress: bool = False,
    space: SearchSpace | None = None,
) -> StudySettings:
    """The study of the project's current config; arguments override tune.trials,
    tune.timeout_s and tune.workers (they never change which study it is). space: what is
    searched (default: space.resolve, tune.space or the default space when it is empty)."""
    cfg = project.config
    tune = cfg.tune
    searched = space or space_mod.resolve(project)
    for label, value in (("--trials", trials), ("--workers", workers), ("--timeout", timeout)):
        if value is not None and value <= 0:
            raise TrainError(
                f"{label} must be positive.",
                received=str(value),
                fix=f"pass {label} with a value above 0",
            )
    n_workers = workers or tune.workers
    threads = cfg.train.threads or os.cpu_count() or 1
    seed = tune.seed if tune.seed is not None else cfg.seed
    epochs = tune.epochs or cfg.train.epochs
    metric = cfg.problem.primary_metric or "accuracy"
    identity = {
        "space": {k: v.model_dump() for k, v in sorted(searched.space.items())},
        "tune": tune.model_dump(
            include={"sampler", "pruner", "startup_trials", "warmup_epochs", "weight_average"}
        ),
        "epochs": epochs,
        "seed": seed,
        "metric": metric,
        "split": project.upstream_hash("split"),
        "base": _base_config(project, searched.space),
    }
    name = f"{_slug(cfg.name)}-{sha256_json(identity)[:12]}"
    return StudySettings(
        root=str(project.root),
        name=name,
        storage_url=storage_url(project),
        space=dict(searched.space),
        metric=metric,
        trials=trials or tune.trials,
        timeout_s=timeout if timeout is not None else tune.timeout_s,
        epochs=epochs,
        sampler=tune.sampler,
        pruner=tune.pruner,
        startup_trials=tune.startup_trials,
        warmup_epochs=tune.warmup_epochs,
        workers=n_workers,
        seed=seed,
        threads=max(1, threads // n_workers) if n_workers > 1 else cfg.train.threads,
        progress=progress,
        space_source=searched.source,
        weight_average=tune.weight_average,
    )


def storage_url(project: Workspace) -> str:
    return f"sqlite:///{study_db(project)}"


def study_db(project: Workspace) -> Path:
    return project.paths.state / "tune" / "study.db"


def open_storage(settings: StudySettings) -> optuna.storages.RDBStorage:
    import optuna

    path = Path(settings.storage_url.removeprefix("sqlite:///"))
    path.parent.mkdir(parents=True, exist_ok=True)
    return optuna.storages.RDBStorage(  # workers wait for each other's writes
        settings.storage_url, engine_kwargs={"connect_args": {"timeout": 60}}
    )


def load(settings: StudySettings, *, worker: int = 0) -> optuna.Study:
    """Create the study, or open it as it was left (load_if_exists)."""
    import optuna

    _quiet_optuna()
    storage = open_storage(settings)
    existing = _n_existing(storage, settings.name)
    return optuna.create_study(
        storage=storage,
        study_name=settings.name,
        direction=settings.direction,
        sampler=make_sampler(settings, worker=worker, offset=existing),
        pruner=make_pruner(settings),
        load_if_exists=True,
    )


def make_sampler(
    settings: StudySettings, *, worker: int = 0, offset: int = 0
) -> optuna.samplers.BaseSampler:
    """TPE (multivariate, seeded; `startup_trials` random trials first) or random search.
    The seed moves with the worker and the trials already run, so neither parallel workers
    nor a resumed study repeat earlier draws."""
    import optuna

    seed = settings.seed + _WORKER_SEED_STRIDE * worker + offset
    if settings.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(
        seed=seed,
        multivariate=True,
        n_startup_trials=settings.startup_trials,
        constant_liar=settings.workers > 1,
    )


def make_pruner(settings: StudySettings) -> optuna.pruners.BasePruner:
    """Steps are 1-based epochs; the first `warmup_epochs` epochs are never pruned."""
    import optuna

    if settings.pruner == "median":
        return optuna.pruners.MedianPruner(
            n_startup_trials=settings.startup_trials, n_warmup_steps=settings.warmup_epochs + 1
        )
    if settings.pruner == "asha":
        return optuna.pruners.SuccessiveHalvingPruner(
            min_resource=max(1, settings.warmup_epochs), reduction_factor=3
        )
    return optuna.pruners.NopPruner()


def optimize(
    project: Workspace, settings: StudySettings, *, callbacks: Sequence[StudyCallback] = ()
) -> optuna.Study:
    """Run the study to `settings.trials` trials in total (or the timeout). One worker runs
    here; `workers` > 1 start that many processes (spawn) on the shared storage, all at once so
    they share the trials, and this process only waits. `callbacks(study, trial)` run after
    each trial of a worker in this process (workers = 1)."""
    if callbacks and settings.workers > 1:
        raise TrainError(
            "Study callbacks run in this process: they need workers = 1.",
            received=f"workers {settings.workers}",
            fix="pass workers=1",
        )
    study = load(settings)
    recover_interrupted(study)
    if settings.workers == 1:
        run_worker(project, settings, worker=0, callbacks=callbacks)
        return load(settings)
    context = multiprocessing.get_context("spawn")
    processes = [
        context.Process(
            target=_worker_main,
            args=(project, settings, w),
            daemon=True,
            name=f"dlw-tune-worker-{w}",
        )
        for w in range(settings.workers)
    ]
    for process in processes:
        process.start()
    try:
        for process in processes:
            process.join()
    except BaseException:  # Ctrl-C: the workers get it too; stop the ones still running
        for process in processes:
            process.terminate()
            process.join()
        raise
    failed = [p for p in processes if p.exitcode != 0]
    if failed:
        raise TrainError(
            f"{len(failed)} of the {settings.workers} tuning workers failed.",
            received=", ".join(f"{p.name}: exit code {p.exitcode}" for p in failed),
            fix="see the worker's error above; the trials that finished are kept in the "
            "study and `dlw tune` continues it",
        )
    return load(settings)


def _worker_main(project: Workspace, settings: StudySettings, worker: int) -> None:
    """Entry point of a spawned worker process (the project arrives pickled: its root, and a
    config it re-reads from dlworkflow.yaml when the file changed)."""
    run_worker(project, settings, worker=worker)


def run_worker(
    project: Workspace,
    settings: StudySettings,
    *,
    worker: int,
    callbacks: Sequence[StudyCallback] = (),
) -> None:
    """Claim and run trials until the study has `trials`, the timeout passes, or
    MAX_CONSECUTIVE_FAILURES trials in a row failed."""
    from dlworkflow.train.tune.trial import run_one

    study = load(settings, worker=worker)
    deadline = time.monotonic() + settings.timeout_s if settings.timeout_s else math.inf
    failures = 0
    while failures < MAX_CONSECUTIVE_FAILURES and time.monotonic() < deadline:
        with _slot_lock(settings):
            if taken(study) >= settings.trials:
                return
            trial = study.ask()
            trial.set_user_attr("pid", os.getpid())
            trial.set_user_attr("host", socket.gethostname())
            trial.set_user_attr("worker", worker)
        frozen = run_one(project, settings, study, trial)
        failures = failures + 1 if frozen.state.name == "FAIL" else 0
        for callback in callbacks:
            callback(study, frozen)


def recover_interrupted(study: optuna.Study) -> list[int]:
    """Trials left RUNNING by a killed `dlw tune` become FAIL (the caller holds the tune
    lock, so no live process runs them); their numbers."""
    from optuna.trial import TrialState

    storage = study._storage  # noqa: SLF001 - optuna has no public way to end a stale trial
    stale = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    for trial in stale:
        trial_id = trial._trial_id  # noqa: SLF001
        storage.set_trial_user_attr(
            trial_id, "error", "interrupted: the process running it ended before the trial finished"
        )
        storage.set_trial_state_values(trial_id, state=TrialState.FAIL)
    return [t.number for t in stale]


def counts(study: optuna.Study) -> dict[str, int]:
    """{"complete", "pruned", "failed", "running", "total"} trials of the study."""
    states = [t.state.name.lower() for t in study.get_trials(deepcopy=False)]
    out = {
        key: states.count(state)
        for key, state in (
            ("complete", "complete"),
            ("pruned", "pruned"),
            ("failed", "fail"),
            ("running", "running"),
        )
    }
    out["total"] = len(states)
    return out


def taken(study: optuna.Study) -> int:
    """Trials that count towards `trials`: complete, pruned and running."""
    c = counts(study)
    return c["complete"] + c["pruned"] + c["running"]


def _n_existing(storage: Any, name: str) -> int:
    try:
        study_id = storage.get_study_id_from_name(name)
    except KeyError:
        return 0
    return len(storage.get_all_trials(study_id, deepcopy=False))


@contextmanager
def _slot_lock(settings: StudySettings) -> Iterator[None]:
    """Serialises "count the trials, then ask for one" between this machine's workers."""
    import fcntl

    path = Path(settings.storage_url.removeprefix("sqlite:///")).with_suffix(".slots.lock")
    with open(path, "a+", encoding="utf-8") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _base_config(project: Workspace, space: dict[str, ParamSpec]) -> dict[str, Any]:
    """The train step's config without the searched keys (and the machine's threads and
    device): what every trial shares."""
    dumped = project.config.model_dump(mode="json")
    base = {key: dumped[key] for key in ("model", "augment", "train")}
    for dotted in [*space, *space_mod.RESERVED]:
        node = base
        *parents, last = dotted.split(".")
        for part in parents:
            node = node.get(part, {}) if isinstance(node, dict) else {}
        if isinstance(node, dict):
            node.pop(last, None)
    return base


def _quiet_optuna() -> None:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)


def _slug(text: str) -> str:
    import re

    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-") or "project"


def replace(settings: StudySettings, **changes: Any) -> StudySettings:
    return dataclasses.replace(settings, **changes)
