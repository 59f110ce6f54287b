"""Real projects for the report tests: scikit-learn's digits (400 real images, 40 per class,
as PNG class folders) through every step (define -> ingest -> explore -> split -> train ->
test -> export), and one not tested yet."""

from __future__ import annotations

from pathlib import Path

import pytest

from dlworkflow.project import Project


def _make_digits_folder(*args, **kwargs) -> Path:
    """tests/conftest.py's make_digits_folder (real digit PNGs), loaded under its own name."""
    from modality_data import helpers

    return helpers("conftest.py").make_digits_folder(*args, **kwargs)


TARGET = 0.6
FAST = {
    "model.params": {"channels": [8, 16], "convs_per_block": 1},
    "train.epochs": 3,
    "train.batch_size": 32,
    "train.learning_rate": 0.01,
    "train.threads": 2,
    "explore.backbone": "pixels",
}  # pixels: no pretrained backbone to load


def tested_project(root: Path) -> Project:
    images = _make_digits_folder(root / "images", n_per_class=40, classes=range(10))
    project = Project.init(root / "digits", name="digits")
    project.update_config(FAST)
    project.define(
        objective="read handwritten digits on scanned forms",
        metric="balanced_accuracy",
        target=TARGET,
        constituencies=["form processing team"],
    )
    project.ingest(str(images))
    project.explore(progress=False)
    project.split()
    project.train(progress=False)
    project.test()
    project.export()
    return project


@pytest.fixture(scope="session")
def reported(tmp_path_factory: pytest.TempPathFactory):
    """(project, ReportResult) of a tested, exported digits project (~20 s, once)."""
    project = tested_project(tmp_path_factory.mktemp("report"))
    return project, project.report()


@pytest.fixture
def untested(tmp_path: Path) -> Project:
    """Defined and ingested, never split, trained or tested."""
    images = _make_digits_folder(tmp_path / "images", n_per_class=6, classes=range(10))
    project = Project.init(tmp_path / "untested", name="untested")
    project.define(objective="read handwritten digits", metric="accuracy", target=0.9)
    project.ingest(str(images))
    return project
