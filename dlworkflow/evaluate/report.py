"""The full metric report of (labels, class probabilities): scalar metrics with bias-corrected
(BC) percentile bootstrap intervals that contain their estimate (dlworkflow.evaluate.bootstrap;
ECE, biased upward, gets 0 as its low end where the correction breaks down), per-class
precision / recall / F1 / support, top-k, confusion matrix."""

from __future__ import annotations

from typing import Any

import numpy as np

from dlworkflow.evaluate.bootstrap import bootstrap_metrics
from dlworkflow.evaluate.scores import scalar_metrics
from dlworkflow.metrics import confusion

SCALARS = ("accuracy", "balanced_accuracy", "macro_f1", "weighted_f1", "auroc", "auprc", "ece")


def top_ks(n_classes: int) -> tuple[int, ...]:
    """k = 1 .. min(5, K - 1): top-K of K classes is always 1, so it says nothing."""
    return tuple(range(1, min(5, n_classes - 1) + 1))


def metric_report(
    y: np.ndarray,
    proba: np.ndarray,
    classes: list[str],
    *,
    n_resamples: int,
    confidence: float,
    seed: int,
) -> dict[str, Any]:
    """Every metric of the predictions, JSON-ready. Scalars: {value, low, high}."""
    y = np.asarray(y, dtype=np.int64)
    proba = np.asarray(proba, dtype=np.float64)
    k = len(classes)
    if proba.ndim != 2 or proba.shape != (len(y), k):
        raise ValueError(f"proba must be ({len(y)}, {k}), got {proba.shape}")
    ks = top_ks(k)
    point = {
        name: float(v[0])
        for name, v in scalar_metrics(y, proba, np.ones((1, len(y))), top_k=ks).items()
    }
    intervals = (
        bootstrap_metrics(
            y, proba, n_resamples=n_resamples, confidence=confidence, seed=seed, top_k=ks
        )
        if len(y)
        else {}
    )
    metrics = {
        name: {
            "value": _finite(value),
            "low": _finite(intervals.get(name, (np.nan, np.nan))[0]),
            "high": _finite(intervals.get(name, (np.nan, np.nan))[1]),
        }
        for name, value in point.items()
    }
    cm = confusion(y, proba.argmax(axis=1), k) if len(y) else np.zeros((k, k), dtype=int)
    return {
        "n": int(len(y)),
        "classes": list(classes),
        "confidence": confidence,
        "n_resamples": n_resamples,
        "seed": seed,
        "metrics": metrics,
        "top_k": {
            str(kk): metrics["accuracy"]["value"]
            if kk == 1
            else metrics[f"top_{kk}_accuracy"]["value"]
            for kk in ks
        },
        "per_class": per_class(cm, classes),
        "confusion": cm.tolist(),
    }


def per_class(cm: np.ndarray, classes: list[str]) -> list[dict[str, Any]]:
    """Precision, recall, F1 and support of each class (None where undefined)."""
    tp = np.diag(cm).astype(float)
    actual, predicted = cm.sum(axis=1), cm.sum(axis=0)
    rows = []
    for i, name in enumerate(classes):
        precision = tp[i] / predicted[i] if predicted[i] else None
        recall = tp[i] / actual[i] if actual[i] else None
        denom = actual[i] + predicted[i]
        rows.append(
            {
                "class": name,
                "precision": precision,
                "recall": recall,
                "f1": 2 * tp[i] / denom if denom else None,
                "support": int(actual[i]),
            }
        )
    return rows


def _finite(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None
