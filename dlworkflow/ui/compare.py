"""The run comparison's data: two to eight train or tune runs of the project's MLflow
experiment side by side, read from the store (tracking.open_client) and never written.

    view = comparison(project, ["<run id>", "<run id>"])   # CompareError: why not (and status)

The config diff is the runs' MLflow params: those that differ (a param a run lacks counts as
differing), then those that agree. The metrics are the runs' validation metrics as last logged
(best_val_* the best epoch's, val_* the last epoch's, best_epoch). The curves are the metric
histories (train_loss, val_loss and val_<metric>, the metric each run trained on: its param
train.metric), overlaid with one colour per run (svg.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dlworkflow.train import tracking
from dlworkflow.ui.svg import Chart, Series, colour, line_chart

if TYPE_CHECKING:
    from dlworkflow.project import Project

MIN_RUNS, MAX_RUNS = 2, 8
COMPARED_STEPS = ("train", "tune")
STEP_TAG = "dlw.step"
RUN_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
LOSSES = (("train_loss", "training loss"), ("val_loss", "validation loss"))
CI_SUFFIXES = ("_ci_low", "_ci_high")


class CompareError(Exception):
    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass
class ComparedRun:
    run_id: str
    name: str
    step: str
    status: str
    colour: str
    params: dict[str, str]
    metrics: dict[str, float]
    metric: str  # the validation metric it trained on (param train.metric)

    @property
    def label(self) -> str:
        return f"{self.name or 'run'} ({self.run_id[:8]})"


@dataclass
class Comparison:
    runs: list[ComparedRun]
    differing: list[tuple[str, list[str]]] = field(default_factory=list)
    agreeing: list[tuple[str, str]] = field(default_factory=list)
    metric_names: list[str] = field(default_factory=list)
    charts: list[Chart] = field(default_factory=list)


def unique_ids(run_ids: list[str]) -> list[str]:
    """The asked ids in order, each once; CompareError for too few, too many or a malformed
    one."""
    ids = list(dict.fromkeys(r.strip() for r in run_ids if r.strip()))
    if len(ids) < MIN_RUNS:
        raise CompareError(
            f"Pick at least {MIN_RUNS} runs to compare (tick them on the runs page): "
            f"{len(ids)} given."
        )
    if len(ids) > MAX_RUNS:
        raise CompareError(f"At most {MAX_RUNS} runs can be compared at once: {len(ids)} given.")
    bad = [r for r in ids if not RUN_ID.match(r)]
    if bad:
        raise CompareError(f"No run {bad[0][:80]!r} in this project's MLflow store.", status=404)
    return ids


def comparison(project: Project, run_ids: list[str]) -> Comparison:
    """The runs side by side; CompareError says why not (400, 404; 503: the store could not
    be read, e.g. a locked or corrupt file)."""
    ids = unique_ids(run_ids)
    try:
        return _comparison(project, ids)
    except CompareError:
        raise
    except Exception as exc:  # mlflow raises many unrelated types
        first = str(exc).splitlines()[0] if str(exc) else ""
        raise CompareError(
            f"The MLflow store could not be read ({type(exc).__name__}: {first[:200]}).",
            status=503,
        ) from exc


def _comparison(project: Project, ids: list[str]) -> Comparison:
    if project.config.tracking.uri is None and not project.paths.mlflow_db.is_file():
        raise CompareError("No MLflow store yet: `dlw train` creates it.", status=404)
    client = tracking.open_client(project)
    experiment = client.get_experiment_by_name(tracking.experiment_name(project))
    if experiment is None:
        raise CompareError("The MLflow store has no experiment of this project yet.", status=404)
    runs = [_run(client, run_id, experiment.experiment_id, k) for k, run_id in enumerate(ids)]
    view = Comparison(runs=runs)
    keys = sorted({k for r in runs for k in r.params})
    for key in keys:
        values = [r.params.get(key, "") for r in runs]
        if len(set(values)) > 1 or any(key not in r.params for r in runs):
            view.differing.append((key, values))
        else:
            view.agreeing.append((key, values[0]))
    names = {k for r in runs for k in r.metrics}
    view.metric_names = sorted(names, key=lambda k: (not k.startswith("best_"), k))
    view.charts = _charts(client, runs)
    return view


def _run(client: Any, run_id: str, experiment_id: str, index: int) -> ComparedRun:
    try:
        with tracking.quiet():
            run = client.get_run(run_id)
    except Exception as exc:  # mlflow's RESOURCE_DOES_NOT_EXIST, or a malformed id
        raise CompareError(
            f"No run {run_id!r} in this project's MLflow store.", status=404
        ) from exc
    info, data = run.info, run.data
    if info.experiment_id != experiment_id or info.lifecycle_stage == "deleted":
        raise CompareError(
            f"No run {run_id!r} in this project's MLflow experiment (it is another "
            "experiment's, or deleted).",
            status=404,
        )
    step = data.tags.get(STEP_TAG, "")
    if step not in COMPARED_STEPS:
        raise CompareError(
            f"Run {run_id!r} is a {step or 'non-dlworkflow'} run: the comparison is for train "
            "and tune runs (an evaluate or test run's metrics are on the runs page)."
        )
    metrics = {
        k: float(v)
        for k, v in data.metrics.items()
        if (k.startswith(("val_", "best_val_")) and not k.endswith(CI_SUFFIXES))
        or k == "best_epoch"
    }
    return ComparedRun(
        run_id=info.run_id,
        name=info.run_name or data.tags.get("mlflow.runName", ""),
        step=step,
        status=info.status,
        colour=colour(index),
        params={k: str(v) for k, v in data.params.items()},
        metrics=metrics,
        metric=str(data.params.get("train.metric") or ""),
    )


def _history(client: Any, run_id: str, key: str) -> list[tuple[float, float]]:
    with tracking.quiet():
        found = client.get_metric_history(run_id, key)
    last: dict[int, float] = {}
    for m in sorted(found, key=lambda m: (m.step, m.timestamp)):
        last[int(m.step)] = float(m.value)  # a resumed run re-logs an epoch: the last counts
    return sorted(last.items())


def _charts(client: Any, runs: list[ComparedRun]) -> list[Chart]:
    """The loss curves, then each compared metric's validation curve, one series a run."""
    curves = [(key, title, f"curve-{key.replace('_', '-')}") for key, title in LOSSES]
    for metric in sorted({r.metric for r in runs if r.metric}) or ["accuracy"]:
        slug = re.sub(r"[^a-z0-9]+", "-", metric.lower())
        curves.append((f"val_{metric}", f"validation {metric}", f"curve-val-{slug}"))
    return [
        line_chart(
            [Series(r.label, _history(client, r.run_id, key), colour=r.colour) for r in runs],
            x_label="epoch",
            y_label=key,
            title=title,
            chart_id=chart_id,
        )
        for key, title, chart_id in curves
    ]
