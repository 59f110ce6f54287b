"""How the champion does on newer data than its test set. `online_words` words a labelled
`dlw monitor` run's live metric beside the test estimate. And how stale the champion was
when fresh data arrived: `dlw retrain` measures the champion on
the sealed fresh slice of each addition (`fresh<N>`, samples it never saw) and sets that beside
its test estimate. The decay is how much worse it does there, in the metric's direction
(test - fresh for accuracy or F1, fresh - test for RMSE), with an interval: the two estimates
come from independent samples, so the decay's interval combines their intervals by the
method of variance estimates recovery (MOVER, Newcombe): each end is the decay minus (plus)
the root sum of squares of the two intervals' half-widths on the relevant sides.

    record = decay(project, models/v1, "fresh2", addition=2)   # inside the retrain step
    record["decay"], record["decay_interval"]
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from dlworkflow.runtime.bundle import Bundle
    from dlworkflow.tasks.base import Task
    from dlworkflow.workspace import Workspace

BATCH = 256


def decay(project: Workspace, folder: Path, slice_name: str, *, addition: int) -> dict[str, Any]:
    """The champion exported in `folder` on the sealed fresh slice `slice_name` against its
    test estimate (the sealed reader: only inside the retrain step). JSON-ready."""
    from dlworkflow.runtime.bundle import load_bundle
    from dlworkflow.store.sealed import open_test_set

    bundle = load_bundle(folder)
    meta = bundle.metadata
    task, target = bundle.task, bundle.target
    metric = str(meta.get("metric") or project.config.problem.primary_metric or task.default_metric)
    rows = open_test_set(
        project, purpose=f"staleness of champion v{bundle.version}", slice=slice_name
    )
    size = None
    if task.dense:  # masks are encoded at the model's input size (height, width)
        height, width = bundle.preprocessing["size"]
        size = (int(height), int(width))
    y = task.encode(rows["label"].astype(str).tolist(), bundle.classes, size=size)
    known = task.known(y)
    if task.single_label:
        known = known & (np.asarray(y) >= 0)
    rows, y = rows[known].reset_index(drop=True), np.asarray(y)[known]
    cfg = project.config.evaluate
    value, low, high = _metric(
        task,
        metric,
        y,
        _outputs(bundle, rows),
        target,
        n_resamples=cfg.bootstrap_samples,
        confidence=cfg.confidence,
        seed=int(project.config.seed),
    )
    higher = _higher(task, metric)
    record: dict[str, Any] = {
        "addition": addition,
        "slice": slice_name,
        "champion": bundle.version,
        "metric": metric,
        "higher_is_better": higher,
        "n": int(len(y)),
        "fresh_value": _num(value),
        "fresh_interval": [_num(low), _num(high)],
        "confidence": cfg.confidence,
        "test_value": _num(meta.get("test_value")),
        "test_interval": [_num(v) for v in (meta.get("test_interval") or [None, None])],
        "exported": meta.get("created"),
        "age_days": _age_days(meta.get("created")),
    }
    record.update(_decay(record))
    return record


def _decay(r: dict[str, Any]) -> dict[str, Any]:
    """decay = how much worse on fresh data than the test estimate; its MOVER interval."""
    test, fresh = r["test_value"], r["fresh_value"]
    if test is None or fresh is None:
        return {"decay": None, "decay_interval": [None, None]}
    t_lo, t_hi = (v if v is not None else test for v in r["test_interval"])
    f_lo, f_hi = (v if v is not None else fresh for v in r["fresh_interval"])
    if r["higher_is_better"]:  # decay = test - fresh
        d = test - fresh
        low = d - math.hypot(test - t_lo, f_hi - fresh)
        high = d + math.hypot(t_hi - test, fresh - f_lo)
    else:  # decay = fresh - test
        d = fresh - test
        low = d - math.hypot(fresh - f_lo, t_hi - test)
        high = d + math.hypot(f_hi - fresh, test - t_lo)
    relative = d / abs(test) if test else None
    return {
        "decay": _num(d),
        "decay_interval": [_num(low), _num(high)],
        "relative_decay": _num(relative),
        "significant": bool(low > 0),
    }


def _metric(
    task: Task,
    metric: str,
    y: np.ndarray,
    out: np.ndarray,
    target: dict[str, Any],
    *,
    n_resamples: int,
    confidence: float,
    seed: int,
) -> tuple[float, float, float]:
    """(value, low, high): the metric with its BC bootstrap interval, as `dlw test` gives
    the test estimate's."""
    if len(y) == 0:
        return math.nan, math.nan, math.nan
    if task.single_label:
        from dlworkflow.evaluate.bootstrap import metric_interval
        from dlworkflow.evaluate.scores import scalar_metrics

        value = float(scalar_metrics(y, out, np.ones((1, len(y))), only=metric)[metric][0])
        low, high = metric_interval(
            metric, y, out, n_resamples=n_resamples, confidence=confidence, seed=seed
        )
        return value, low, high
    from dlworkflow.evaluate.bootstrap import bc_interval
    from dlworkflow.evaluate.scores import resample_counts

    value = float(task.metric_scores(metric, y, out, np.ones((1, len(y))), target)[0])
    draws = [
        task.metric_scores(metric, y, out, w, target)
        for w in resample_counts(len(y), n_resamples=n_resamples, seed=seed)
    ]
    low, high = bc_interval(np.concatenate(draws), value, confidence)
    return value, low, high


def _outputs(bundle: Bundle, rows: Any) -> np.ndarray:
    from dlworkflow.runtime.observe import predict_outputs, runtime_inputs

    parts = [  # with no rows, the outputs of an empty batch (a dense task's shape)
        predict_outputs(bundle, runtime_inputs(bundle, rows.iloc[start : start + BATCH]))
        for start in range(0, max(len(rows), 1), BATCH)
    ]
    return np.concatenate(parts) if len(parts) > 1 else parts[0]


def _higher(task: Task, metric: str) -> bool:
    from dlworkflow.errors import DlwError

    try:
        return task.metric(metric).higher_is_better
    except DlwError:  # a classification metric outside the task's list: a score
        return True


def age_days(created: Any, now: datetime | None = None) -> float | None:
    """Days from `created` (an ISO time; naive: UTC) to `now`; None when it is not a time."""
    if not created:
        return None
    try:
        when = datetime.fromisoformat(str(created))
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return (((now or datetime.now(UTC)) - when).total_seconds()) / 86400.0


def _age_days(created: Any) -> float | None:
    days = age_days(created)
    return None if days is None else round(days, 4)


def _num(value: Any) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return round(number, 6) if math.isfinite(number) else None


def trend_words(records: list[dict[str, Any]]) -> list[str]:
    """One line per addition: the champion's decay on it, for the report and the audit."""
    lines = []
    for r in records:
        if r.get("decay") is None:
            continue
        lo, hi = r["decay_interval"]
        flo, fhi = r["fresh_interval"]
        lines.append(
            f"addition {r['addition']} ({r['slice']}, {r['n']:,} sealed fresh samples): "
            f"champion v{r['champion']} {r['metric']} {r['fresh_value']:.4g} "
            f"[{flo:.4g}, {fhi:.4g}] vs test {r['test_value']:.4g}: decay "
            f"{r['decay']:+.4g} [{lo:+.4g}, {hi:+.4g}]"
            + (
                f", {r['age_days']:.1f} days after its export"
                if isinstance(r.get("age_days"), (int, float))
                else ""
            )
        )
    return lines


def online_words(online: dict[str, Any]) -> str:
    """ "accuracy 0.62 [0.55, 0.69] live (n=600) vs test 0.96 [0.95, 0.98]: disagree"."""
    lo, hi = online["live_interval"]
    tlo, thi = online["test_interval"]
    return (
        f"{online['metric']} {online['live']:.4g} [{lo:.4g}, {hi:.4g}] live (v{online['version']}, "
        f"n={online.get('n') or 0:,}) vs test {online['test_value']:.4g} [{tlo:.4g}, {thi:.4g}]: "
        + (
            "agree"
            if online["agree"]
            else f"disagree (the live interval misses the test interval "
            f"± {online['allowed_change']:.3g}, monitor.metric_drop)"
        )
    )
