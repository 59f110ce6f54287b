"""A split project built directly through the store API, from real sklearn digit images.

Stands in for `dlw ingest` + `dlw split` until those steps exist; the data and prepare steps
may replace `digits_project` with real `project.ingest(...)` + `project.split()` calls.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dlworkflow import store
from dlworkflow.fileio import sha256_file
from dlworkflow.project import Project
from dlworkflow.store.manifest import dataset_version
from dlworkflow.store.splits import assignment_hash, seal_hash

N_IMAGES = 400
SIZE = 16  # the 8x8 digits, upscaled 2x (nearest) to 16x16 grayscale PNGs


def digit_images(n: int) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = (digits.images[:n] * (255.0 / 16.0)).round().astype(np.uint8)
    images = images.repeat(2, axis=1).repeat(2, axis=2)
    return images, digits.target[:n]


def write_pngs(folder: Path, images: np.ndarray, labels: np.ndarray) -> pd.DataFrame:
    from PIL import Image

    rows = []
    for i, (img, label) in enumerate(zip(images, labels)):
        path = folder / str(label) / f"digit-{i:04d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img, mode="L").save(path)
        rows.append(
            {
                "sample_id": f"digit-{i:04d}",
                "path": str(path),
                "label": str(label),
                "group": None,
                "content_hash": sha256_file(path),
                "width": SIZE,
                "height": SIZE,
                "mode": "L",
                "bytes": path.stat().st_size,
            }
        )
    return pd.DataFrame(rows)


def assign(manifest: pd.DataFrame) -> pd.Series:
    """70/15/15 by position within each class: stratified and deterministic."""
    rank = manifest.groupby("label").cumcount() % 20
    return pd.Series(
        np.where(rank < 14, "train", np.where(rank < 17, "val", "test")), index=manifest.index
    )


def build_digits_project(root: Path, *, n: int = N_IMAGES, config: dict | None = None) -> Project:
    project = Project.init(root / "proj", name="digits")
    if config:
        project.update_config(config)
    images, labels = digit_images(n)
    manifest = write_pngs(root / "images", images, labels)
    classes = sorted(manifest["label"].unique().tolist(), key=int)
    version = dataset_version(manifest)
    quarantine = pd.DataFrame(
        {c: pd.Series(dtype="string") for c in ("sample_id", "path", "label", "reason")}
    )
    store.write_dataset(
        project,
        manifest,
        quarantine,
        store.DatasetInfo(
            version=version,
            source="test:sklearn-digits",
            n_samples=len(manifest),
            n_quarantined=0,
            classes=classes,
            class_counts=manifest["label"].value_counts().to_dict(),
            channels=1,
            size=(SIZE, SIZE),
        ),
    )
    with project.step("ingest") as run:
        run.outputs = {"hash": version}

    manifest["split"] = assign(manifest)
    assignments = manifest[["sample_id", "split"]]
    split_hash = assignment_hash(assignments)
    store.write_split(
        project,
        assignments,
        store.SplitInfo(
            hash=split_hash,
            seal_hash=seal_hash(manifest[manifest["split"] == "test"]),
            dataset_version=version,
            classes=classes,
            counts=manifest["split"].value_counts().to_dict(),
            class_counts={
                s: g["label"].value_counts().to_dict() for s, g in manifest.groupby("split")
            },
            seed=project.config.seed,
            fractions={"train": 0.7, "val": 0.15, "test": 0.15},
            grouped=False,
            n_groups={},
        ),
    )
    with project.step("split", inputs={"ingest": version}) as run:
        run.outputs = {"hash": split_hash}
    return project


FAST_CONFIG = {
    "model.params": {"channels": [8, 16], "convs_per_block": 1},
    "train.epochs": 3,
    "train.batch_size": 32,
    "train.learning_rate": 0.01,
    "train.threads": 2,
}


@pytest.fixture
def digits_project(tmp_path: Path) -> Project:
    return build_digits_project(tmp_path, config=FAST_CONFIG)
