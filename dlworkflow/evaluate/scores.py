"""Classification metrics on sample weights, for many bootstrap resamples at once (numpy).

A bootstrap resample is a vector of counts over the samples (how often each was drawn), so a
metric of a resample is the metric with those sample weights. `weights` is (B, n): one row per
resample; a row of ones gives the plain point estimate. The definitions follow
dlworkflow.metrics (and scikit-learn): macro F1 over the classes present in the labels or the
predictions, balanced accuracy over the classes present in the labels, AUROC / AUPRC macro
one-vs-rest over the classes with positives and negatives (binary: the positive class only).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator

import numpy as np

ECE_BINS = 15
CHUNK_CELLS = 4_000_000  # resamples x samples held in memory at once


def resample_counts(n: int, *, n_resamples: int, seed: int) -> Iterator[np.ndarray]:
    """(chunk, n) draw counts, chunk after chunk; the draws are those of
    dlworkflow.evaluate.bootstrap.bootstrap_interval for the same seed."""
    rng = np.random.default_rng(seed)
    per_chunk = max(1, CHUNK_CELLS // max(n, 1))
    done = 0
    while done < n_resamples:
        b = min(per_chunk, n_resamples - done)
        idx = rng.integers(0, n, size=(b, n))
        flat = (idx + n * np.arange(b)[:, None]).ravel()
        yield np.bincount(flat, minlength=b * n).reshape(b, n).astype(np.float64)
        done += b


def class_counts(
    y: np.ndarray, pred: np.ndarray, k: int, weights: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(true-positive, actual, predicted) weighted counts per class, each (B, k)."""
    eye = np.eye(k)
    actual = weights @ eye[y]
    predicted = weights @ eye[pred]
    tp = weights @ (eye[y] * (y == pred)[:, None])
    return tp, actual, predicted


def scalar_metrics(
    y: np.ndarray,
    proba: np.ndarray,
    weights: np.ndarray,
    *,
    top_k: tuple[int, ...] = (),
    only: str | None = None,
) -> dict[str, np.ndarray]:
    """Every scalar metric (or just `only`), one value per weight row: name -> (B,)."""
    k = proba.shape[1]
    pred = proba.argmax(axis=1)
    total = weights.sum(axis=1)
    out: dict[str, np.ndarray] = {}
    if only in (None, "accuracy", "balanced_accuracy", "macro_f1", "weighted_f1"):
        tp, actual, predicted = class_counts(y, pred, k, weights)
        with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # resamples without a class: NaN
            recall = np.where(actual > 0, tp / actual, np.nan)
            denom = actual + predicted
            f1 = np.where(denom > 0, 2 * tp / denom, np.nan)
            out["accuracy"] = tp.sum(axis=1) / total
            out["balanced_accuracy"] = np.nanmean(recall, axis=1)
            out["macro_f1"] = np.nanmean(f1, axis=1)
            out["weighted_f1"] = np.nansum(np.nan_to_num(f1) * actual, axis=1) / total
    if only in (None, "auroc", "auprc"):
        out["auroc"], out["auprc"] = ranking_metrics(y, proba, weights)
    for kk in top_k if only is None else ():
        if kk > 1:
            out[f"top_{kk}_accuracy"] = weights @ top_k_hits(y, proba, kk) / total
    if only in (None, "ece"):
        out["ece"] = expected_calibration_error(y, proba, weights)
    if only is not None and only not in out:
        raise KeyError(only)
    return out if only is None else {only: out[only]}


def top_k_hits(y: np.ndarray, proba: np.ndarray, k: int) -> np.ndarray:
    """1.0 where the true class is among the k most probable (as scikit-learn's
    top_k_accuracy_score orders them), else 0.0."""
    order = np.argsort(proba, axis=1, kind="mergesort")[:, ::-1][:, :k]
    return (order == y[:, None]).any(axis=1).astype(np.float64)


def ranking_metrics(
    y: np.ndarray, proba: np.ndarray, weights: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Macro one-vs-rest AUROC and AUPRC (average precision), each (B,)."""
    k = proba.shape[1]
    classes = [1] if k == 2 else range(k)
    aurocs, auprcs = [], []
    for c in classes:
        roc, ap = _one_vs_rest(y == c, proba[:, c], weights)
        aurocs.append(roc)
        auprcs.append(ap)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # no valid class: NaN, dropped later
        return np.nanmean(np.stack(aurocs), axis=0), np.nanmean(np.stack(auprcs), axis=0)


def _one_vs_rest(
    positive: np.ndarray, score: np.ndarray, weights: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """AUROC (Mann-Whitney, ties counted half) and average precision (scikit-learn's
    step-wise definition: one threshold per distinct score) with weighted samples."""
    order = np.argsort(score, kind="mergesort")
    sorted_score = score[order]
    starts = np.concatenate(([0], np.flatnonzero(np.diff(sorted_score)) + 1))
    w = weights[:, order]
    pos_w = np.add.reduceat(w * positive[order], starts, axis=1)  # (B, groups), ascending
    neg_w = np.add.reduceat(w * ~positive[order], starts, axis=1)
    n_pos, n_neg = pos_w.sum(axis=1), neg_w.sum(axis=1)
    below = np.cumsum(neg_w, axis=1) - neg_w
    with np.errstate(invalid="ignore", divide="ignore"):
        auroc = (pos_w * (below + 0.5 * neg_w)).sum(axis=1) / (n_pos * n_neg)
        tp = np.cumsum(pos_w[:, ::-1], axis=1)  # thresholds from the highest score down
        fp = np.cumsum(neg_w[:, ::-1], axis=1)
        precision = np.where(tp + fp > 0, tp / np.maximum(tp + fp, 1e-300), 0.0)
        ap = (pos_w[:, ::-1] * precision).sum(axis=1) / n_pos
    valid = (n_pos > 0) & (n_neg > 0)
    return np.where(valid, auroc, np.nan), np.where(n_pos > 0, ap, np.nan)


def expected_calibration_error(
    y: np.ndarray, proba: np.ndarray, weights: np.ndarray, *, bins: int = ECE_BINS
) -> np.ndarray:
    """Sum over equal-width confidence bins of |accuracy - mean confidence| x bin share."""
    confidence = proba.max(axis=1)
    correct = (proba.argmax(axis=1) == y).astype(np.float64)
    which = confidence_bins(confidence, bins)
    eye = np.eye(bins)[which]
    gap = weights @ (eye * (correct - confidence)[:, None])  # (B, bins)
    return np.abs(gap).sum(axis=1) / weights.sum(axis=1)


def confidence_bins(confidence: np.ndarray, bins: int = ECE_BINS) -> np.ndarray:
    """Bin index of each confidence: (0, 1/bins] is bin 0, ..., ((bins-1)/bins, 1] the last."""
    edges = np.linspace(0.0, 1.0, bins + 1)[1:-1]
    return np.digitize(confidence, edges, right=True)
