"""Explore's image embeddings kept between runs, so that each sample is embedded once.

One folder per embedder (its key names the network, its cut, the input side and the weights'
hash): `.dlw/cache/embeddings-<key>/`. Each run that embeds new samples adds one shard named
after the dataset version it was computed for: `<version>-<digest>.npy` (float16 vectors, a
plain array, never pickled) and `<version>-<digest>.json` (the dataset version, the embedder
and the content hashes of the rows, in order; written last). Rows are found by content hash,
so a re-ingest that adds samples embeds only those, and a sample whose file changed (a new
content hash) is embedded again. Deleting the folder (or `.dlw/cache`) empties the cache.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dlworkflow.fileio import atomic_write_text, atomic_write_with, sha256_json


@dataclass
class CacheHits:
    vectors: np.ndarray  # float32 [n, dim]: the cached rows filled, the others zero
    missing: np.ndarray  # int positions of the rows the cache does not have


class EmbeddingCache:
    """The cached embeddings of one embedder in a project's cache folder."""

    def __init__(self, cache: Path, *, key: str, dim: int) -> None:
        self.folder = cache / f"embeddings-{key}"
        self.dim = dim

    def lookup(self, hashes: list[str]) -> CacheHits:
        """The vectors the cache has for `hashes` (rows in that order); "" never matches."""
        out = np.zeros((len(hashes), self.dim), dtype=np.float32)
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
            if not rows_out:
                continue
            try:
                stored = np.load(shard, mmap_mode="r", allow_pickle=False)
            except (OSError, ValueError):
                continue  # a damaged shard: its rows are embedded again
            if stored.shape != (len(shard_hashes), self.dim):
                continue
            out[rows_out] = stored[rows_here]
            missing[rows_out] = False
            if not wanted:
                break
        return CacheHits(vectors=out, missing=np.flatnonzero(missing))

    def add(
        self, hashes: list[str], vectors: np.ndarray, *, dataset_version: str, embedder: str
    ) -> None:
        """Keep newly embedded rows as one new shard (rows without a hash are left out)."""
        keep = [i for i, h in enumerate(hashes) if h]
        if not keep or vectors.shape[1:] != (self.dim,):
            return
        kept = [hashes[i] for i in keep]
        self.folder.mkdir(parents=True, exist_ok=True)
        stem = f"{(dataset_version or 'unversioned')[:12]}-{sha256_json(kept)[:12]}"
        array = np.ascontiguousarray(vectors[keep], dtype=np.float16)
        atomic_write_with(self.folder / f"{stem}.npy", lambda p: _save(p, array))
        index = {"dataset_version": dataset_version, "embedder": embedder, "hashes": kept}
        atomic_write_text(self.folder / f"{stem}.json", json.dumps(index))  # written last

    def _shards(self) -> list[tuple[Path, list[str]]]:
        found = []
        for index in sorted(self.folder.glob("*.json")):
            shard = index.with_suffix(".npy")
            try:
                hashes = json.loads(index.read_text(encoding="utf-8"))["hashes"]
            except (OSError, ValueError, KeyError, TypeError):
                continue  # a damaged index: that shard is not used
            if shard.is_file() and isinstance(hashes, list):
                found.append((shard, [str(h) for h in hashes]))
        return found


def _save(path: Path, array: np.ndarray) -> None:
    with open(path, "wb") as handle:
        np.save(handle, array, allow_pickle=False)
