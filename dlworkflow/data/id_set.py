"""The ids a streaming source has given so far, in memory that stays small however many there
are: each id is kept as a 16-byte digest (BLAKE2b), the latest ones in a Python set and the
rest in 256 sorted numpy arrays (by the digest's first byte) that they are merged into a batch
at a time: a merge copies one small array, never all of them. A million ids take about 16 MB
(a set of the id strings: about 110 MB; one sorted array: 48 MB while it was merged). Two
different ids share a digest with a probability of about 1e-27 at a million ids: treated as
never.
"""

from __future__ import annotations

import hashlib
from typing import Any

BATCH = 32_768  # digests held in the Python set before they are merged into the sorted arrays
BUCKETS = 256  # sorted arrays, by the digest's first byte


class SeenIds:
    """`id in seen`, `seen.add(id)` and `len(seen)` (the distinct ids added), as for a set."""

    def __init__(self) -> None:
        import numpy as np

        self._recent: set[bytes] = set()
        self._sorted: list[Any] = [np.empty(0, dtype="S16")] * BUCKETS
        self._count = 0

    def __contains__(self, sample_id: object) -> bool:
        return self._has(_digest(str(sample_id)))

    def __len__(self) -> int:
        return self._count

    def add(self, sample_id: str) -> None:
        key = _digest(sample_id)
        if self._has(key):
            return
        self._recent.add(key)
        self._count += 1
        if len(self._recent) >= BATCH:
            self._merge()

    def _has(self, key: bytes) -> bool:
        if key in self._recent:
            return True
        keys = self._sorted[key[0]]
        i = int(keys.searchsorted(key))
        # the bytes compared whole: numpy reads an S16 item back without its trailing NULs
        return i < len(keys) and keys[i : i + 1].tobytes() == key

    def _merge(self) -> None:
        import numpy as np

        batches: dict[int, list[bytes]] = {}
        for key in self._recent:
            batches.setdefault(key[0], []).append(key)
        for bucket, keys in batches.items():
            merged = np.concatenate([self._sorted[bucket], np.array(keys, dtype="S16")])
            self._sorted[bucket] = np.sort(merged, kind="stable")
        self._recent.clear()


def _digest(sample_id: str) -> bytes:
    # surrogatepass: an id may hold the lone surrogates of a name that is not UTF-8
    data = sample_id.encode("utf-8", "surrogatepass")
    return hashlib.blake2b(data, digest_size=16).digest()
