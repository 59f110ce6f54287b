"""Percentile bootstrap confidence intervals for any metric of (y_true, proba)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def bootstrap_interval(metric: Callable[[np.ndarray, np.ndarray], float], y_true: np.ndarray,
                       proba: np.ndarray, *, n_resamples: int, confidence: float,
                       seed: int) -> tuple[float, float]:
    """(low, high) of the metric over resamples of the test samples, with replacement."""
    rng = np.random.default_rng(seed)
    n = len(y_true)
    values = np.empty(n_resamples)
    for i in range(n_resamples):
        idx = rng.integers(0, n, size=n)
        values[i] = metric(y_true[idx], proba[idx])
    values = values[~np.isnan(values)]
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(values, [alpha, 1.0 - alpha])
    return float(low), float(high)
