"""Near-duplicate search on 64-bit perceptual hashes, confirmed on pixels. Shared by explore
(duplicate report, leakage) and split (near duplicates are kept in one split).

The hash is cut into d + 1 bands, and two hashes within Hamming distance d share at least one
identical band (pigeonhole), so only hashes in the same band bucket are compared, block by
block, with a numpy popcount. A hash match is only a candidate: different digits of similar
shape often hash close, so pairs are confirmed by the correlation of their small grayscale
images, allowing a 1-pixel shift (brightness and contrast do not matter).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

MAX_COMPARISONS = 2_000_000_000  # hash comparisons in band buckets before the search stops
BLOCK = 4_000_000  # hash comparisons per numpy block
SMALL = 64  # buckets up to this size are searched by offset, all at once
NEAR_CONFIRM_CORRELATION = 0.97  # pixel correlation (small grayscale, shifts of 1 px)


def hash_bands(distance: int) -> list[tuple[int, int]]:
    """(shift, width) of the distance + 1 bands of a 64-bit hash, as even as possible."""
    n = min(distance + 1, 64)
    widths = [64 // n + (1 if i < 64 % n else 0) for i in range(n)]
    shifts = np.cumsum([0] + widths[:-1]).tolist()
    return list(zip(shifts, widths))


def near_pairs(
    hashes: np.ndarray, *, distance: int, exclude: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Index pairs (i < j) whose 64-bit hashes differ in at most `distance` bits.

    `exclude`: a key per row (e.g. content hash codes); pairs with equal keys are skipped.
    Returns (pairs [m, 2], distances [m], notes).
    """
    h = np.asarray(hashes, dtype=np.int64).view(np.uint64)
    found: list[np.ndarray] = []
    notes: list[str] = []
    budget = MAX_COMPARISONS
    for shift, width in hash_bands(distance):
        key = (h >> np.uint64(shift)) & np.uint64((1 << width) - 1)
        order = np.argsort(key, kind="stable")
        _, bucket, counts = np.unique(key[order], return_inverse=True, return_counts=True)
        found.extend(_small_bucket_pairs(order, bucket, counts, h, distance))
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        for start, count in zip(starts[counts > SMALL], counts[counts > SMALL]):
            budget -= int(count) * int(count) // 2
            if budget < 0:
                notes.append(
                    "the near-duplicate search stopped early: the perceptual hashes "
                    "are too similar for a complete search (lower "
                    "explore.near_duplicate_distance)"
                )
                return _finish(found, h, exclude, notes)
            found.extend(_bucket_pairs(order[start : start + count], h, distance))
    return _finish(found, h, exclude, notes)


def _small_bucket_pairs(
    order: np.ndarray, bucket: np.ndarray, counts: np.ndarray, h: np.ndarray, distance: int
) -> list[np.ndarray]:
    """Pairs within `distance` in buckets of at most SMALL members, vectorised by offset."""
    small = counts[bucket] <= SMALL
    largest = int(counts[counts <= SMALL].max(initial=1))
    out = []
    for offset in range(1, largest):
        same = (bucket[:-offset] == bucket[offset:]) & small[:-offset]
        pos = np.flatnonzero(same)
        if not len(pos):
            continue
        i, j = order[pos], order[pos + offset]
        close = np.bitwise_count(h[i] ^ h[j]) <= distance
        if close.any():
            out.append(np.sort(np.stack([i[close], j[close]], axis=1), axis=1))
    return out


def _bucket_pairs(members: np.ndarray, h: np.ndarray, distance: int) -> list[np.ndarray]:
    """Pairs within `distance` among one bucket, in blocks of rows."""
    members = np.sort(members)
    values = h[members]
    rows = max(1, BLOCK // len(members))
    out = []
    for lo in range(0, len(members) - 1, rows):
        block = values[lo : lo + rows, None] ^ values[None, :]
        close = np.bitwise_count(block) <= distance
        i, j = np.nonzero(close)
        i = i + lo
        keep = j > i
        if keep.any():
            out.append(np.stack([members[i[keep]], members[j[keep]]], axis=1))
    return out


def _finish(
    found: list[np.ndarray], h: np.ndarray, exclude: np.ndarray | None, notes: list[str]
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    if not found:
        return np.empty((0, 2), dtype=np.int64), np.empty(0, dtype=np.int64), notes
    both = np.concatenate(found).astype(np.int64)
    codes = np.unique(both[:, 0] * len(h) + both[:, 1])
    pairs = np.stack([codes // len(h), codes % len(h)], axis=1)
    if exclude is not None:
        pairs = pairs[exclude[pairs[:, 0]] != exclude[pairs[:, 1]]]
    dist = np.bitwise_count(h[pairs[:, 0]] ^ h[pairs[:, 1]]).astype(np.int64)
    order = np.lexsort((pairs[:, 1], pairs[:, 0], dist))
    return pairs[order], dist[order], notes


CONFIRM_SIDE_MIN, CONFIRM_SIDE_MAX = 8, 32


def confirm_side(size: tuple[int, int] | list[int]) -> int:
    """The side of the gray images near duplicates are confirmed on: the data's usual image
    size, clipped to 8..32 px (explore and split use the same, so they agree on what a near
    duplicate is; a few small images in the data must not make every image small)."""
    return int(np.clip(max(size), CONFIRM_SIDE_MIN, CONFIRM_SIDE_MAX))


def confirm_pairs(
    pairs: np.ndarray,
    pixels: Callable[[np.ndarray], np.ndarray],
) -> np.ndarray:
    """Boolean mask of pairs whose small grayscale images correlate >= the threshold at some
    shift of at most 1 px (brightness and contrast do not matter). `pixels(indices)` returns
    float images [k, s, s] for row indices, NaN for images that could not be read."""
    if len(pairs) == 0:
        return np.zeros(0, dtype=bool)
    rows = np.unique(pairs)
    images = _standardise(pixels(rows))
    where = np.searchsorted(rows, pairs)
    keep = np.zeros(len(pairs), dtype=bool)
    step = 2048  # small blocks stay in the CPU cache and in reused memory: ~10x faster
    for lo in range(0, len(pairs), step):
        a = images[where[lo : lo + step, 0]]
        b = images[where[lo : lo + step, 1]]
        keep[lo : lo + step] = _best_shift_correlation(a, b) >= NEAR_CONFIRM_CORRELATION
    return keep


def _standardise(images: np.ndarray) -> np.ndarray:
    flat = images.reshape(len(images), -1).astype(np.float32)
    flat = flat - flat.mean(axis=1, keepdims=True)
    norm = np.linalg.norm(flat, axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        flat = np.where(norm > 1e-6, flat / norm, 0.0)  # flat images: correlation 0
    flat = np.nan_to_num(flat, nan=0.0)
    return flat.reshape(images.shape)


def _best_shift_correlation(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    best = np.full(len(a), -1.0, dtype=np.float32)
    h, w = a.shape[1:]
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            sa = a[:, max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)]
            sb = b[:, max(-dy, 0) : h + min(-dy, 0), max(-dx, 0) : w + min(-dx, 0)]
            corr = np.einsum("nij,nij->n", sa, sb)
            np.maximum(best, corr, out=best)
    both_flat = (np.abs(a).sum(axis=(1, 2)) == 0) & (np.abs(b).sum(axis=(1, 2)) == 0)
    best[both_flat] = 1.0  # two blank images are copies of each other
    return best
