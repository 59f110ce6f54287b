"""1-nearest-neighbour baselines for series classification (numpy only).

The series are float arrays shaped (channels, length) (a 1-D array is one channel). Two
distances, the two classic baselines of the UCR/UEA archive:

- "euclidean": squared Euclidean distance between whole series. Series of different lengths
  are first linearly resampled, channel by channel, to one common length: the longest series
  among train and test (`resample`), so no value is dropped and no padding enters the
  distance. Equal-length data are used as they are.
- "dtw": dependent multivariate dynamic time warping. The cost of matching time i of one series
  with time j of the other is the squared Euclidean distance between the two channel vectors,
  and the distance is the smallest sum of costs along a warping path (no square root: the
  nearest neighbour is the same). `window` is the Sakoe-Chiba band as a fraction of the longer
  length: cells with |i - j| > w are forbidden, w = ceil(window * max(n, m)) (the product
  rounded to 9 decimals first: 0.1 * 150 is 15), widened to |n - m| so that unequal lengths
  keep a path; None is the full window, 0 on equal lengths is
  the Euclidean distance. Series of different lengths are compared as they are.

DTW runs the usual recurrence D[i, j] = c[i, j] + min(D[i-1, j-1], D[i-1, j], D[i, j-1]) for
every (test, train) pair of a chunk at once: each step is one numpy operation over all pairs.
Ties go to the first training series. Missing values (NaN) are an error: fill them first.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np

from dlworkflow.errors import DataError

Metric = Literal["euclidean", "dtw"]
#: Pairs x length of one DTW chunk: its (length, test, train) arrays take 8 bytes per element.
CHUNK_ELEMENTS = 500_000


def knn_predict(
    train_series: Sequence[np.ndarray],
    train_labels: Sequence[str],
    test_series: Sequence[np.ndarray],
    *,
    metric: Metric = "euclidean",
    window: float | None = None,
) -> list[str]:
    """The label of each test series' nearest training series."""
    if len(train_labels) != len(train_series):
        raise DataError(
            "knn_predict needs one label per training series.",
            expected=f"{len(train_series)} labels",
            received=f"{len(train_labels)} labels",
            fix="pass the labels of the same training series, in the same order",
        )
    distances = distance_matrix(train_series, test_series, metric=metric, window=window)
    nearest = np.argmin(distances, axis=1)
    return [str(train_labels[int(k)]) for k in nearest]


def accuracy(predicted: Sequence[str], truth: Sequence[str]) -> float:
    """The share of predictions equal to the truth."""
    if len(predicted) != len(truth) or not truth:
        raise DataError(
            "accuracy needs as many predictions as true labels, at least one.",
            expected=f"{len(truth)} predictions",
            received=f"{len(predicted)} predictions",
            fix="predict every test series once",
        )
    return float(np.mean([str(p) == str(t) for p, t in zip(predicted, truth)]))


def distance_matrix(
    train_series: Sequence[np.ndarray],
    test_series: Sequence[np.ndarray],
    *,
    metric: Metric = "euclidean",
    window: float | None = None,
) -> np.ndarray:
    """(n_test, n_train) distances: squared Euclidean or DTW (see the module docstring)."""
    train = _as_series(train_series, "train")
    test = _as_series(test_series, "test")
    channels = {s.shape[0] for s in train + test}
    if len(channels) > 1:
        raise DataError(
            "The series have different numbers of channels.",
            expected="one channel count for every train and test series",
            received=f"channel counts {sorted(channels)}",
            fix="select the same channels in every series",
        )
    if metric == "euclidean":
        return _euclidean(train, test)
    if metric == "dtw":
        if window is not None and not 0.0 <= window <= 1.0:
            raise DataError(
                "The DTW window is a fraction of the series length.",
                expected="None (full window) or a number from 0 to 1",
                received=str(window),
                fix="pass e.g. window=0.1 for a band of 10% of the length",
            )
        return _dtw(train, test, window)
    raise DataError(
        f"Unknown series distance {metric!r}.",
        expected="'euclidean' or 'dtw'",
        received=repr(metric),
        fix="use metric='euclidean' or metric='dtw'",
    )


def resample(series: np.ndarray, length: int) -> np.ndarray:
    """`series` (channels, n) linearly interpolated to (channels, length), ends kept."""
    series = np.asarray(series, dtype=np.float64)
    n = series.shape[1]
    if n == length:
        return series
    if n == 1:
        return np.repeat(series, length, axis=1)
    new = np.linspace(0.0, n - 1.0, length)
    old = np.arange(n, dtype=np.float64)
    return np.stack([np.interp(new, old, channel) for channel in series])


def _as_series(items: Sequence[np.ndarray], name: str) -> list[np.ndarray]:
    out = []
    for index, item in enumerate(items):
        array = np.asarray(item, dtype=np.float64)
        if array.ndim == 1:
            array = array[None, :]
        if array.ndim != 2 or array.shape[0] < 1 or array.shape[1] < 1:
            raise DataError(
                f"{name} series {index} is not a (channels, length) array.",
                expected="a 1-D array or a 2-D array (channels, length), not empty",
                received=f"shape {tuple(array.shape)}",
                fix="pass one array per series",
            )
        if not np.isfinite(array).all():
            raise DataError(
                f"{name} series {index} has missing or infinite values.",
                expected="finite numbers only",
                received=f"{int((~np.isfinite(array)).sum())} value(s) NaN or infinite",
                fix="fill or interpolate missing values before the nearest-neighbour baseline",
            )
        out.append(array)
    if not out:
        raise DataError(
            f"There are no {name} series.",
            expected="at least one series",
            received="none",
            fix=f"pass the {name} series",
        )
    return out


def _euclidean(train: list[np.ndarray], test: list[np.ndarray]) -> np.ndarray:
    length = max(s.shape[1] for s in train + test)
    a = np.stack([resample(s, length).ravel() for s in test])
    b = np.stack([resample(s, length).ravel() for s in train])
    out = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * (a @ b.T)
    return np.maximum(out, 0.0)


def _dtw(train: list[np.ndarray], test: list[np.ndarray], window: float | None) -> np.ndarray:
    b, m_len = _pad(train)
    a, n_len = _pad(test)
    m_max = b.shape[2]
    longer = np.maximum(n_len[:, None], m_len[None, :])
    gap = np.abs(n_len[:, None] - m_len[None, :])
    if window is None:
        band = longer
    else:
        band = np.maximum(np.ceil(np.round(window * longer, 9)).astype(np.int64), gap)
    out = np.empty((len(test), len(train)))
    rows = max(1, CHUNK_ELEMENTS // (len(train) * m_max))
    for start in range(0, len(test), rows):
        stop = min(start + rows, len(test))
        out[start:stop] = _dtw_chunk(a[start:stop], b, n_len[start:stop], m_len, band[start:stop])
    return out


def _pad(series: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(count, channels, longest) zero-padded, and each length (the padding is never read)."""
    lengths = np.array([s.shape[1] for s in series], dtype=np.int64)
    out = np.zeros((len(series), series[0].shape[0], int(lengths.max())))
    for k, s in enumerate(series):
        out[k, :, : s.shape[1]] = s
    return out, lengths


def _dtw_chunk(
    a: np.ndarray, b: np.ndarray, n_len: np.ndarray, m_len: np.ndarray, band: np.ndarray
) -> np.ndarray:
    """DTW of every (a[t], b[r]) pair: a (T, C, N), b (R, C, M), band (T, R).

    The accumulated costs of one row i are kept as (M, T * R): column j of every pair is one
    contiguous vector, so the recurrence along j is M vector operations over all pairs."""
    t_count, r_count, m_max = a.shape[0], b.shape[0], b.shape[2]
    pairs = t_count * r_count
    columns = np.arange(m_max)[:, None]
    band_flat = band.reshape(pairs)
    # a band as wide as the longer series forbids nothing: skip the masks
    banded = bool((band < np.maximum(n_len[:, None], m_len[None, :])).any())
    b_by_time = -2.0 * b.transpose(2, 1, 0)  # (M, C, R)
    b_norms = np.einsum("rcm,rcm->mr", b, b)[:, None, :]  # (M, 1, R)
    result = np.full((t_count, r_count), np.inf)
    previous = np.full((m_max, pairs), np.inf)
    reach = np.empty_like(previous)
    for i in range(a.shape[2]):
        # squared Euclidean costs of time i against every time j: |a|^2 + |b|^2 - 2 a.b
        point = a[:, :, i]
        cost = np.matmul(point[None], b_by_time)  # (M, T, R)
        cost += b_norms
        cost += np.einsum("tc,tc->t", point, point)[None, :, None]
        np.maximum(cost, 0.0, out=cost)
        cost = cost.reshape(m_max, pairs)
        # reach[j] = min(D[i-1, j-1], D[i-1, j]); the start cell is reached for free
        reach[0] = 0.0 if i == 0 else previous[0]
        np.minimum(previous[:-1], previous[1:], out=reach[1:])
        if banded:
            np.copyto(reach, np.inf, where=columns < (i - band_flat)[None, :])
        row = cost  # D[i, j] = cost + min(reach[j], D[i, j-1]), in place
        row[0] += reach[0]
        for j in range(1, m_max):
            np.minimum(reach[j], row[j - 1], out=reach[j])
            row[j] += reach[j]
        if banded:
            np.copyto(row, np.inf, where=columns > (i + band_flat)[None, :])
        ending = np.nonzero(n_len - 1 == i)[0]
        if ending.size:
            last = row.reshape(m_max, t_count, r_count)[m_len - 1, :, np.arange(r_count)]
            result[ending] = last.T[ending]
        previous = row
    return result
