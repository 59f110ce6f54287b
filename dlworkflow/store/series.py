"""Series of sequence tasks as content-addressed arrays, and the batches the networks take.

Ingest writes each usable series once, float32 (channels, length), as
`.dlw/series/<hash>.npy` (the hash of its shape and values: the same series is written once);
the manifest's `path` points there and `content_hash` is that hash. The originals (.ts files,
tables, .npy folders) are only read.

The networks take a batch as one float32 array (N, C, T): each series from step 0, and NaN
after its real end (`nan_padded`). NaN marks the padding, so the batch carries every series'
length without a second input; a stored series never holds NaN (ingest fills short gaps and
quarantines the rest), and the networks read the lengths back from the NaN tail
(`lengths_of`). The same layout goes through training, `dlw test`, the ONNX file and the
server.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from dlworkflow.fileio import atomic_write_with, sha256_json

if TYPE_CHECKING:
    import pandas as pd

    from dlworkflow.workspace import Workspace

SERIES_DIR = "series"


def series_dir(state: Path) -> Path:
    """Where a project keeps its series (`state`: the project's .dlw folder)."""
    return state / SERIES_DIR


def series_hash(array: np.ndarray) -> str:
    """sha256 of a float32 (C, T) series: its shape and its values' bytes."""
    a = np.ascontiguousarray(array, dtype=np.float32)
    digest = hashlib.sha256(f"{a.shape[0]}x{a.shape[1]}:".encode())
    digest.update(a.tobytes())
    return digest.hexdigest()


def write_series(state: Path, array: np.ndarray) -> tuple[Path, str]:
    """(path, content hash) of the (C, T) series written once under `state`/series/."""
    a = np.ascontiguousarray(array, dtype=np.float32)
    if a.ndim != 2:
        raise ValueError(f"a series is (channels, length), got shape {a.shape}")
    key = series_hash(a)
    path = series_dir(state) / key[:2] / f"{key}.npy"
    if _whole(path, a):
        return path, key
    path.parent.mkdir(parents=True, exist_ok=True)
    # not fsynced one by one (that was most of an ingest's time): the file appears whole
    # under its name (os.replace), and one a crash left short is written again (`_whole`)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        _save(tmp, a)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path, key


def _whole(path: Path, array: np.ndarray) -> bool:
    """The file at `path` exists and has the size of `array` saved (header + values)."""
    try:
        size = path.stat().st_size
    except OSError:
        return False
    return size >= array.nbytes + 64 and (size - array.nbytes) % 64 == 0


def read_series(path: str | Path) -> np.ndarray:
    """The float32 (C, T) series stored at `path` (never unpickled)."""
    a = np.load(path, allow_pickle=False)
    if a.ndim != 2 or a.dtype != np.float32:
        raise ValueError(f"{path} is not a float32 (channels, length) series")
    return a


def nan_padded(series: Sequence[np.ndarray], length: int | None = None) -> np.ndarray:
    """float32 (N, C, T): each (C, T_i) series from step 0, NaN after its end; T = `length`
    or the longest. A series longer than `length` is refused (ValueError)."""
    arrays = [np.asarray(s, dtype=np.float32) for s in series]
    arrays = [a[None, :] if a.ndim == 1 else a for a in arrays]
    if not arrays:
        return np.zeros((0, 1, length or 1), dtype=np.float32)
    channels = {a.shape[0] for a in arrays}
    if len(channels) != 1:
        raise ValueError(f"series with different channel counts: {sorted(channels)}")
    longest = max(a.shape[1] for a in arrays)
    total = longest if length is None else int(length)
    if longest > total:
        raise ValueError(f"a series of {longest} steps does not fit {total}")
    out = np.full((len(arrays), arrays[0].shape[0], total), np.nan, dtype=np.float32)
    for i, a in enumerate(arrays):
        out[i, :, : a.shape[1]] = a
    return out


def lengths_of(batch: np.ndarray) -> np.ndarray:
    """int64 (N,): the real length of each series of a NaN-padded (N, C, T) batch (the steps
    before the first all-NaN step of the tail)."""
    real = ~np.isnan(batch).all(axis=1)  # (N, T): a step with any value is real
    flipped = np.flip(real, axis=1)
    tail = np.argmax(flipped, axis=1)  # all-NaN steps at the end
    tail[~real.any(axis=1)] = batch.shape[2]
    return (batch.shape[2] - tail).astype(np.int64)


def unpad(batch: np.ndarray) -> list[np.ndarray]:
    """The (C, T_i) series of a NaN-padded batch."""
    return [batch[i, :, :n] for i, n in enumerate(lengths_of(batch))]


def series_tensor(
    project: Workspace, rows: pd.DataFrame, *, progress: Callable | None = None
) -> np.ndarray:
    """float32 (N, C, T) NaN-padded batch of the rows' series in row order (T: the longest),
    cached under .dlw/cache by the series' content hashes."""
    key = sha256_json(["series-v1", rows["content_hash"].tolist()])[:24]
    path = project.paths.cache / f"series-{key}.npy"
    if path.is_file():
        return np.load(path, allow_pickle=False)
    arrays = []
    for i, p in enumerate(rows["path"].tolist()):
        arrays.append(read_series(p))
        if progress is not None and (i + 1) % 256 == 0:
            progress(i + 1, len(rows))
    batch = nan_padded(arrays)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_with(path, lambda p: _save(p, batch))
    if progress is not None:
        progress(len(rows), len(rows))
    return batch


def fill_gaps(array: np.ndarray, max_gap: int) -> tuple[np.ndarray, str | None]:
    """(series, problem): interior runs of at most `max_gap` NaN steps per channel filled by
    linear interpolation; a longer run, or NaN at either end, gives the problem in words (the
    series is quarantined), and infinite values too."""
    a = np.asarray(array, dtype=np.float64)
    if np.isinf(a).any():
        return a.astype(np.float32), "infinite value in the series"
    if not np.isnan(a).any():
        return a.astype(np.float32), None
    out = a.copy()
    steps = np.arange(a.shape[1])
    for c in range(a.shape[0]):
        missing = np.isnan(a[c])
        if not missing.any():
            continue
        if missing.all():
            return a.astype(np.float32), f"channel {c} holds no values"
        run = _longest_run(missing)
        if missing[0] or missing[-1]:
            return a.astype(np.float32), (
                f"missing values at the start or end of channel {c} (cannot be interpolated)"
            )
        if run > max_gap:
            return a.astype(np.float32), (
                f"a run of {run} missing steps in channel {c} (data.max_gap: {max_gap})"
            )
        out[c, missing] = np.interp(steps[missing], steps[~missing], a[c, ~missing])
    return out.astype(np.float32), None


def _longest_run(mask: np.ndarray) -> int:
    best = current = 0
    for flag in mask:
        current = current + 1 if flag else 0
        best = max(best, current)
    return best


def _save(path: Path, array: np.ndarray) -> None:
    with open(path, "wb") as handle:
        np.save(handle, array)
