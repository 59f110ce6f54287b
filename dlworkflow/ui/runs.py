"""The runs page's data: every train, tune, evaluate and test run of the project's MLflow
experiment, newest first, with its validation metrics (an evaluate or test run: its split's
primary metric), a page at a time. Train and tune runs can be ticked for the comparison
(compare.py).

The store is opened as training opens it (tracking.open_client on tracking.tracking_uri), and
only read: a project whose own store (mlruns.db) does not exist yet has no runs, and the page
says so instead of creating an empty store. MLflow's search cannot match a tag against a list,
so each step's runs are a search of their own (tags.`dlw.step` = 'train', = 'tune', ...),
each ordered newest first and cut at the end of the asked page, merged here.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dlworkflow.train import tracking
from dlworkflow.train.tune.trial import TRIAL_TAG

if TYPE_CHECKING:
    from dlworkflow.project import Project

PAGE_SIZE = 50
STEPS = ("train", "tune", "evaluate", "test")
COMPARABLE = ("train", "tune", "tune trial")
CI_SUFFIXES = ("_ci_low", "_ci_high")
STEP_TAG = "dlw.step"


@dataclass(frozen=True)
class RunRow:
    run_id: str
    name: str
    step: str  # "train", "tune" (the study's run), "tune trial", "evaluate" or "test"
    status: str
    started: str
    minutes: float | None
    ledger_run: str | None
    metrics: dict[str, float]  # validation metrics: best_val_* and val_* (the last epoch's)
    verdict: str = ""  # a test run's PASS or FAIL

    @property
    def comparable(self) -> bool:
        return self.step in COMPARABLE


@dataclass
class RunsPage:
    page: int
    rows: list[RunRow] = field(default_factory=list)
    has_next: bool = False
    store: str = ""
    experiment: str = ""
    note: str | None = None  # why there are no runs (no store, no experiment)

    @property
    def metric_names(self) -> list[str]:
        """Every metric of the page's rows, best_val_* first."""
        names = {k for row in self.rows for k in row.metrics}
        return sorted(names, key=lambda k: (not k.startswith("best_"), k))


def runs_page(project: Project, page: int = 1, size: int = PAGE_SIZE) -> RunsPage:
    uri = tracking.tracking_uri(project)
    result = RunsPage(page=page, store=uri, experiment=tracking.experiment_name(project))
    if project.config.tracking.uri is None and not project.paths.mlflow_db.is_file():
        result.note = "No MLflow store yet: `dlw train` creates it with the first run."
        return result
    client = tracking.open_client(project)
    experiment = _experiment(client, result.experiment)
    if experiment is None:
        result.note = f"The store has no experiment {result.experiment!r} yet: no run so far."
        return result
    wanted = page * size
    found: list[Any] = []
    more = False
    for step in STEPS:
        runs = client.search_runs(
            [experiment.experiment_id],
            filter_string=f"tags.`{STEP_TAG}` = '{step}'",
            order_by=["attributes.start_time DESC"],
            max_results=wanted + 1,
        )
        more = more or len(runs) > wanted
        found.extend(runs[:wanted])
    found.sort(key=lambda r: (r.info.start_time or 0, r.info.run_id), reverse=True)
    result.has_next = more or len(found) > wanted
    result.rows = [_row(run) for run in found[(page - 1) * size : wanted]]
    return result


def _experiment(client: Any, name: str) -> Any:
    found = client.get_experiment_by_name(name)
    if found is None or found.lifecycle_stage == "deleted":
        return None
    return found


def _row(run: Any) -> RunRow:
    info, data = run.info, run.data
    tags = data.tags
    step = tags.get(STEP_TAG, "")
    if step == "tune" and TRIAL_TAG in tags:
        step = "tune trial"
    started = _when(info.start_time)
    minutes = (
        (info.end_time - info.start_time) / 60000.0 if info.end_time and info.start_time else None
    )
    if step in ("evaluate", "test"):  # the split's primary metric: `<split>_<metric>`
        key = f"{tags.get('dlw.split', step)}_{data.params.get('metric', '')}"
        metrics = {key: float(data.metrics[key])} if key in data.metrics else {}
    else:
        metrics = {
            k: float(v)
            for k, v in data.metrics.items()
            if k.startswith(("val_", "best_val_")) and not k.endswith(CI_SUFFIXES)
        }
    return RunRow(
        run_id=info.run_id,
        name=info.run_name or tags.get("mlflow.runName", ""),
        step=step,
        status=info.status,
        started=started,
        minutes=minutes,
        ledger_run=tags.get(tracking.LEDGER_TAG),
        metrics=metrics,
        verdict=tags.get("dlw.verdict", ""),
    )


def _when(millis: int | None) -> str:
    if not millis:
        return ""
    return dt.datetime.fromtimestamp(millis / 1000, tz=dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
