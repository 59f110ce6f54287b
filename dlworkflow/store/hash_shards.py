"""Arrays kept per sample by content hash, in write-once shards: what the pixel bank
(store/pixel_bank.py) and explore's embedding cache (explore/embed_cache.py) both keep.

A folder holds shards `<stem>.npy` (rows of one shape, a plain array, never pickled) with the
content hashes of their rows in `<stem>.json` (a list, or an object whose "hashes" is one;
written last, so a shard without its index is never read). Shards are written atomically and
never changed, so two processes can share a folder; a damaged shard or index is skipped (its
rows count as missing). Deleting the folder empties the store.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from dlworkflow.fileio import atomic_write_text, atomic_write_with


class HashShards:
    """Rows of shape `row_shape` by content hash in `folder`."""

    def __init__(self, folder: Path, row_shape: tuple[int, ...]) -> None:
        self.folder, self.row_shape = folder, tuple(row_shape)

    def fill(self, hashes: list[str], out: np.ndarray) -> np.ndarray:
        """Copy the rows the store has into `out` (rows in the order of `hashes`; "" never
        matches); return the indices of the rows it does not have."""
        missing = np.ones(len(hashes), dtype=bool)
        wanted: dict[str, list[int]] = {}
        for i, h in enumerate(hashes):
            if h:
                wanted.setdefault(h, []).append(i)
        for shard, shard_hashes in self._shards() if wanted else []:
            rows_here, rows_out = [], []
            for row, h in enumerate(shard_hashes):
                for i in wanted.pop(h, ()):
                    rows_here.append(row)
                    rows_out.append(i)
            if rows_out:
                try:
                    stored = np.load(shard, mmap_mode="r", allow_pickle=False)
                except (OSError, ValueError):
                    continue  # a damaged shard: its rows are missing
                if stored.shape != (len(shard_hashes), *self.row_shape):
                    continue
                out[rows_out] = stored[rows_here]
                missing[rows_out] = False
            if not wanted:
                break
        return np.flatnonzero(missing)

    def add(self, stem: str, hashes: list[str], rows: np.ndarray, index: Any = None) -> None:
        """Write one new shard: `rows` (one per hash) and its index (default: the hashes)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        array = np.ascontiguousarray(rows)
        atomic_write_with(self.folder / f"{stem}.npy", lambda p: _save(p, array))
        text = json.dumps(hashes if index is None else index)
        atomic_write_text(self.folder / f"{stem}.json", text)  # written last

    def nbytes(self) -> int:
        if not self.folder.is_dir():
            return 0
        return sum(p.stat().st_size for p in self.folder.glob("*.npy"))

    def _shards(self) -> list[tuple[Path, list[str]]]:
        found: list[tuple[Path, list[str]]] = []
        if not self.folder.is_dir():
            return found
        for index in sorted(self.folder.glob("*.json")):
            shard = index.with_suffix(".npy")
            try:
                listed = json.loads(index.read_text(encoding="utf-8"))
                hashes = listed["hashes"] if isinstance(listed, dict) else listed
            except (OSError, ValueError, KeyError, TypeError):
                continue  # a damaged index: that shard is not used
            if shard.is_file() and isinstance(hashes, list):
                found.append((shard, [str(h) for h in hashes]))
        return found


def _save(path: Path, array: np.ndarray) -> None:
    with open(path, "wb") as handle:
        np.save(handle, array, allow_pickle=False)
