"""Fashion-MNIST (Zalando Research): 70,000 28x28 grayscale clothing images, 10 classes.

The data comes from the Debian package `dataset-fashion-mnist`, which ships the four original
IDX files (gzipped) in /usr/share/datasets/fashion-mnist. They are decoded with numpy and
written as PNG class folders: folder/<class>/<split>-<index>.png, where split is the original
"train" (60,000) or "test" (10,000) and index the position inside that file.
"""

from __future__ import annotations

import gzip
import io
from pathlib import Path

import numpy as np

from dlworkflow.datasets.catalog import BUILTINS, BuiltinDataset
from dlworkflow.errors import DataError

# Where the IDX files are looked for, in order (tests point this elsewhere).
SEARCH_DIRS: tuple[Path, ...] = (Path("/usr/share/datasets/fashion-mnist"),)

# Label index -> class folder name (the official names, made filesystem-safe).
CLASSES: tuple[str, ...] = (
    "T-shirt_top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle_boot",
)
SPLITS: dict[str, tuple[str, int]] = {  # split -> (IDX file prefix, number of images)
    "train": ("train", 60000),
    "test": ("t10k", 10000),
}
_IDX_DTYPE = {0x08: np.uint8}  # the only element type Fashion-MNIST uses (unsigned byte)


def find_idx_file(stem: str) -> Path:
    """The IDX file `stem` (e.g. train-images-idx3-ubyte), gzipped or raw, from SEARCH_DIRS."""
    for folder in SEARCH_DIRS:
        for name in (f"{stem}.gz", stem):
            if (folder / name).is_file():
                return folder / name
    raise DataError(
        f"The built-in dataset fashion-mnist needs the file {stem}(.gz), which was not found.",
        expected="the Debian package dataset-fashion-mnist, which installs the four IDX files "
        "in /usr/share/datasets/fashion-mnist",
        received=f"no {stem}[.gz] in: {', '.join(str(d) for d in SEARCH_DIRS)}",
        fix="sudo apt-get install dataset-fashion-mnist (Debian/Ubuntu)",
    )


def read_idx(path: Path) -> np.ndarray:
    """Decode an IDX file: 2 zero bytes, a type byte, a dims byte, big-endian uint32 sizes."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as handle:
        data = handle.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_DTYPE:
        raise DataError(
            f"{path} is not an unsigned-byte IDX file.",
            expected="magic bytes 00 00 08 <dims>",
            received=data[:4].hex(" "),
            fix="reinstall the package: sudo apt-get install --reinstall dataset-fashion-mnist",
        )
    ndim = data[3]
    shape = tuple(int(n) for n in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    offset = 4 + 4 * ndim
    if len(data) - offset != int(np.prod(shape)):
        raise DataError(
            f"{path} is truncated or corrupt.",
            expected=f"{int(np.prod(shape))} bytes of data for shape {shape}",
            received=f"{len(data) - offset} bytes",
            fix="reinstall the package: sudo apt-get install --reinstall dataset-fashion-mnist",
        )
    return np.frombuffer(data, dtype=_IDX_DTYPE[data[2]], offset=offset).reshape(shape)


def load_split(split: str) -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 [n, 28, 28], labels uint8 [n]) of the original train or test split."""
    prefix, n = SPLITS[split]
    images = read_idx(find_idx_file(f"{prefix}-images-idx3-ubyte"))
    labels = read_idx(find_idx_file(f"{prefix}-labels-idx1-ubyte"))
    if images.shape != (n, 28, 28) or labels.shape != (n,) or labels.max() >= len(CLASSES):
        raise DataError(
            f"The Fashion-MNIST {split} files do not hold what they should.",
            expected=f"{n} images of 28x28 and {n} labels in 0..9",
            received=f"images {images.shape}, labels {labels.shape}, max label {int(labels.max())}",
            fix="reinstall the package: sudo apt-get install --reinstall dataset-fashion-mnist",
        )
    return images, labels


def encode_png(image: np.ndarray) -> bytes:
    """A grayscale uint8 image as PNG bytes, fast zlib level (the files are written once)."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def materialise(folder: Path) -> Path:
    """Write all 70,000 images as folder/<class>/<split>-<index>.png; return folder."""
    from dlworkflow.progress import progress_bar

    loaded = {split: load_split(split) for split in SPLITS}  # fail before writing anything
    for name in CLASSES:
        (folder / name).mkdir(parents=True, exist_ok=True)
    total = sum(len(labels) for _, labels in loaded.values())
    with progress_bar(transient=True) as bar:
        task = bar.add_task("writing fashion-mnist", total=total)
        for split, (images, labels) in loaded.items():
            for index, (image, label) in enumerate(zip(images, labels)):
                target = folder / CLASSES[label] / f"{split}-{index:05d}.png"
                target.write_bytes(encode_png(image))
                if index % 1000 == 999:
                    bar.advance(task, 1000)
    return folder


BUILTINS.add(
    "fashion-mnist",
    BuiltinDataset(
        name="fashion-mnist",
        task="image-classification",
        description="70,000 Zalando article images (60,000 train + 10,000 test, the split kept in "
        "the file name), 28x28 grayscale, 10 clothing classes (T-shirt/top ... Ankle boot)",
        n_samples=70000,
        size="28x28",
        licence="MIT (Zalando Research)",
        source="github.com/zalandoresearch/fashion-mnist: the 4 original IDX files, as shipped in "
        "/usr/share/datasets/fashion-mnist",
        package="dataset-fashion-mnist (Debian: apt-get install dataset-fashion-mnist)",
        materialise=materialise,
    ),
)
