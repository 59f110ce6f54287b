"""The project's MLflow tracking store: where it is, its experiment, and one run in it.

Shared by the steps that log runs: train and tune (dlworkflow/train/tracking.py adds the
per-epoch callback) and evaluate and test (dlworkflow/evaluate/tracked.py). mlflow is imported
lazily here, and only here, so `import dlworkflow` and `dlw --help` stay fast. All calls go
through an `MlflowClient` bound to an explicit tracking URI: nothing is read from or left in
mlflow's global state.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from dlworkflow.errors import DlwError, TrainError

if TYPE_CHECKING:
    from dlworkflow.workspace import Workspace

LEDGER_TAG = "dlw.ledger_run_id"
STEP_TAG = "dlw.step"
_NOISY_LOGGERS = ("mlflow", "alembic", "sqlalchemy", "urllib3")
_MAX_PARAMS_PER_CALL = 100


def tracking_uri(project: Workspace) -> str:
    return project.config.tracking.uri or project.paths.mlflow_db_uri


def experiment_name(project: Workspace) -> str:
    return project.config.tracking.experiment or project.config.name


def browse_hint(project: Workspace) -> str:
    """How a person looks at the runs."""
    if project.config.tracking.uri is None:
        return f"cd {project.root} && mlflow ui --backend-store-uri sqlite:///mlruns.db"
    return f"open {project.config.tracking.uri} (experiment {experiment_name(project)!r})"


class RunLog:
    """Writes to one MLflow run: params, metrics, tags, artifacts."""

    def __init__(self, client: Any, run_id: str) -> None:
        self.client = client
        self.run_id = run_id

    def log_params(self, params: dict[str, Any]) -> None:
        items = _params(params)
        for i in range(0, len(items), _MAX_PARAMS_PER_CALL):
            self.client.log_batch(self.run_id, params=items[i : i + _MAX_PARAMS_PER_CALL])

    def log_metrics(self, values: dict[str, float], *, step: int = 0) -> None:
        self.client.log_batch(self.run_id, metrics=_metrics(values, step))

    def log_all(self, params: dict[str, Any], metrics: dict[str, float], *, step: int = 0) -> None:
        """Params and metrics in one write (up to 100 params; more go as log_params does)."""
        if len(params) > _MAX_PARAMS_PER_CALL:
            self.log_params(params)
            params = {}
        self.client.log_batch(self.run_id, params=_params(params), metrics=_metrics(metrics, step))

    def log_artifacts(self, paths: list[Path], *, artifact_path: str | None = None) -> None:
        for path in paths:
            self.client.log_artifact(self.run_id, str(path), artifact_path=artifact_path)


def _params(params: dict[str, Any]) -> list[Any]:
    from mlflow.entities import Param

    return [Param(k, str(v)[:6000]) for k, v in sorted(params.items())]


def _metrics(values: dict[str, float], step: int) -> list[Any]:
    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    return [Metric(key, float(value), now, step) for key, value in values.items()]


R = TypeVar("R", bound=RunLog)


@contextmanager
def open_run(
    project: Workspace,
    make: Callable[[Any, str], R],
    *,
    run_name: str,
    tags: dict[str, str],
    resume_run_id: str | None = None,
    stopped: tuple[type[BaseException], ...] = (),
    error: type[DlwError] = TrainError,
    client: Any = None,
) -> Iterator[R]:
    """Start an MLflow run in the project's experiment (make(client, run_id) writes to it);
    FINISHED on success, FAILED if not. client: one the caller opened (default: open_client).

    resume_run_id: continue that run (a resumed training) when the store still has it;
    otherwise a new run is started, tagged with the id it continues. stopped: exceptions that
    end the run on purpose (a pruned tuning trial): KILLED instead of FAILED. error: the
    DlwError raised when the store cannot be reached.
    """
    client = client if client is not None else open_client(project, error=error)
    experiment_id = ensure_experiment(project, client, error=error)
    run = _reopen(client, resume_run_id, tags) if resume_run_id else None
    if run is None:
        extra = {"dlw.resumes_mlflow_run": resume_run_id} if resume_run_id else {}
        run = _call(
            project,
            "start a run",
            lambda: client.create_run(experiment_id, run_name=run_name, tags={**tags, **extra}),
            error=error,
        )
    writer = make(client, run.info.run_id)
    try:
        yield writer
    except BaseException as exc:
        status = "KILLED" if isinstance(exc, stopped) else "FAILED"
        try:
            with quiet():
                client.set_terminated(writer.run_id, status=status)
        except Exception:  # the step's error matters more than a failed status update
            pass
        raise
    client.set_terminated(writer.run_id, status="FINISHED")


def _reopen(client: Any, run_id: str, tags: dict[str, str]) -> Any:
    """The run, set RUNNING again with `tags` (the resuming ledger run's); None when the store
    no longer has it (or it is deleted)."""
    try:
        with quiet():
            run = client.get_run(run_id)
            if run.info.lifecycle_stage == "deleted":
                return None
            client.update_run(run_id, status="RUNNING")
            for key, value in tags.items():
                client.set_tag(run_id, key, value)
            return run
    except Exception:  # not found, or a store that refuses: start a new run instead
        return None


def open_client(project: Workspace, *, error: type[DlwError] = TrainError) -> Any:
    uri = tracking_uri(project)
    with quiet():
        from mlflow import MlflowClient

        return _call(project, "connect", lambda: MlflowClient(tracking_uri=uri), error=error)


def import_mlflow() -> None:
    """Import MLflow's client (seconds: `dlw demo` does it in a thread while steps run)."""
    with quiet():
        import mlflow  # noqa: F401


def create_store(uri: str) -> None:
    """Create (migrate) the tracking store at `uri` and nothing else: `dlw demo` runs this in a
    child process while its first steps run (workflow.py)."""
    with quiet():
        from mlflow import MlflowClient

        MlflowClient(tracking_uri=uri).search_experiments(max_results=1)


def ensure_experiment(
    project: Workspace, client: Any, *, error: type[DlwError] = TrainError
) -> str:
    name = experiment_name(project)
    with quiet():
        found = _call(
            project,
            "open the experiment",
            lambda: client.get_experiment_by_name(name),
            error=error,
        )
    if found is not None:
        if found.lifecycle_stage == "deleted":
            raise error(
                f"The MLflow experiment {name!r} is deleted.",
                fix="restore it (`mlflow experiments restore`) or set tracking.experiment to "
                "a new name in dlworkflow.yaml",
            )
        return str(found.experiment_id)
    local = tracking_uri(project).startswith(("sqlite:", "file:")) or "://" not in tracking_uri(
        project
    )
    location = project.paths.mlartifacts.as_uri() if local else None
    return str(
        _call(
            project,
            "create the experiment",
            lambda: client.create_experiment(name, artifact_location=location),
            error=error,
        )
    )


def _call(project: Workspace, action: str, fn: Any, *, error: type[DlwError] = TrainError) -> Any:
    try:
        with quiet():
            return fn()
    except Exception as exc:  # mlflow raises many unrelated types (MlflowException, OSError, ...)
        raise error(
            f"MLflow tracking failed: could not {action}.",
            expected=f"a reachable MLflow tracking store at {tracking_uri(project)}",
            received=f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}",
            fix="check tracking.uri in dlworkflow.yaml (null: the project's own mlruns.db)",
        ) from exc


@contextmanager
def quiet() -> Iterator[None]:
    """Keep mlflow's, alembic's and sqlalchemy's info logs and warnings off the terminal."""
    for name in _NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", module=r"(mlflow|alembic|sqlalchemy|pydantic)(\.|$)")
        warnings.filterwarnings("ignore", category=FutureWarning)
        yield
