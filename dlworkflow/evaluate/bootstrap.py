"""Bias-corrected (BC) percentile bootstrap confidence intervals for any metric of
(y_true, proba); every interval contains its point estimate.

The replicates are those the code always drew (same seed, same resamples, paired where two
models are compared). From them, Efron's bias correction: z0 = Phi^-1(share of replicates
below the estimate, ties counted half, as scipy.stats.bootstrap does), and the interval runs
between the replicates' quantiles Phi(2 z0 -/+ z_{alpha/2}). With z0 = 0 (estimate at the
replicates' median) this is the plain percentile interval; a statistic biased upward (ECE:
the replicates sit above the estimate) gets an interval shifted down accordingly.

BC rather than BCa: the acceleration needs a jackknife, n more evaluations of the metric per
metric (for AUROC on 10,000 test rows, 10,000 sorts), and for these averages over samples it
is O(1/sqrt(n)), while the median bias z0 is what separated ECE's percentile interval from
its estimate. scipy.stats.bootstrap(method="BCa") would also draw resamples of its own, not
the seeded, vectorised (and, for differences, paired) resamples of dlworkflow.evaluate.scores.

Where the estimate lies in the outer alpha/2 tail of its replicates (or outside them), BC
breaks down: the corrected quantiles collapse onto the extreme replicates and leave the
estimate out (for ECE of a well-calibrated model nearly every replicate exceeds the
estimate). The interval is then widened: the percentile interval stretched to the estimate,
and for a statistic with a known lower bound that is biased upward (ECE, bound 0) stretched
down to that bound when the estimate sits below its replicates: its upward bias exceeds its
spread, so values down to the bound cannot be ruled out.
"""

from __future__ import annotations

from collections.abc import Callable
from statistics import NormalDist

import numpy as np

# metrics biased upward with a known lower bound: the bound is the interval's low end where
# the bias correction breaks down below the estimate
FLOORS = {"ece": 0.0}
TIE = 1e-12  # replicates this close to the estimate (relative to max(1, |estimate|)) tie it
_NORMAL = NormalDist()


def bootstrap_interval(
    metric: Callable[[np.ndarray, np.ndarray], float],
    y_true: np.ndarray,
    proba: np.ndarray,
    *,
    n_resamples: int,
    confidence: float,
    seed: int,
) -> tuple[float, float]:
    """(low, high) of the metric over resamples of the test samples, with replacement: the BC
    interval around metric(y_true, proba)."""
    rng = np.random.default_rng(seed)
    n = len(y_true)
    values = np.empty(n_resamples)
    for i in range(n_resamples):
        idx = rng.integers(0, n, size=n)
        values[i] = metric(y_true[idx], proba[idx])
    return bc_interval(values, float(metric(y_true, proba)), confidence)


def bootstrap_metrics(
    y_true: np.ndarray,
    proba: np.ndarray,
    *,
    n_resamples: int,
    confidence: float,
    seed: int,
    top_k: tuple[int, ...] = (),
) -> dict[str, tuple[float, float]]:
    """(low, high) of every scalar metric of dlworkflow.evaluate.scores at once, vectorised
    over the resamples; the resamples are those of bootstrap_interval for the same seed."""
    from dlworkflow.evaluate.scores import resample_counts, scalar_metrics

    point = scalar_metrics(y_true, proba, np.ones((1, len(y_true))), top_k=top_k)
    chunks: dict[str, list[np.ndarray]] = {}
    for weights in resample_counts(len(y_true), n_resamples=n_resamples, seed=seed):
        for name, values in scalar_metrics(y_true, proba, weights, top_k=top_k).items():
            chunks.setdefault(name, []).append(values)
    return {
        name: bc_interval(
            np.concatenate(parts), float(point[name][0]), confidence, floor=FLOORS.get(name)
        )
        for name, parts in chunks.items()
    }


def paired_difference(
    metric: str,
    y_true: np.ndarray,
    proba_a: np.ndarray,
    proba_b: np.ndarray,
    *,
    n_resamples: int,
    confidence: float,
    seed: int,
) -> tuple[float, float]:
    """(low, high) of metric(a) - metric(b) over the same resamples (a paired bootstrap),
    the BC interval around the observed difference."""
    from dlworkflow.evaluate.scores import resample_counts, scalar_metrics

    ones = np.ones((1, len(y_true)))
    point = float(
        scalar_metrics(y_true, proba_a, ones, only=metric)[metric][0]
        - scalar_metrics(y_true, proba_b, ones, only=metric)[metric][0]
    )
    diffs = [
        scalar_metrics(y_true, proba_a, w, only=metric)[metric]
        - scalar_metrics(y_true, proba_b, w, only=metric)[metric]
        for w in resample_counts(len(y_true), n_resamples=n_resamples, seed=seed)
    ]
    return bc_interval(np.concatenate(diffs), point, confidence)


def metric_interval(
    metric: str,
    y_true: np.ndarray,
    proba: np.ndarray,
    *,
    n_resamples: int,
    confidence: float,
    seed: int,
) -> tuple[float, float]:
    """bootstrap_interval of one metric of dlworkflow.evaluate.scores, vectorised."""
    from dlworkflow.evaluate.scores import resample_counts, scalar_metrics

    point = float(scalar_metrics(y_true, proba, np.ones((1, len(y_true))), only=metric)[metric][0])
    values = [
        scalar_metrics(y_true, proba, w, only=metric)[metric]
        for w in resample_counts(len(y_true), n_resamples=n_resamples, seed=seed)
    ]
    return bc_interval(np.concatenate(values), point, confidence, floor=FLOORS.get(metric))


def percentile_interval(values: np.ndarray, confidence: float) -> tuple[float, float]:
    """The plain percentile interval of the replicates (NaN replicates dropped)."""
    values = values[~np.isnan(values)]
    if len(values) == 0:
        return float("nan"), float("nan")
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(values, [alpha, 1.0 - alpha])
    return float(low), float(high)


def bc_interval(
    values: np.ndarray, estimate: float, confidence: float, *, floor: float | None = None
) -> tuple[float, float]:
    """The bias-corrected percentile interval of the replicates around `estimate`, widened
    to contain it where BC breaks down (see the module docstring). NaN replicates are
    dropped; an undefined estimate gets the percentile interval."""
    values = values[~np.isnan(values)]
    if len(values) == 0:
        return float("nan"), float("nan")
    if not np.isfinite(estimate):
        return percentile_interval(values, confidence)
    b = len(values)
    tie = np.abs(values - estimate) <= TIE * max(1.0, abs(estimate))
    share = (np.count_nonzero((values < estimate) & ~tie) + 0.5 * np.count_nonzero(tie)) / b
    z0 = _NORMAL.inv_cdf(min(max(share, 0.5 / b), 1.0 - 0.5 / b))
    z = _NORMAL.inv_cdf(1.0 - (1.0 - confidence) / 2.0)
    levels = [_NORMAL.cdf(2.0 * z0 - z), _NORMAL.cdf(2.0 * z0 + z)]
    low, high = (float(q) for q in np.quantile(values, levels))
    if low <= estimate <= high:
        return low, high
    q_low, q_high = percentile_interval(values, confidence)
    low, high = min(low, q_low, estimate), max(high, q_high, estimate)
    if floor is not None and estimate < q_low:
        low = min(low, floor)
    return low, high
