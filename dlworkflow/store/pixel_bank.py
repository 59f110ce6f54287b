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
INGEST_PENDING_BYTES = 16 * 1024**2  # written out as shards whenever this much is waiting
# (at most twice this is held while a shard is written: ingest memory stays flat)


class IngestBanks:
    """Ingest decodes every image anyway: small ones are kept, at their own size (grayscale:
    1 channel, else RGB), in the bank of that format, so the first explore, split and train
    need not decode them again. Larger images are left to the first request."""

    def __init__(self, cache: Path) -> None:
        self.cache = cache
        self.pending: dict[tuple[int, int, int], tuple[list[str], list[np.ndarray]]] = {}
        self.pending_bytes = 0

    def keep(self, content_hash: str, img: Any) -> None:
        array = bank_array(img)
        if array is not None:
            self.keep_array(content_hash, array)

    def keep_array(self, content_hash: str, array: np.ndarray) -> None:
        """Keep an image already made into its bank array (`bank_array`, in a worker)."""
        hashes, arrays = self.pending.setdefault(array.shape, ([], []))
        hashes.append(content_hash)
        arrays.append(array)
        self.pending_bytes += array.nbytes
        if self.pending_bytes > INGEST_PENDING_BYTES:
            self.flush()

    def flush(self) -> None:
        for (channels, height, width), (hashes, arrays) in self.pending.items():
            PixelBank(self.cache, channels=channels, size=(height, width)).add(
                hashes, np.stack(arrays)
            )
        self.pending.clear()
        self.pending_bytes = 0


def bank_array(img: Any) -> np.ndarray | None:
    """The array ingest keeps for a small decoded image (its own size; grayscale: 1 channel,
    else RGB), or None when it is too large to keep."""
    from dlworkflow.store.images import normalise, to_array

    if img.width * img.height > INGEST_MAX_PIXELS:
        return None
    channels = 1 if normalise(img).mode == "L" else 3
    return to_array(img, channels=channels, size=(img.height, img.width))
