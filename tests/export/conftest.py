"""Trained projects for the export tests: real sklearn digits (16x16 PNGs), small_cnn."""

from __future__ import annotations

from pathlib import Path

import pytest

from dlworkflow.project import Project
from modality_data import helpers


def _train_conftest():
    """tests/train/conftest.py (build_digits_project, FAST_CONFIG)."""
    return helpers("train/conftest.py")


_TRAIN = _train_conftest()
FAST_CONFIG, build_digits_project = _TRAIN.FAST_CONFIG, _TRAIN.build_digits_project


def trained_digits(root: Path) -> Project:
    project = build_digits_project(
        root,
        config={
            **FAST_CONFIG,
            "train.epochs": 4,
            "problem.primary_metric": "accuracy",
            "problem.target": 0.5,
        },
    )
    project.train(progress=False)
    return project


@pytest.fixture(scope="session")
def digits(tmp_path_factory: pytest.TempPathFactory) -> Project:
    """One trained digits project for tests/export (trained once: ~10 s). test_export_flow.py
    walks it through the workflow in order; other modules only read the model and restore
    any setting they change."""
    return trained_digits(tmp_path_factory.mktemp("digits"))
