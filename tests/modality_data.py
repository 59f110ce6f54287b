"""Real text and tabular test data, and small trained projects on them, shared by the
modality tests of evaluate, export and serve (importable as `modality_data`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from dlworkflow.project import Project

TESTS = Path(__file__).resolve().parent
TINY_TRANSFORMER = {
    "model.name": "transformer",
    "model.params": {"d_model": 32, "heads": 2, "ff_dim": 64, "max_len": 24},
}


def helpers(relative: str):
    """A conftest.py of the test tree as a module under its own name, loaded once (their
    builders, e.g. helpers("train/conftest.py").build_digits_project), beside the fixtures
    pytest registers from the same file."""
    import importlib.util
    import sys

    name = "dlw_tests_" + relative.removesuffix(".py").replace("/", "_")
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, TESTS / relative)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def trained_project(root: Path, *, task: str, source: Path, config: dict) -> Project:
    """init -> ingest `source` -> split -> train 1 epoch (2 threads), with `config`."""
    project = Project.init(root, task=task)
    project.update_config({"train.threads": 2, "train.epochs": 1, **config})
    project.ingest(str(source))
    project.split()
    project.train(progress=False)
    return project


def review_sample(folder: Path, n: int, *, seed: int) -> Path:
    """`n` real Rotten Tomatoes snippets (seeded sample) as reviews.parquet in `folder`."""
    from dlworkflow.datasets.rotten_tomatoes import load_reviews

    source = Path(folder) / "reviews.parquet"
    load_reviews().sample(n, random_state=seed).to_parquet(source, index=False)
    return source


def mixed_cancer_table(folder: Path, *, missing: bool = True) -> tuple[Path, pd.DataFrame]:
    """scikit-learn's breast cancer table plus a string feature (a size band of the real mean
    radius) and, with `missing`, missing numbers and strings: standardising, imputing and
    one-hot encoding are all exercised. Written as cancer.parquet in `folder`."""
    from dlworkflow.datasets.breast_cancer import load_table

    table = load_table()
    table["size band"] = pd.cut(
        table["mean radius"], [0, 11, 13, 16, 100], labels=["small", "medium", "large", "huge"]
    ).astype("string")
    if missing:
        table.loc[::17, "mean texture"] = np.nan
        table.loc[::23, "size band"] = pd.NA
    source = Path(folder) / "cancer.parquet"
    table.to_parquet(source, index=False)
    return source, table
