"""Shared fixtures: small REAL image data (scikit-learn's handwritten digits) and projects.

Images are the real 8x8 UCI digits, scaled to 0-255 uint8 and upscaled to 16x16 (nearest),
written as PNG files in class sub-folders. Writing is deterministic: the k-th image of a class
is always the same digit, so calling the factory again with a larger `n_per_class` adds new
files and leaves the existing ones untouched.
"""

from __future__ import annotations

import csv
import hashlib
import os
import shutil
from collections.abc import Callable, Iterable
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pytest


@lru_cache(maxsize=1)
def digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 [n, 8, 8], targets int [n]) of scikit-learn's load_digits."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = np.clip(bunch.images * (255.0 / 16.0), 0, 255).round().astype(np.uint8)
    return images, bunch.target.astype(int)


def digit_image(label: int, k: int, *, size: int = 16) -> np.ndarray:
    """The k-th real digit image of class `label`, size x size uint8."""
    from PIL import Image

    images, targets = digits_arrays()
    index = np.flatnonzero(targets == label)[k]
    img = Image.fromarray(images[index])
    if size != 8:
        img = img.resize((size, size), Image.Resampling.NEAREST)
    return np.asarray(img)


def write_png(path: Path, array: np.ndarray) -> Path:
    from PIL import Image

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
    return path


def make_digits_folder(
    root: Path, *, n_per_class: int = 6, classes: Iterable[int] = (0, 1, 2), size: int = 16
) -> Path:
    """root/<label>/d<label>-<k>.png for k < n_per_class; existing files are left as they are."""
    for label in classes:
        for k in range(n_per_class):
            path = root / str(label) / f"d{label}-{k:03d}.png"
            if not path.exists():
                write_png(path, digit_image(label, k, size=size))
    return root


@pytest.fixture
def digits_folder(tmp_path: Path) -> Callable[..., Path]:
    """Factory: digits_folder(n_per_class=6, classes=(0, 1, 2), size=16, name="images")."""

    def make(
        n_per_class: int = 6,
        *,
        classes: Iterable[int] = (0, 1, 2),
        size: int = 16,
        name: str = "images",
    ) -> Path:
        return make_digits_folder(
            tmp_path / name, n_per_class=n_per_class, classes=classes, size=size
        )

    return make


@pytest.fixture
def digits_csv(tmp_path: Path) -> Callable[..., Path]:
    """Factory: a CSV (path,label[,group]) next to real digit PNGs in a flat folder.

    rows: list of dicts with keys label (int), k (int) and optionally group / path / label_text.
    """

    def make(
        rows: list[dict],
        *,
        name: str = "table",
        header: tuple[str, ...] = ("path", "label", "group"),
    ) -> Path:
        folder = tmp_path / name
        folder.mkdir(parents=True, exist_ok=True)
        records = []
        for row in rows:
            rel = row["path"] if "path" in row else f"img/d{row['label']}-{row['k']:03d}.png"
            if "k" in row and not (folder / rel).exists():
                write_png(folder / rel, digit_image(row["label"], row["k"]))
            records.append(
                {
                    "path": rel,
                    "label": row.get("label_text", str(row["label"])),
                    "group": row.get("group", ""),
                }
            )
        file = folder / "samples.csv"
        with open(file, "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(header), extrasaction="ignore")
            writer.writeheader()
            writer.writerows(records)
        return file

    return make


@pytest.fixture
def project(tmp_path: Path):
    """A fresh project (dlw init) in tmp_path/proj."""
    from dlworkflow.project import Project

    return Project.init(tmp_path / "proj")


@pytest.fixture
def split_project(project, digits_folder):
    """A project with the success criterion, 3 x 20 real digits ingested, and split."""
    project.define(metric="accuracy", target=0.9)
    project.ingest(str(digits_folder(20)), progress=False)
    project.split()
    return project


def _sha256_of(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _snapshot(root: Path) -> dict[str, tuple[str, int]]:
    return {
        p.relative_to(root).as_posix(): (_sha256_of(p), os.stat(p).st_mtime_ns)
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def sha256_of() -> Callable[[Path], str]:
    """sha256 hex digest of a file's bytes, computed independently of dlworkflow."""
    return _sha256_of


@pytest.fixture
def snapshot() -> Callable[[Path], dict[str, tuple[str, int]]]:
    """relative path -> (sha256, mtime_ns) of every file under a folder."""
    return _snapshot


@pytest.fixture
def real_digit() -> Callable[..., np.ndarray]:
    """real_digit(label, k, size=16): the k-th real digit image of a class."""
    return digit_image


@pytest.fixture
def save_png() -> Callable[[Path, np.ndarray], Path]:
    return write_png


@pytest.fixture(scope="session", autouse=True)
def migrated_mlflow_store(tmp_path_factory: pytest.TempPathFactory):
    """Every project of the suite that trains starts from one MLflow store migrated once.

    MLflow builds a new SQLite store by running its schema migrations (2-7 s on 2 cores, more
    under load), and nearly every test that trains makes a new project: the suite paid that
    per project. Here one store is migrated for real, by MLflow (tracking.create_store), the
    first time a project opens a store that does not exist yet; that project, and every later
    one whose store does not exist yet, gets a copy of it (0.1 s) before dlworkflow opens it,
    and MLflow opens the copy as it would its own. Only in this process: the CLI run as a
    subprocess (and `dlw demo`'s child that creates the store) migrates for real, and a store
    that exists already or whose folder is missing is left to MLflow."""
    from dlworkflow.train import tracking

    real = tracking.open_client
    template = tmp_path_factory.mktemp("mlflow") / "migrated.db"

    def open_client(project: Any) -> Any:
        uri = tracking.tracking_uri(project)
        store = Path(uri.removeprefix("sqlite:///")) if uri.startswith("sqlite:///") else None
        if store is not None and not store.exists() and store.parent.is_dir():
            if not template.exists():
                tracking.create_store(f"sqlite:///{template}")  # MLflow migrates it
            shutil.copyfile(template, store)
        return real(project)

    patch = pytest.MonkeyPatch()
    patch.setattr(tracking, "open_client", open_client)
    yield
    patch.undo()


SONIC_PI_CONFIG = {
    "evaluate.bootstrap_samples": 200,
    "train.threads": 2,
    "data.audio.duration": 1.0,
    "model.name": "audio_cnn",
    "model.params": {"channels": [8, 16]},
}


@pytest.fixture(scope="session")
def sonic_pi_trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The root of one audio-classification project on builtin:sonic-pi (1-second clips, a
    small audio_cnn), through the CLI: init, define (accuracy >= 0.5), ingest, split, train 1
    epoch. Shared by the tests that take it further (evaluate and report in
    tests/evaluate/test_signal_evaluate_cli.py; test, export, predict and serve in
    tests/export/test_signal_flows.py): each runs only later steps, and what each asserts
    holds whichever runs first."""
    from typer.testing import CliRunner

    from dlworkflow.cli import app
    from dlworkflow.project import Project

    root = tmp_path_factory.mktemp("sonic-pi") / "proj"
    p = ["-p", str(root)]
    runner = CliRunner()
    steps: list[list[str]] = [
        ["define", *p, "--metric", "accuracy", "--target", "0.5", "--objective", "sounds"],
        ["ingest", "builtin:sonic-pi", *p],
        ["split", *p],
        ["train", *p, "--epochs", "1"],
    ]
    for i, args in enumerate([["init", str(root), "--task", "audio-classification"], *steps]):
        result = runner.invoke(app, args, catch_exceptions=False)
        assert result.exit_code == 0, result.output[-4000:]
        if i == 0:
            Project.load(root).update_config(SONIC_PI_CONFIG)
    return root
