"""`dlw tune --backend ray [--address ADDR]`: the same Optuna study, run through Ray Tune.

The driver (this process) keeps the study: Ray Tune's `OptunaSearch` asks the project's own
Optuna study (the SQLite storage in .dlw/tune/study.db, the same name, sampler and
distributions as the local backend), so `dlw tune --apply`, a resumed study and
reports/tune.html read Ray trials exactly as local ones. Only the driver writes the study.

Each trial runs `trial.run_trial` inside a Ray worker, one CPU per trial, reporting the
validation metric after every epoch through `ray.tune.report`. Early stopping is Ray's:
`ASHAScheduler` (asynchronous successive halving) for tune.pruner `asha` AND `median` (Ray has
no median pruner that keeps Optuna's semantics; ASHA is the scheduler Ray recommends), grace
period tune.warmup_epochs, reduction factor 3; `none`: FIFO, nothing stopped. A trial that ASHA
stops is told to the study as PRUNED (its value: the last reported one, as Optuna does),
one that ran all its epochs (or stopped early by itself) as COMPLETE with the best validation
value, a crashed one as FAIL.

Workers import dlworkflow: with a local Ray (`address=None`: `ray.init(num_cpus=workers)`)
from the folder this process imported it from (PYTHONPATH), so a source checkout works
without installing; on a cluster the package is shipped as a Ray `py_modules` entry, and the
project folder must be visible at the same path on every node (a shared file system): the
trials read its train/val split and write their MLflow child runs there.

Ray is optional (`pip install 'dlworkflow[ray]'`); `require_ray` says so when it is missing.
"""

from __future__ import annotations

import logging
import math
import os
import socket
import time
import traceback
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from dlworkflow.errors import DlwError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    import optuna

    from dlworkflow.config import ParamSpec
    from dlworkflow.train.tune.study import StudySettings
    from dlworkflow.workspace import Workspace

VALUE = "value"  # the validation metric of the epoch just trained (ASHA's metric)
BEST = "best"  # the best validation value so far (the trial's Optuna value)
EPOCH = "epoch"  # 1-based epoch (ASHA's time attribute)
FINISHED = "finished"  # 1 once run_trial returned: the trial was not stopped by Ray
ATTR = "attr_"  # a result key ATTR + k: the trial's user attribute k (run_trial's notes)
TRIAL_KEY = "__dlw_trial"  # the Optuna trial number, passed to the worker in its config
REDUCTION_FACTOR = 3


class RayNotInstalledError(DlwError):
    """`--backend ray` without Ray installed."""


def require_ray() -> Any:
    """`import ray` (with Ray Tune), or a RayNotInstalledError saying how to install it."""
    try:
        import ray
        from ray import tune  # noqa: F401
        from ray.tune.search.optuna import OptunaSearch  # noqa: F401
    except ImportError as exc:
        raise RayNotInstalledError(
            "dlw tune --backend ray needs Ray Tune, which is not installed.",
            expected="the optional dependency ray[tune] (Ray 2.x)",
            received=f"ImportError: {exc}",
            fix="pip install 'dlworkflow[ray]' (or pip install 'ray[tune]'), or run the "
            "study with the default backend: dlw tune --backend optuna",
        ) from exc
    return ray


def run_ray(project: Workspace, settings: StudySettings, *, address: str | None = None) -> int:
    """Run the study of `settings` to `settings.trials` trials in total (or its timeout) on
    Ray, at most `settings.workers` trials at once; every result goes into the study itself
    (study.load(settings) reads them). Returns the number of trials Ray ran."""
    from dlworkflow.train.tune import study as study_mod
    from dlworkflow.train.tune.trial import trial_overrides

    require_ray()
    from ray import tune

    study = study_mod.load(settings)
    study_mod.recover_interrupted(study)
    n_trials = settings.trials - study_mod.taken(study)  # the same count as the local backend
    if n_trials <= 0:
        return 0
    mode = "min" if settings.direction == "minimize" else "max"
    searcher = _searcher_class()(
        study,
        space=settings.space,
        mode=mode,
        epochs=settings.epochs,
        project=project,
        show=_shower(settings),
    )
    trial_kwargs = {
        "parent_run_id": settings.parent_run_id,
        "study_name": settings.name,
        "ledger_run_id": settings.ledger_run_id,
        "overrides": trial_overrides(settings) or None,
    }
    trainable = tune.with_resources(
        tune.with_parameters(
            _ray_trial,
            project=project,
            epochs=settings.epochs,
            mode=mode,
            trial_kwargs=trial_kwargs,
        ),
        {"cpu": 1},
    )
    with _ray_session(address, settings.workers):
        tuner = tune.Tuner(
            trainable,
            tune_config=tune.TuneConfig(
                search_alg=searcher,
                scheduler=_scheduler(
                    settings.pruner, mode, settings.epochs, settings.warmup_epochs
                ),
                num_samples=n_trials,
                time_budget_s=settings.timeout_s,
                max_concurrent_trials=settings.workers,
                reuse_actors=True,
            ),
            run_config=_run_config(project, settings.name),
        )
        try:
            grid = tuner.fit()
        finally:
            searcher.fail_unfinished()
    return len(grid)


def _run_config(project: Workspace, name: str) -> Any:
    from ray import tune

    folder = Path(project.root).resolve() / ".dlw" / "tune" / "ray"
    folder.mkdir(parents=True, exist_ok=True)
    return tune.RunConfig(
        name=f"{name}-{time.strftime('%Y%m%d-%H%M%S')}",
        storage_path=str(folder),
        verbose=0,
        failure_config=tune.FailureConfig(max_failures=0),
    )


def _scheduler(pruner: str, mode: str, epochs: int, warmup_epochs: int) -> Any:
    """ASHA for `asha` and `median`; FIFO (nothing stopped) for `none`."""
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler

    if pruner == "none" or epochs <= 1:
        return FIFOScheduler()
    # max_t one past the last epoch: ASHA never stops a trial at its last epoch, so every
    # trial that trained all its epochs finishes by itself (and closes its MLflow run).
    grace = min(max(1, warmup_epochs), epochs)
    return ASHAScheduler(
        metric=VALUE,
        mode=mode,
        time_attr=EPOCH,
        max_t=epochs + 1,
        grace_period=grace,
        reduction_factor=REDUCTION_FACTOR,
    )


@contextmanager
def _ray_session(address: str | None, workers: int) -> Iterator[None]:
    """Connect to Ray (a running session as it is; `address`; else a local Ray with
    `workers` CPUs) with workers that import this dlworkflow; shut down what was started."""
    import ray

    if ray.is_initialized():
        yield
        return
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")  # no tensorboard/csv
    # ...so the result grid has no result.json to read back: the study holds the results
    logging.getLogger("ray.tune.analysis.experiment_analysis").setLevel(logging.ERROR)
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    kwargs: dict[str, Any] = {
        "include_dashboard": False,
        "log_to_driver": False,
        "runtime_env": runtime_env(remote=address is not None),
    }
    if address is None:
        kwargs["num_cpus"] = workers
    else:
        kwargs["address"] = address
    try:
        ray.init(**kwargs)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise DlwError(
            f"Cannot start or reach Ray{f' at {address}' if address else ''}.",
            expected="a Ray cluster head (ray://host:10001 or host:6379) or none for a local Ray",
            received=str(exc).splitlines()[0][:300],
            fix="check --address (`ray status` on the head node shows it), or "
            "leave it out for a local Ray",
        ) from exc
    try:
        yield
    finally:
        ray.shutdown()


def runtime_env(*, remote: bool) -> dict[str, Any]:
    """Ray workers import the dlworkflow this process imported: locally through PYTHONPATH
    (its parent folder first), on a cluster as a shipped py_modules package."""
    package = Path(__file__).resolve().parents[2]  # .../dlworkflow (train/tune/this file)
    if remote:
        return {"py_modules": [str(package)], "excludes": ["__pycache__", "*.pyc"]}
    paths = [str(package.parent)] + [
        p
        for p in os.environ.get("PYTHONPATH", "").split(os.pathsep)
        if p and p != str(package.parent)
    ]
    return {"env_vars": {"PYTHONPATH": os.pathsep.join(paths)}}


def _ray_trial(
    config: dict[str, Any],
    *,
    project: Workspace,
    epochs: int,
    mode: str,
    trial_kwargs: dict[str, Any],
) -> None:
    """One trial in a Ray worker: run_trial on `project` (pickled by Ray with the driver's
    config, so the worker needs only the same folder path), reporting each epoch
    (with the trial's notes, which the driver keeps as the Optuna trial's user attributes).
    A stop by ASHA arrives as SystemExit out of tune.report: the MLflow run ends KILLED."""
    from ray import tune

    from dlworkflow.train.tune.trial import run_trial

    started = time.perf_counter()
    pick = min if mode == "min" else max
    seen: list[float] = []
    notes: dict[str, Any] = {"pid": os.getpid(), "host": socket.gethostname()}

    def send(epoch: int, value: float, best: float | None, finished: int) -> None:
        notes["duration_s"] = round(time.perf_counter() - started, 3)
        tune.report(
            {
                VALUE: value,
                BEST: best,
                EPOCH: epoch,
                FINISHED: finished,
                **{ATTR + k: v for k, v in notes.items()},
            }
        )

    def report(epoch: int, value: float) -> None:
        seen.append(float(value))
        if len(seen) < epochs:  # the last epoch goes with FINISHED below: never cut mid-close
            send(len(seen), seen[-1], pick(seen), 0)

    params = {k: v for k, v in config.items() if k != TRIAL_KEY}
    try:
        final = float(
            run_trial(
                project,
                params,
                epochs=epochs,
                report=report,
                trial_number=config.get(TRIAL_KEY),
                note=notes.__setitem__,
                stopped=(SystemExit,),
                **trial_kwargs,
            )
        )
    except Exception as exc:  # recorded as a FAIL trial with its error, like the local backend
        notes["error"] = f"{type(exc).__name__}: {exc}"[:2000]
        notes["traceback"] = traceback.format_exc()[-4000:]
        send(max(len(seen), 1), seen[-1] if seen else math.nan, None, 1)
        return
    if not math.isfinite(final):
        notes["error"] = f"non-finite validation value: {final}"
    send(max(len(seen), 1), seen[-1] if seen else final, final if math.isfinite(final) else None, 1)


def _searcher_class() -> type:
    """OptunaSearch over the project's own study (defined lazily: Ray is optional)."""
    from optuna.trial import TrialState
    from ray.tune.search.optuna import OptunaSearch

    from dlworkflow.train.tune.space import decode, distributions

    class StudySearch(OptunaSearch):
        """Asks and tells `study` (its storage, sampler and name) instead of a new one;
        params decoded to config values; PRUNED for trials that Ray stopped."""

        def __init__(
            self,
            study: optuna.Study,
            *,
            space: dict[str, ParamSpec],
            mode: str,
            epochs: int,
            project: Workspace | None,
            show: Callable[[optuna.trial.FrozenTrial], None] | None = None,
        ) -> None:
            self._given_study, self._tune_space, self._epochs = study, space, epochs
            self._show = show or (lambda frozen: None)
            self._project = project
            self._reported: dict[str, set[int]] = {}  # trial id -> epochs reported
            super().__init__(space=distributions(space), metric=VALUE, mode=mode)

        def _setup_study(self, mode: Any) -> None:
            self._ot_study = self._given_study  # type: ignore[assignment]  # ray: None

        @property
        def _study(self) -> optuna.Study:
            """The study _setup_study gave Ray (ray's OptunaSearch types its attribute None)."""
            return cast("optuna.Study", self._ot_study)

        def save(self, checkpoint_path: str) -> None:
            """Nothing: the SQLite study is the state a resumed `dlw tune` continues from."""

        def suggest(self, trial_id: str) -> dict[str, Any] | None:
            params = super().suggest(trial_id)
            if params is None:
                return None
            ot_trial = self._ot_trials[trial_id]
            ot_trial.set_user_attr("backend", "ray")
            return {**decode(params, self._tune_space), TRIAL_KEY: ot_trial.number}

        def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
            if trial_id in self._completed_trials or trial_id not in self._ot_trials:
                return
            epoch, value = result.get(EPOCH), result.get(VALUE)
            ot_trial = self._ot_trials[trial_id]
            done = self._reported.setdefault(trial_id, set())
            if epoch and value is not None and math.isfinite(value) and epoch not in done:
                done.add(epoch)
                ot_trial.report(float(value), int(epoch))

        def on_trial_complete(
            self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False
        ) -> None:
            if trial_id in self._completed_trials or trial_id not in self._ot_trials:
                return
            ot_trial = self._ot_trials[trial_id]
            result = result or {}
            self.on_trial_result(trial_id, result)  # Ray skips it for the result it stops on
            self._completed_trials.add(trial_id)
            attrs = {k[len(ATTR) :]: v for k, v in result.items() if k.startswith(ATTR)}
            for key, value in attrs.items():
                ot_trial.set_user_attr(key, value)
            if result.get(EPOCH):
                ot_trial.set_user_attr("epochs_run", int(result[EPOCH]))
            finished = result.get(FINISHED) == 1 or int(result.get(EPOCH) or 0) >= self._epochs
            if error or not result or "error" in attrs or (finished and result.get(BEST) is None):
                if error and "error" not in attrs:
                    ot_trial.set_user_attr("error", "the Ray trial crashed (see Ray's log)")
                frozen = self._study.tell(ot_trial, state=TrialState.FAIL)
            elif finished:
                frozen = self._study.tell(ot_trial, float(result[BEST]))
            else:
                frozen = self._study.tell(ot_trial, state=TrialState.PRUNED)
                _end_mlflow_run(self._project, attrs.get("mlflow_run_id"))
            self._show(frozen)

        def fail_unfinished(self) -> None:
            """Trials asked but never told (Ctrl-C, a lost worker): FAIL, not RUNNING."""
            for trial_id in list(self._ot_trials):
                if trial_id not in self._completed_trials:
                    self._completed_trials.add(trial_id)
                    self._ot_trials[trial_id].set_user_attr(
                        "error", "interrupted: the Ray trial did not finish"
                    )
                    self._study.tell(self._ot_trials[trial_id], state=TrialState.FAIL)

    return StudySearch


def _shower(settings: StudySettings) -> Callable[[optuna.trial.FrozenTrial], None] | None:
    """One line a finished trial, as the local backend prints (Ray's own tables stay off)."""
    if not settings.progress:
        return None
    from dlworkflow.train.tune.trial import show_trial

    return lambda frozen: show_trial(frozen, settings)


def _end_mlflow_run(project: Workspace | None, run_id: str | None) -> None:
    """A stopped trial's MLflow child run KILLED, should its worker not have closed it."""
    if not run_id or project is None:
        return
    from dlworkflow.train import tracking

    try:
        client = tracking.open_client(project)
        if client.get_run(run_id).info.status == "RUNNING":
            client.set_terminated(run_id, status="KILLED")
    except Exception:  # noqa: BLE001 - a status update never fails the study
        pass
