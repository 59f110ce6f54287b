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


def bootstrap_metrics(y_true: np.ndarray, proba: np.ndarray, *, n_resamples: int,
                      confidence: float, seed: int,
                      top_k: tuple[int, ...] = ()) -> dict[str, tuple[float, float]]:
    """(low, high) of every scalar metric of dlworkflow.evaluate.scores at once, vectorised
    over the resamples; the resamples are those of bootstrap_interval for the same seed."""
    from dlworkflow.evaluate.scores import resample_counts, scalar_metrics

    chunks: dict[str, list[np.ndarray]] = {}
    for weights in resample_counts(len(y_true), n_resamples=n_resamples, seed=seed):
        for name, values in scalar_metrics(y_true, proba, weights, top_k=top_k).items():
            chunks.setdefault(name, []).append(values)
    return {name: _percentiles(np.concatenate(parts), confidence)
            for name, parts in chunks.items()}


def paired_difference(metric: str, y_true: np.ndarray, proba_a: np.ndarray,
                      proba_b: np.ndarray, *, n_resamples: int, confidence: float,
                      seed: int) -> tuple[float, float]:
    """(low, high) of metric(a) - metric(b) over the same resamples (a paired bootstrap)."""
    from dlworkflow.evaluate.scores import resample_counts, scalar_metrics

    diffs = [scalar_metrics(y_true, proba_a, w, only=metric)[metric]
             - scalar_metrics(y_true, proba_b, w, only=metric)[metric]
             for w in resample_counts(len(y_true), n_resamples=n_resamples, seed=seed)]
    return _percentiles(np.concatenate(diffs), confidence)


def _percentiles(values: np.ndarray, confidence: float) -> tuple[float, float]:
    values = values[~np.isnan(values)]
    if len(values) == 0:
        return float("nan"), float("nan")
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(values, [alpha, 1.0 - alpha])
    return float(low), float(high)


def metric_interval(metric: str, y_true: np.ndarray, proba: np.ndarray, *, n_resamples: int,
                    confidence: float, seed: int) -> tuple[float, float]:
    """bootstrap_interval of one metric of dlworkflow.evaluate.scores, vectorised."""
    from dlworkflow.evaluate.scores import resample_counts, scalar_metrics

    values = [scalar_metrics(y_true, proba, w, only=metric)[metric]
              for w in resample_counts(len(y_true), n_resamples=n_resamples, seed=seed)]
    return _percentiles(np.concatenate(values), confidence)
