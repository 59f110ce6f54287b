"""The project the UI tests look at: the serve tests' project (tests/serve/conftest.py's
exported_root, built the same way by the train tests' builder: sklearn digits, 1 epoch,
exported as the champion), with `dlw explore` and `dlw evaluate` run on it so that the overview has
step reports to link to. Built once per session.

Copies of it (the images stay where the original's manifest names them) for the evaluation,
deployment and monitor pages: tested_root (a success criterion, then `dlw test` twice),
versions_root (a second forced export, v2; no champion yet), deploy_root (a private copy of
versions_root per test: the deployment tests move the champion) and monitored_root (v1 the
champion, then `dlw monitor --inputs` on inverted digits, which alerts)."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from browserkit import (  # noqa: F401  (the browser tests' fixtures and hook)
    browser,
    live_ui,
    pytest_runtest_teardown,
    ui_page,
)
from uikit import TOKEN

from modality_data import helpers


@pytest.fixture(scope="session")
def ui_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    train = helpers("train/conftest.py")
    project = train.build_digits_project(
        tmp_path_factory.mktemp("ui"), config={**train.FAST_CONFIG, "train.epochs": 1}
    )
    project.train(progress=False)
    project.export(force=True, reason="ui tests: untested 1-epoch model")
    project.explore()
    project.evaluate()
    return project.root


def copy_project(source: Path, target: Path) -> Path:
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("mlartifacts"))
    return target


@pytest.fixture(scope="session")
def tested_root(ui_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from dlworkflow.project import Project

    project = Project.load(copy_project(ui_root, tmp_path_factory.mktemp("ui-tested") / "proj"))
    project.define(metric="accuracy", target=0.9)
    project.test()
    project.test()  # a second read: the history shows both
    return project.root


@pytest.fixture(scope="session")
def versions_root(ui_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from dlworkflow.project import Project

    project = Project.load(copy_project(ui_root, tmp_path_factory.mktemp("ui-versions") / "proj"))
    project.export(force=True, reason="ui tests: a second version")
    return project.root


@pytest.fixture
def deploy_root(versions_root: Path, tmp_path: Path) -> Path:
    return copy_project(versions_root, tmp_path / "proj")


@pytest.fixture(scope="session")
def monitored_root(ui_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    import numpy as np
    from PIL import Image

    from dlworkflow.project import Project

    folder = tmp_path_factory.mktemp("ui-monitored")
    project = Project.load(copy_project(ui_root, folder / "proj"))
    project.promote(1)
    live = folder / "live"
    live.mkdir()
    images = sorted((ui_root.parent / "images").rglob("*.png"))[:150]
    for k, path in enumerate(images):  # inverted digits: the brightness check alerts
        pixels = 255 - np.asarray(Image.open(path).convert("L"))
        Image.fromarray(pixels.astype(np.uint8)).save(live / f"live-{k:03d}.png")
    project.monitor(inputs=live)
    return project.root


SECOND_LR = 0.003  # compared_root's second train run


@pytest.fixture(scope="session")
def compared_root(ui_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of ui_root trained once more (learning rate SECOND_LR, one epoch) and tuned (two
    one-epoch trials): two train runs to compare and a study."""
    from dlworkflow.project import Project

    project = Project.load(copy_project(ui_root, tmp_path_factory.mktemp("ui-compared") / "proj"))
    project.update_config({"train.learning_rate": SECOND_LR, "tune.trials": 2, "tune.epochs": 1})
    project.train(progress=False)
    project.tune(progress=False)
    return project.root


@pytest.fixture(scope="session")
def planted_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tests/label_review_data.py's project: real digits with real 0s filed as 1s, ingested,
    split and explored (label-issue candidates among them). Copy it before changing it."""
    from label_review_data import planted_project

    return planted_project(tmp_path_factory.mktemp("ui-planted")).root


@pytest.fixture
def client(ui_root: Path) -> Callable[..., Any]:
    """client(root=ui_root) -> a TestClient of the UI app (not logged in)."""
    from fastapi.testclient import TestClient

    from dlworkflow.ui import create_app

    def make(root: Path | None = None) -> TestClient:
        return TestClient(create_app(root or ui_root, token=TOKEN), base_url="http://127.0.0.1")

    return make
