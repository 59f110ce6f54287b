"""MLflow tracking of a training run: params, per-epoch metrics, artifacts, the ledger link.

The store, its experiment and a run's writer live one layer down (dlworkflow/store/tracking.py,
shared with evaluate and test); this module adds the trainer callback that logs each epoch.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from dlworkflow.store.tracking import (
    LEDGER_TAG,
    RunLog,
    browse_hint,
    create_store,
    ensure_experiment,
    experiment_name,
    import_mlflow,
    open_client,
    open_run,
    quiet,
    tracking_uri,
)
from dlworkflow.train.callbacks import Callback

if TYPE_CHECKING:
    from dlworkflow.train.callbacks import FitState
    from dlworkflow.workspace import Workspace

__all__ = [
    "LEDGER_TAG",
    "Tracker",
    "browse_hint",
    "create_store",
    "ensure_experiment",
    "experiment_name",
    "import_mlflow",
    "open_client",
    "tracked_run",
    "tracking_uri",
]


class Tracker(RunLog, Callback):
    """One MLflow run; as a trainer callback it logs each epoch's row (on_epoch_end)."""

    def on_epoch_end(self, state: FitState) -> None:
        self.log_epoch(state.epoch, state.row)

    def log_epoch(self, epoch: int, row: dict[str, float]) -> None:
        """One history row as metrics at step `epoch` (seconds as epoch_seconds)."""
        values = {k: v for k, v in row.items() if k not in ("epoch", "seconds")}
        values["epoch_seconds"] = row["seconds"]
        self.log_metrics(values, step=epoch)

    def log_history(self, history: list[dict[str, float]]) -> None:
        """Log the epochs of `history` this run does not have yet (a resumed run)."""
        with quiet():
            logged = {m.step for m in self.client.get_metric_history(self.run_id, "train_loss")}
        for row in history:
            if int(row["epoch"]) not in logged:
                self.log_epoch(int(row["epoch"]), row)


@contextmanager
def tracked_run(
    project: Workspace,
    *,
    run_name: str,
    tags: dict[str, str],
    resume_run_id: str | None = None,
    stopped: tuple[type[BaseException], ...] = (),
) -> Iterator[Tracker]:
    """Start an MLflow run in the project's experiment; FINISHED on success, FAILED if not.

    resume_run_id: continue that run (a resumed training) when the store still has it;
    otherwise a new run is started, tagged with the id it continues. stopped: exceptions that
    end the run on purpose (a pruned tuning trial): KILLED instead of FAILED.
    """
    with open_run(
        project,
        Tracker,
        client=open_client(project),  # this module's name: the test suite's store template
        run_name=run_name,
        tags=tags,
        resume_run_id=resume_run_id,
        stopped=stopped,
    ) as tracker:
        yield tracker
