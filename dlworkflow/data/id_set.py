"""The ids a streaming source has given so far, in memory that stays small however many there
are: each id is kept as a 13-byte digest (BLAKE2b), the latest ones in a Python set and the
rest in 256 sorted numpy arrays, one per value of the digest's first byte, which each keep the
other 12 bytes of their digests. The set is merged into them a batch of BATCH at a time: a
merge inserts a few keys into each small array (one new array, from a page on in its own
memory map, given back whole when replaced), never sorts all of them. A million ids take
about 16 MB of memory (12 MB of keys; 16-byte keys, merged 32,768 at a time
by sorting, took 25 MB; a set of the id strings about 110 MB). Two different ids share a digest
with a probability of about 3e-20 at a million ids (3e-14 at a billion): treated as never.
"""

from __future__ import annotations

import hashlib
from typing import Any

DIGEST_SIZE = 13  # bytes of BLAKE2b: the first picks the sorted array, the rest is kept there
BATCH = 4_096  # digests held in the Python set before they are merged into the sorted arrays
BUCKETS = 256  # sorted arrays, by the digest's first byte
KEY = f"S{DIGEST_SIZE - 1}"  # what a sorted array keeps of each digest
MAPPED_BYTES = 4_096  # sorted arrays from this size (a page) on have their own memory map


class SeenIds:
    """`id in seen`, `seen.add(id)` and `len(seen)` (the distinct ids added), as for a set."""

    def __init__(self) -> None:
        import numpy as np

        self._recent: set[bytes] = set()
        self._sorted: list[Any] = [np.empty(0, dtype=KEY)] * BUCKETS
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
        keys, rest = self._sorted[key[0]], key[1:]
        i = int(keys.searchsorted(rest))
        # the bytes compared whole: numpy reads an S12 item back without its trailing NULs
        return i < len(keys) and keys[i : i + 1].tobytes() == rest

    def _merge(self) -> None:
        import numpy as np

        batches: dict[int, list[bytes]] = {}
        for key in self._recent:
            batches.setdefault(key[0], []).append(key[1:])
        for bucket, rests in batches.items():
            new = np.array(rests, dtype=KEY)
            new.sort()
            old = self._sorted[bucket]  # none of the new keys is in it: no ties
            merged = _new_keys(len(old) + len(new))
            at_new = np.zeros(len(merged), dtype=bool)
            at_new[old.searchsorted(new) + np.arange(len(new))] = True
            merged[at_new] = new
            merged[~at_new] = old
            self._sorted[bucket] = merged
        self._recent.clear()


def _new_keys(n: int) -> Any:
    """An array of n keys; from MAPPED_BYTES on in its own anonymous memory map, given back
    to the system when the array is freed. (From the heap, the arrays each merge replaces
    left holes that other allocations filled: at 600k ids, 25 MB held for 7 MB of keys.)"""
    import mmap

    import numpy as np

    size = np.dtype(KEY).itemsize
    if n * size < MAPPED_BYTES:
        return np.empty(n, dtype=KEY)
    return np.frombuffer(mmap.mmap(-1, n * size), dtype=KEY)


def _digest(sample_id: str) -> bytes:
    # surrogatepass: an id may hold the lone surrogates of a name that is not UTF-8
    data = sample_id.encode("utf-8", "surrogatepass")
    return hashlib.blake2b(data, digest_size=DIGEST_SIZE).digest()
