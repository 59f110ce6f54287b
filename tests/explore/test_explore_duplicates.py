"""Near-duplicate search by hash bands: the same pairs as comparing every pair, quickly."""

from __future__ import annotations

import numpy as np
import pandas as pd

from dlworkflow.explore.duplicates import exact_duplicates, near_duplicates
from dlworkflow.similarity import hash_bands, near_pairs


def brute_force(hashes: np.ndarray, distance: int) -> set[tuple[int, int]]:
    h = hashes.view(np.uint64)
    d = np.bitwise_count(h[:, None] ^ h[None, :])
    i, j = np.nonzero(np.triu(d <= distance, 1))
    return set(zip(i.tolist(), j.tolist()))


def clustered_hashes(n: int, seed: int) -> np.ndarray:
    """Hashes in tight clusters (like real perceptual hashes), plus random ones."""
    rng = np.random.default_rng(seed)
    centres = rng.integers(-(2**63), 2**63 - 1, size=n // 10, dtype=np.int64).view(np.uint64)
    h = centres[rng.integers(0, len(centres), size=n)]
    for _ in range(4):  # flip up to 4 random bits
        flip = rng.random(n) < 0.7
        h = h ^ (flip.astype(np.uint64) << rng.integers(0, 64, size=n).astype(np.uint64))
    return h.view(np.int64)


def test_bands_cover_64_bits_and_satisfy_the_pigeonhole():
    for d in (0, 1, 6, 10, 63, 64):
        bands = hash_bands(d)
        assert sum(w for _, w in bands) == 64
        assert len(bands) == min(d + 1, 64)


def test_near_pairs_equal_brute_force():
    hashes = clustered_hashes(1500, seed=1)
    for d in (0, 3, 6):
        pairs, dist, notes = near_pairs(hashes, distance=d)
        assert set(map(tuple, pairs.tolist())) == brute_force(hashes, d)
        assert (dist <= d).all() and notes == []


def test_exact_and_near_duplicates_by_class():
    manifest = pd.DataFrame(
        {
            "sample_id": ["a", "b", "c", "d", "e"],
            "label": ["1", "2", "1", "1", "3"],
            "content_hash": ["x", "x", "y", "y", "z"],
            "phash": np.array([0, 0, 0b111, 0b111, 0b1], dtype=np.int64),
        }
    )
    exact = exact_duplicates(manifest)
    assert (exact.n_groups, exact.n_conflicting, exact.n_within) == (2, 1, 1)
    assert exact.class_pairs == {"1 / 2": 1}
    assert exact.groups[0].conflicting  # conflicts are listed first
    near = near_duplicates(manifest, distance=2, pixels=None)
    # pairs of different content within 2 bits: a-e, b-e (0 vs 1), c-e, d-e (3 vs 1 bits: 2)
    found = {tuple(sorted(g.sample_ids)) for g in near.groups}
    assert found == {("a", "e"), ("b", "e"), ("c", "e"), ("d", "e")}
    assert near.n_conflicting == 4
