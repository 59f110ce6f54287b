"""The project the UI tests look at: the serve tests' project (tests/serve/conftest.py's
exported_root, built the same way by the train tests' builder: sklearn digits, 1 epoch,
exported as the champion), with `dlw explore` and `dlw evaluate` run on it so that the overview has
step reports to link to. Built once per session."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
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


@pytest.fixture
def client(ui_root: Path) -> Callable[..., Any]:
    """client(root=ui_root) -> a TestClient of the UI app (not logged in)."""
    from fastapi.testclient import TestClient

    from dlworkflow.ui import create_app

    def make(root: Path | None = None) -> TestClient:
        return TestClient(create_app(root or ui_root, token=TOKEN), base_url="http://127.0.0.1")

    return make
