"""Every metric of a task with its bias-corrected bootstrap interval, and paired differences
between two sets of outputs, for any task (regression, multi-label; classification keeps its
own vectorised scores in dlworkflow.evaluate.scores).

The resamples are those of dlworkflow.evaluate.scores.resample_counts (draw counts, the same
for the same seed, so two models scored on one split are compared on the same resamples); a
task scores every resample at once (`task.scores(y, out, weights, target)`), and the interval
is dlworkflow.evaluate.bootstrap.bc_interval, so every interval contains its estimate.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from dlworkflow.evaluate.bootstrap import bc_interval
from dlworkflow.evaluate.scores import resample_counts

if TYPE_CHECKING:
    from dlworkflow.tasks import Task

Scorer = Callable[[np.ndarray], dict[str, np.ndarray]]  # weights (B, n) -> name -> (B,)


def finite(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


def task_scorer(task: Task, y: np.ndarray, out: np.ndarray, target: dict[str, Any]) -> Scorer:
    """Every metric of the task for weight rows (B, n) of these predictions."""
    return lambda weights: task.scores(y, out, weights, target)


def intervals(
    scorer: Scorer, n: int, *, n_resamples: int, confidence: float, seed: int
) -> dict[str, dict[str, float | None]]:
    """{metric: {value, low, high}} (None where undefined) from a scorer of n samples."""
    if n == 0:
        return {
            name: {"value": None, "low": None, "high": None} for name in scorer(np.ones((1, 1)))
        }
    point = {name: float(v[0]) for name, v in scorer(np.ones((1, n))).items()}
    chunks: dict[str, list[np.ndarray]] = {}
    for weights in resample_counts(n, n_resamples=n_resamples, seed=seed):
        for name, values in scorer(weights).items():
            chunks.setdefault(name, []).append(np.asarray(values, dtype=np.float64))
    out: dict[str, dict[str, float | None]] = {}
    for name, value in point.items():
        low, high = bc_interval(np.concatenate(chunks[name]), value, confidence)
        out[name] = {"value": finite(value), "low": finite(low), "high": finite(high)}
    return out


def task_intervals(
    task: Task,
    y: np.ndarray,
    out: np.ndarray,
    target: dict[str, Any],
    *,
    n_resamples: int,
    confidence: float,
    seed: int,
) -> dict[str, dict[str, float | None]]:
    """Every metric of the task on (y, out) with its BC interval."""
    return intervals(
        task_scorer(task, y, out, target),
        len(y),
        n_resamples=n_resamples,
        confidence=confidence,
        seed=seed,
    )


def paired_difference(
    metric: str, a: Scorer, b: Scorer, n: int, *, n_resamples: int, confidence: float, seed: int
) -> dict[str, float | None]:
    """{value, low, high} of metric(a) - metric(b) over the same resamples (a paired
    bootstrap), the BC interval around the observed difference."""
    if n == 0:
        return {"value": None, "low": None, "high": None}
    ones = np.ones((1, n))
    value = float(a(ones)[metric][0] - b(ones)[metric][0])
    diffs = [
        a(w)[metric] - b(w)[metric] for w in resample_counts(n, n_resamples=n_resamples, seed=seed)
    ]
    low, high = bc_interval(np.concatenate(diffs), value, confidence)
    return {"value": finite(value), "low": finite(low), "high": finite(high)}


def not_better(difference: dict[str, float | None], *, higher_is_better: bool) -> bool:
    """The network (a of a - b) is not shown to be better than b: the interval of the
    difference reaches 0 or beyond on the wrong side (False when it is undefined)."""
    low, high = difference["low"], difference["high"]
    if low is None or high is None:
        return False
    return low <= 0 if higher_is_better else high >= 0


def worse(difference: dict[str, float | None], *, higher_is_better: bool) -> bool:
    """The network (a) is shown to be worse than b: the whole interval is on the wrong side."""
    low, high = difference["low"], difference["high"]
    if low is None or high is None:
        return False
    return high < 0 if higher_is_better else low > 0
