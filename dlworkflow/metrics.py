"""Classification metrics by name, on integer labels and class probabilities (numpy only).

Used by training (validation monitoring) and evaluation (the test verdict), so both judge
with the same code. Each metric takes (y_true[n], proba[n, k]) and returns a float.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from dlworkflow.registry import Registry

Metric = Callable[[np.ndarray, np.ndarray], float]
METRICS: Registry[Metric] = Registry("metric")


def confusion(y_true: np.ndarray, y_pred: np.ndarray, k: int) -> np.ndarray:
    """k x k counts: rows true class, columns predicted class."""
    return np.bincount(y_true * k + y_pred, minlength=k * k).reshape(k, k)


@METRICS.register("accuracy")
def accuracy(y_true: np.ndarray, proba: np.ndarray) -> float:
    return float(np.mean(proba.argmax(axis=1) == y_true))


@METRICS.register("balanced_accuracy")
def balanced_accuracy(y_true: np.ndarray, proba: np.ndarray) -> float:
    """Mean recall over the classes present in y_true."""
    k = proba.shape[1]
    cm = confusion(y_true, proba.argmax(axis=1), k)
    support = cm.sum(axis=1)
    present = support > 0
    return float(np.mean(np.diag(cm)[present] / support[present]))


@METRICS.register("macro_f1")
def macro_f1(y_true: np.ndarray, proba: np.ndarray) -> float:
    """Unweighted mean F1 over classes present in y_true or in the predictions."""
    k = proba.shape[1]
    cm = confusion(y_true, proba.argmax(axis=1), k)
    tp = np.diag(cm).astype(float)
    denom = cm.sum(axis=0) + cm.sum(axis=1)  # predicted + actual = 2tp + fp + fn
    present = denom > 0
    return float(np.mean(2 * tp[present] / denom[present]))


@METRICS.register("auroc")
def auroc(y_true: np.ndarray, proba: np.ndarray) -> float:
    """Macro one-vs-rest area under the ROC curve (binary: the positive class's AUC)."""
    k = proba.shape[1]
    classes = [1] if k == 2 else range(k)
    scores = []
    for c in classes:
        positive = y_true == c
        n_pos = int(positive.sum())
        n_neg = len(y_true) - n_pos
        if n_pos == 0 or n_neg == 0:
            continue
        ranks = _average_ranks(proba[:, c])
        scores.append((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))
    return float(np.mean(scores)) if scores else float("nan")


def _average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks with ties averaged (as scipy.stats.rankdata(method='average'))."""
    order = np.argsort(values, kind="mergesort")
    sorted_vals = values[order]
    boundaries = np.flatnonzero(np.diff(sorted_vals)) + 1
    starts = np.concatenate(([0], boundaries))
    ends = np.concatenate((boundaries, [len(values)]))
    avg = (starts + ends + 1) / 2.0  # mean of 1-based ranks start+1 .. end
    ranks = np.empty(len(values))
    ranks[order] = np.repeat(avg, ends - starts)
    return ranks


def compute(name: str, y_true: np.ndarray, proba: np.ndarray) -> float:
    return METRICS.get(name)(np.asarray(y_true, dtype=np.int64), np.asarray(proba))
