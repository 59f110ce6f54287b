"""A real trained and exported digits model (sklearn digits, 1 epoch), served in tests.

The project is built once per session (train + export take ~15 s on 2 cores); tests that
change it (promotion, rollback) work on a private copy.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from servekit import TOKEN, export_version

from dlworkflow.config import Serve
from modality_data import helpers


def _train_conftest() -> Any:
    return helpers("train/conftest.py")


@pytest.fixture(scope="session")
def exported_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    train = _train_conftest()
    root = tmp_path_factory.mktemp("serve")
    project = train.build_digits_project(root, config={**train.FAST_CONFIG, "train.epochs": 1})
    project.train()
    export_version(project)
    return project.root


@pytest.fixture
def project_root(exported_root: Path, tmp_path: Path) -> Path:
    """A private copy of the exported project (safe to promote, roll back, log into)."""
    target = tmp_path / "proj"
    shutil.copytree(exported_root, target, ignore=shutil.ignore_patterns("mlartifacts"))
    return target


@pytest.fixture(scope="session")
def digit_pngs(exported_root: Path) -> list[bytes]:
    """Real digit PNGs (the project's own images), two per class."""
    folder = exported_root.parent / "images"
    return [
        p.read_bytes()
        for label in range(10)
        for p in sorted((folder / str(label)).glob("*.png"))[:2]
    ]


@pytest.fixture
def make_app(project_root: Path) -> Iterator[Callable[..., Any]]:
    """make_app(**serve_settings) -> a FastAPI app on the private copy; closed at the end."""
    from dlworkflow.deploy.serve.app import create_app

    apps = []

    def make(root: Path | None = None, **settings: Any) -> Any:
        app = create_app(root or project_root, Serve(**settings), token=TOKEN)
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.state.server.close()
