"""Sequence classification's baselines: 1-nearest-neighbour with the Euclidean distance and with
DTW (dlworkflow.evaluate.series_knn), fitted on the train split (its series are the
neighbours) and scored on the evaluated split with the primary metric and its interval, as
the other baselines. 1-NN DTW is the task's `simple` model (the classic strong baseline of the
UCR/UEA archive): the network's paired difference to it decides `simple_as_good`; 1-NN
Euclidean is listed beside it (`nn_euclidean`).

The Euclidean distance is taken on series resampled to at most MAX_EUCLIDEAN_LENGTH steps
and against at most MAX_EUCLIDEAN_TRAIN neighbours. DTW is kept affordable: a Sakoe-Chiba band
of DTW_WINDOW of the longer length; series longer than MAX_DTW_LENGTH steps are linearly
resampled (all by the same factor) to at most that many; and the pairs x steps x steps of the
distance table are capped at MAX_DTW_CELLS, first by a seeded subsample of the train series
(at least one per class), then, only when even MIN_DTW_TRAIN of those are too many, by a
seeded subsample of the evaluated series (DTW's entry then says on how many it was scored,
and its difference to the network is measured on those). Every cap is written in the
entry's `note`. The predictions are hard: the nearest neighbour's class has probability 1.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from dlworkflow.evaluate.bootstrap import metric_interval
from dlworkflow.evaluate.scores import scalar_metrics
from dlworkflow.evaluate.series_knn import distance_matrix, resample

if TYPE_CHECKING:
    import pandas as pd

DTW_WINDOW = 0.1  # Sakoe-Chiba band: a fraction of the longer series' length
MAX_DTW_LENGTH = 256  # longer series are resampled to this many steps for DTW
MAX_DTW_CELLS = 400_000_000  # pairs x steps x steps of one DTW table (a few seconds)
MIN_DTW_TRAIN = 100  # the train series kept before the evaluated series are subsampled
MAX_EUCLIDEAN_TRAIN = 5000  # neighbours of the Euclidean 1-NN (a seeded subsample beyond)
MAX_EUCLIDEAN_LENGTH = 2048  # longer series are resampled to this many steps for it


def read_rows(rows: pd.DataFrame) -> list[np.ndarray]:
    """The (C, T) float32 series of manifest rows (their content-addressed .npy files)."""
    from dlworkflow.store.series import read_series

    return [read_series(p) for p in rows["path"].tolist()]


def series_entries(
    train_rows: pd.DataFrame,
    y_train: np.ndarray,
    rows: pd.DataFrame,
    y: np.ndarray,
    network: np.ndarray,
    *,
    classes: list[str],
    metric: str,
    n_resamples: int,
    confidence: float,
    seed: int,
) -> dict[str, Any]:
    """The baselines' keys of a sequence task: simple (1-NN DTW), nn_euclidean, difference
    (network - simple, paired interval) and simple_as_good."""
    from dlworkflow.evaluate.baselines import simple_as_good

    kw: dict[str, Any] = {"n_resamples": n_resamples, "confidence": confidence, "seed": seed}
    train = read_rows(train_rows)
    evaluated = read_rows(rows)
    k = len(classes)
    euclid, e_info = euclidean_proba(train, y_train, evaluated, k=k, seed=seed)
    dtw, chosen, d_info = dtw_proba(train, y_train, evaluated, k=k, seed=seed)
    as_good, diff = simple_as_good(metric, y[chosen], network[chosen], dtw, **kw)
    return {
        "simple": {**d_info, **score(metric, y[chosen], dtw, **kw)},
        "nn_euclidean": {**e_info, **score(metric, y, euclid, **kw)},
        "difference": {"low": diff[0], "high": diff[1]},
        "simple_as_good": as_good,
    }


def score(metric: str, y: np.ndarray, proba: np.ndarray, **kw: Any) -> dict[str, Any]:
    """{value, low, high} of the metric on these predictions (the bootstrap interval)."""
    value = float(scalar_metrics(y, proba, np.ones((1, len(y))), only=metric)[metric][0])
    low, high = metric_interval(metric, y, proba, **kw)
    return {"value": value, "low": low, "high": high}


def euclidean_proba(
    train: list[np.ndarray], y_train: np.ndarray, evaluated: list[np.ndarray], *, k: int, seed: int
) -> tuple[np.ndarray, dict[str, Any]]:
    """(one-hot predictions, description) of 1-NN with the squared Euclidean distance."""
    keep = _subsample_train(y_train, MAX_EUCLIDEAN_TRAIN, seed=seed)
    info: dict[str, Any] = {
        "model": "1-nearest-neighbour, Euclidean distance (unequal lengths resampled to the "
        "longest)",
        "n_train": int(len(keep)),
    }
    train, evaluated, notes = _capped(train, evaluated, MAX_EUCLIDEAN_LENGTH)
    if len(keep) < len(y_train):
        notes.append(f"neighbours: a seeded subsample of {len(keep)} of {len(y_train)} train")
    if notes:
        info["note"] = "; ".join(notes)
    distances = distance_matrix([train[i] for i in keep], evaluated, metric="euclidean")
    return _one_hot(y_train[keep][np.argmin(distances, axis=1)], k), info


def dtw_proba(
    train: list[np.ndarray], y_train: np.ndarray, evaluated: list[np.ndarray], *, k: int, seed: int
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """(one-hot predictions on the chosen evaluated series, their indices, description) of
    1-NN DTW within the caps of the module docstring."""
    train, evaluated, notes = _capped(train, evaluated, MAX_DTW_LENGTH)
    mean_train = float(np.mean([s.shape[1] for s in train]))
    mean_eval = float(np.mean([s.shape[1] for s in evaluated]))
    per_pair = mean_train * mean_eval
    n_train = int(min(len(train), max(MIN_DTW_TRAIN, MAX_DTW_CELLS // (per_pair * len(evaluated)))))
    keep = _subsample_train(y_train, n_train, seed=seed)
    if len(keep) < len(train):
        notes.append(f"neighbours: a seeded subsample of {len(keep)} of {len(train)} train")
    n_eval = int(min(len(evaluated), max(1, MAX_DTW_CELLS // (per_pair * len(keep)))))
    chosen = np.arange(len(evaluated))
    if n_eval < len(evaluated):
        rng = np.random.default_rng(seed + 1)
        chosen = np.sort(rng.choice(len(evaluated), n_eval, replace=False))
        notes.append(f"scored on a seeded subsample of {n_eval} of {len(evaluated)} series")
    distances = distance_matrix(
        [train[i] for i in keep], [evaluated[i] for i in chosen], metric="dtw", window=DTW_WINDOW
    )
    info: dict[str, Any] = {
        "model": f"1-nearest-neighbour, DTW (Sakoe-Chiba window {DTW_WINDOW:.0%})",
        "n_train": int(len(keep)),
        "n": int(len(chosen)),
        "window": DTW_WINDOW,
    }
    if notes:
        info["note"] = "; ".join(notes)
    return _one_hot(y_train[keep][np.argmin(distances, axis=1)], k), chosen, info


def _capped(
    train: list[np.ndarray], evaluated: list[np.ndarray], cap: int
) -> tuple[list[np.ndarray], list[np.ndarray], list[str]]:
    """(train, evaluated, notes): every series resampled by one factor when the longest is
    longer than `cap` time steps (the longest then has `cap`), with a note saying so."""
    longest = max(s.shape[1] for s in train + evaluated)
    if longest <= cap:
        return train, evaluated, []
    factor = cap / longest
    note = f"series resampled by {factor:.3g} (longest {longest} -> {cap})"
    return [_shrink(s, factor) for s in train], [_shrink(s, factor) for s in evaluated], [note]


def _shrink(series: np.ndarray, factor: float) -> np.ndarray:
    return resample(series, max(2, int(round(series.shape[1] * factor))))


def _subsample_train(y_train: np.ndarray, n: int, *, seed: int) -> np.ndarray:
    """Sorted indices of at most `n` train series, seeded, one of each class first."""
    count = len(y_train)
    if count <= n:
        return np.arange(count)
    rng = np.random.default_rng(seed)
    order = rng.permutation(count)
    first: dict[int, int] = {}
    for i in order:
        first.setdefault(int(y_train[i]), int(i))
    picked = list(first.values())[:n]
    taken = set(picked)
    rest = [int(i) for i in order if int(i) not in taken]
    return np.sort(np.array(picked + rest[: n - len(picked)], dtype=np.int64))


def _one_hot(labels: np.ndarray, k: int) -> np.ndarray:
    out = np.zeros((len(labels), k))
    out[np.arange(len(labels)), np.asarray(labels, dtype=np.int64)] = 1.0
    return out
