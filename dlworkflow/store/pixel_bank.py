"""Decoded images kept per sample, so that each image is decoded once per network format.

`image_tensor` (store/images.py) caches whole arrays by the exact set of rows; but explore,
split, train and retrain each ask for a different set (all samples, the near-duplicate
candidates, train + val, the grown dataset after a retrain), so each would decode every image
again. The bank keeps, per format (channels x height x width), the decoded uint8 arrays by
content hash, in shards: `cache/pixels-<C>x<H>x<W>/<key>.npy` with the content hashes of its
rows in `<key>.json`. A request takes what the bank has and decodes only the rest, which is
added as one new shard. Shards are written atomically and never changed, so two processes can
share a bank. A format's bank stops growing at `BANK_LIMIT_BYTES`; deleting the folder (or
`.dlw/cache`) empties it: everything in it is decoded again when needed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from dlworkflow.fileio import sha256_json
from dlworkflow.store.hash_shards import HashShards

BANK_LIMIT_BYTES = 2 * 1024**3  # per format: beyond it, images are decoded as before


class PixelBank:
    """The decoded images of one format in a project's cache."""

    def __init__(self, cache: Path, *, channels: int, size: tuple[int, int]) -> None:
        self.shape = (channels, size[0], size[1])
        self.shards = HashShards(cache / f"pixels-{channels}x{size[0]}x{size[1]}", self.shape)
        self.folder = self.shards.folder

    def fill(self, hashes: list[str], out: np.ndarray) -> np.ndarray:
        """Copy the images the bank has into `out` (rows in the order of `hashes`); return
        the indices of the rows it does not have."""
        return self.shards.fill(hashes, out)

    def add(self, hashes: list[str], images: np.ndarray) -> None:
        """Keep newly decoded images (one new shard), unless the bank is full."""
        if not hashes or images.shape[1:] != self.shape:
            return
        if self.shards.nbytes() + images.nbytes > BANK_LIMIT_BYTES:
            return
        self.shards.add(sha256_json(hashes)[:24], hashes, images)


INGEST_MAX_PIXELS = 64 * 64  # images up to this size are banked while ingest decodes them
INGEST_PENDING_BYTES = 8 * 1024**2  # written out as a shard whenever this much is waiting
# (held in one preallocated buffer per format, written from there: no copy is made to write it,
# and a 10k-image ingest fills it as a 1M-image one does: ingest memory stays flat)


class IngestBanks:
    """Ingest decodes every image anyway: small ones are kept, at their own size (grayscale:
    1 channel, else RGB), in the bank of that format, so the first explore, split and train
    need not decode them again. Larger images are left to the first request."""

    def __init__(self, cache: Path) -> None:
        self.cache = cache
        self.pending: dict[tuple[int, ...], _Pending] = {}
        self.pending_bytes = 0

    def keep(self, content_hash: str, img: Any) -> None:
        array = bank_array(img)
        if array is not None:
            self.keep_array(content_hash, array)

    def keep_array(self, content_hash: str, array: np.ndarray) -> None:
        """Keep an image already made into its bank array (`bank_array`, in a worker)."""
        pending = self.pending.get(array.shape)
        if pending is None:
            pending = self.pending[array.shape] = _Pending(array.shape)
        pending.append(content_hash, array)
        self.pending_bytes += array.nbytes
        if self.pending_bytes >= INGEST_PENDING_BYTES:
            self.flush()

    def flush(self) -> None:
        """Write every format's waiting images as a shard of its bank; the buffers are kept
        (filled again from the start)."""
        for (channels, height, width), pending in self.pending.items():
            if pending.count:
                PixelBank(self.cache, channels=channels, size=(height, width)).add(
                    pending.hashes, pending.rows[: pending.count]
                )
                pending.clear()
        self.pending_bytes = 0


class _Pending:
    """The images of one format waiting to be written: rows of a buffer that holds as many as
    INGEST_PENDING_BYTES (the flush comes before it is full), and their content hashes."""

    def __init__(self, shape: tuple[int, ...]) -> None:
        row_bytes = max(1, int(np.prod(shape)))
        capacity = max(1, -(-INGEST_PENDING_BYTES // row_bytes))
        self.rows = np.empty((capacity, *shape), dtype=np.uint8)
        self.hashes: list[str] = []

    @property
    def count(self) -> int:
        """Rows of the buffer in use: one per hash."""
        return len(self.hashes)

    def append(self, content_hash: str, array: np.ndarray) -> None:
        self.rows[self.count] = array
        self.hashes.append(content_hash)

    def clear(self) -> None:
        self.hashes = []


def bank_array(img: Any) -> np.ndarray | None:
    """The array ingest keeps for a small decoded image (its own size; grayscale: 1 channel,
    else RGB), or None when it is too large to keep."""
    from dlworkflow.store.images import normalise, to_array

    if img.width * img.height > INGEST_MAX_PIXELS:
        return None
    channels = 1 if normalise(img).mode == "L" else 3
    return to_array(img, channels=channels, size=(img.height, img.width))
