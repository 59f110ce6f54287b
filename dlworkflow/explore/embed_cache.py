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

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dlworkflow.fileio import sha256_json
from dlworkflow.store.hash_shards import HashShards


@dataclass
class CacheHits:
    vectors: np.ndarray  # float32 [n, dim]: the cached rows filled, the others zero
    missing: np.ndarray  # int positions of the rows the cache does not have


class EmbeddingCache:
    """The cached embeddings of one embedder in a project's cache folder."""

    def __init__(self, cache: Path, *, key: str, dim: int) -> None:
        self.shards = HashShards(cache / f"embeddings-{key}", (dim,))
        self.folder, self.dim = self.shards.folder, dim

    def lookup(self, hashes: list[str]) -> CacheHits:
        """The vectors the cache has for `hashes` (rows in that order); "" never matches."""
        out = np.zeros((len(hashes), self.dim), dtype=np.float32)
        return CacheHits(vectors=out, missing=self.shards.fill(hashes, out))

    def add(
        self, hashes: list[str], vectors: np.ndarray, *, dataset_version: str, embedder: str
    ) -> None:
        """Keep newly embedded rows as one new shard (rows without a hash are left out)."""
        keep = [i for i, h in enumerate(hashes) if h]
        if not keep or vectors.shape[1:] != (self.dim,):
            return
        kept = [hashes[i] for i in keep]
        stem = f"{(dataset_version or 'unversioned')[:12]}-{sha256_json(kept)[:12]}"
        index = {"dataset_version": dataset_version, "embedder": embedder, "hashes": kept}
        self.shards.add(stem, kept, vectors[keep].astype(np.float16), index)
