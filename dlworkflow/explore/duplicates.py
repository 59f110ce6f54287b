"""Exact duplicates (same content hash) and near duplicates (perceptual hash within a Hamming
distance, confirmed on pixels), split into copies within a class and conflicting labels.

Near duplicates are found without comparing every pair: the 64-bit hash is cut into d + 1
bands, and two hashes within distance d share at least one identical band (pigeonhole), so
only hashes in the same band bucket are compared, block by block, with a numpy popcount.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from dlworkflow.similarity import NEAR_CONFIRM_CORRELATION, confirm_pairs, near_pairs

if TYPE_CHECKING:
    import pandas as pd

MAX_CANDIDATES = 3_000_000  # candidate pairs confirmed on pixels (closest hashes first)
SHOWN_GROUPS = 20  # duplicate groups / pairs shown with thumbnails


@dataclass
class DuplicateGroup:
    """Samples with identical content (exact) or one near-duplicate pair."""

    sample_ids: list[str]
    labels: list[str]
    distance: int = 0  # Hamming distance of the perceptual hashes (near pairs)
    gap: float | None = None  # RMS difference of two fingerprints (series, clips), if so found

    @property
    def conflicting(self) -> bool:
        return len(set(self.labels)) > 1


@dataclass
class Duplicates:
    kind: str  # "exact" | "near"
    groups: list[DuplicateGroup] = field(default_factory=list)
    n_groups: int = 0
    n_samples: int = 0  # samples in any group
    n_extra: int = 0  # copies beyond the first of each group (exact)
    n_conflicting: int = 0  # groups whose labels differ
    n_conflicting_samples: int = 0
    class_pairs: dict[str, int] = field(default_factory=dict)  # "3 / 5" -> conflicting groups
    notes: list[str] = field(default_factory=list)
    method: str = ""  # how near duplicates were found, in words (the section's heading)
    n_searched: int = 0  # samples the near-duplicate search looked at (near)

    @property
    def n_within(self) -> int:
        return self.n_groups - self.n_conflicting


def exact_duplicates(manifest: pd.DataFrame, *, key: str = "content_hash") -> Duplicates:
    """Groups of rows with the same content hash (or text)."""
    keyed = manifest[manifest[key].notna()]
    sizes = keyed.groupby(key, sort=False)["sample_id"].transform("size")
    dup = keyed[sizes > 1]
    result = Duplicates(kind="exact")
    groups = [
        DuplicateGroup(
            sample_ids=[str(s) for s in g["sample_id"]], labels=[str(x) for x in g["label"]]
        )
        for _, g in dup.groupby(key, sort=True)
    ]
    return summarise(result, groups)


def summarise(result: Duplicates, groups: list[DuplicateGroup]) -> Duplicates:
    result.n_groups = len(groups)
    result.n_samples = len({s for g in groups for s in g.sample_ids})
    result.n_extra = sum(len(g.sample_ids) - 1 for g in groups)
    conflicting = [g for g in groups if g.conflicting]
    result.n_conflicting = len(conflicting)
    result.n_conflicting_samples = len({s for g in conflicting for s in g.sample_ids})
    pairs = Counter(" / ".join(sorted(set(g.labels))) for g in conflicting)
    result.class_pairs = dict(pairs.most_common())
    # conflicting groups first (they need a decision), then the largest
    groups.sort(key=lambda g: (not g.conflicting, -len(g.sample_ids), g.distance, g.gap or 0.0))
    result.groups = groups
    return result


def near_duplicates(
    manifest: pd.DataFrame, *, distance: int, pixels: Callable[[np.ndarray], np.ndarray] | None
) -> Duplicates:
    """Near duplicates among rows with a perceptual hash; `pixels` confirms them."""
    result = Duplicates(kind="near")
    valid = manifest["phash"].notna().to_numpy()
    rows = np.flatnonzero(valid)
    result.n_searched = len(rows)
    codes = manifest["content_hash"].astype("category").cat.codes.to_numpy()[rows]
    pairs, dist, result.notes = near_pairs(
        manifest["phash"].to_numpy()[rows].astype(np.int64), distance=distance, exclude=codes
    )
    pairs = rows[pairs] if len(pairs) else pairs
    n_candidates = len(pairs)
    if n_candidates > MAX_CANDIDATES:
        result.notes.append(
            f"{n_candidates:,} hash candidates: only the {MAX_CANDIDATES:,} "
            "closest were checked on pixels"
        )
        pairs, dist = pairs[:MAX_CANDIDATES], dist[:MAX_CANDIDATES]
    if pixels is not None and len(pairs):
        keep = confirm_pairs(pairs, pixels)
        result.notes.append(
            f"{n_candidates:,} pairs within Hamming distance {distance}; "
            f"{int(keep.sum()):,} confirmed on pixels (correlation >= "
            f"{NEAR_CONFIRM_CORRELATION} allowing a 1-pixel shift)"
        )
        pairs, dist = pairs[keep], dist[keep]
    ids = manifest["sample_id"].astype(str).to_numpy()
    labels = manifest["label"].astype(str).to_numpy()
    groups = [
        DuplicateGroup(sample_ids=[ids[i], ids[j]], labels=[labels[i], labels[j]], distance=int(d))
        for (i, j), d in zip(pairs, dist)
    ]
    return summarise(result, groups)


PROJECTED_DIMS = 16  # a k-d tree on this many PCA components finds the candidate pairs


def close_vectors(
    vectors: np.ndarray, *, radius: float, exclude: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Index pairs (i < j) of rows whose Euclidean distance is at most `radius`, closest
    first: (pairs [m, 2], distances [m], notes). `exclude`: a key per row (content hash
    codes); pairs with equal keys are skipped (they are exact duplicates).

    The rows are projected on their first PROJECTED_DIMS principal axes (kept as they are
    when they have no more dimensions): an orthogonal projection never lengthens a distance,
    so a radius query in a k-d tree of the projections finds every close pair (and some that
    are not); each candidate is then measured in full. No pass over all pairs."""
    V = np.asarray(vectors, dtype=np.float32)
    notes: list[str] = []
    if len(V) < 2:
        return np.zeros((0, 2), np.int64), np.zeros(0), notes
    pairs = _projected_candidates(V, radius)
    if len(pairs) > MAX_CANDIDATES:
        notes.append(
            f"{len(pairs):,} candidate pairs: only the first {MAX_CANDIDATES:,} were measured"
        )
        pairs = pairs[:MAX_CANDIDATES]
    if exclude is not None and len(pairs):
        pairs = pairs[exclude[pairs[:, 0]] != exclude[pairs[:, 1]]]
    dist = np.linalg.norm(V[pairs[:, 0]] - V[pairs[:, 1]], axis=1) if len(pairs) else np.zeros(0)
    keep = dist <= radius
    pairs, dist = pairs[keep], dist[keep]
    order = np.argsort(dist, kind="stable")
    return pairs[order], dist[order], notes


def _projected_candidates(V: np.ndarray, radius: float) -> np.ndarray:
    from sklearn.neighbors import KDTree

    if V.shape[1] > PROJECTED_DIMS and len(V) > PROJECTED_DIMS:
        from sklearn.decomposition import PCA

        P = PCA(n_components=PROJECTED_DIMS, random_state=0).fit_transform(V)
    else:
        P = V.astype(np.float64)
    neighbours = KDTree(P).query_radius(P, r=radius * 1.001 + 1e-9)  # rounding: measured again
    found = [
        np.column_stack([np.full(len(js), i), js])[js > i]
        for i, js in enumerate(neighbours)
        if len(js) > 1
    ]
    return np.concatenate(found).astype(np.int64) if found else np.zeros((0, 2), np.int64)


def vector_duplicates(
    manifest: pd.DataFrame,
    rows: np.ndarray,
    vectors: np.ndarray,
    *,
    radius: float,
    method: str,
) -> Duplicates:
    """Near duplicates among the manifest rows `rows` (positions) from their fingerprints
    (`vectors`, one per row, scaled so that a distance is an RMS difference): pairs within
    `radius`, copies with the same content hash left to the exact duplicates."""
    result = Duplicates(kind="near", method=method, n_searched=len(rows))
    codes = manifest["content_hash"].astype("category").cat.codes.to_numpy()[rows]
    pairs, dist, result.notes = close_vectors(vectors, radius=radius, exclude=codes)
    ids = manifest["sample_id"].astype(str).to_numpy()[rows]
    labels = manifest["label"].astype(str).to_numpy()[rows]
    groups = [
        DuplicateGroup(
            sample_ids=[ids[i], ids[j]], labels=[labels[i], labels[j]], gap=round(float(d), 4)
        )
        for (i, j), d in zip(pairs, dist)
    ]
    return summarise(result, groups)
