"""The ids a streaming source has given so far, in memory that stays small however many there
are: each id is kept as a 16-byte digest (BLAKE2b), the latest ones in a Python set and the
rest in one sorted numpy array that they are merged into a batch at a time. A million ids take
about 16 MB (a set of the id strings: about 110 MB). Two different ids share a digest with a
probability of about 1e-27 at a million ids: treated as never.
"""

from __future__ import annotations

import hashlib
from typing import Any

BATCH = 32_768  # digests held in the Python set before they are merged into the sorted array


class SeenIds:
    """`id in seen`, `seen.add(id)` and `len(seen)` (the distinct ids added), as for a set."""

    def __init__(self) -> None:
        import numpy as np

        self._recent: set[bytes] = set()
        self._sorted: Any = np.empty(0, dtype="S16")
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
        keys = self._sorted
        i = int(keys.searchsorted(key))
        # the bytes compared whole: numpy reads an S16 item back without its trailing NULs
        return i < len(keys) and keys[i : i + 1].tobytes() == key

    def _merge(self) -> None:
        import numpy as np

        batch = np.array(sorted(self._recent), dtype="S16")
        self._sorted = np.sort(np.concatenate([self._sorted, batch]), kind="stable")
        self._recent.clear()


def _digest(sample_id: str) -> bytes:
    # surrogatepass: an id may hold the lone surrogates of a name that is not UTF-8
    data = sample_id.encode("utf-8", "surrogatepass")
    return hashlib.blake2b(data, digest_size=16).digest()
