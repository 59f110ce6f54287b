"""Projects of the regression and multi-label tasks on their real built-in data, small enough
for the CPU suite: scikit-learn's diabetes (442 patients, regression) and the first rows of
river's Yeast (multi-label, 14 labels). Each function runs the steps up to the one asked."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dlworkflow.project import Project

STEPS = ("define", "ingest", "split", "train")


def regression_project(
    root: Path, *, until: str = "train", epochs: int = 8, **config: Any
) -> Project:
    """tabular-regression on builtin:diabetes; success: RMSE <= 70 (the target's standard
    deviation is 77; ridge regression reaches about 54)."""
    project = Project.init(root, task="tabular-regression")
    if config:
        project.update_config(config)
    return _run(project, "builtin:diabetes", metric="rmse", target=70.0, until=until, epochs=epochs)


def yeast_csv(path: Path, *, n: int = 800, one_hot: bool = False) -> Path:
    """The first n genes of Yeast as a CSV: Att1..Att103 and a "|"-delimited label column
    (one_hot: Class1..Class14 columns of 0/1 instead)."""
    from dlworkflow.datasets.yeast import load_table

    load_table(one_hot=one_hot).head(n).to_csv(path, index=False)
    return path


def multilabel_project(
    root: Path, *, until: str = "train", epochs: int = 8, n: int = 800, **config: Any
) -> Project:
    """tabular-multilabel on the first n Yeast genes; success: macro F1 >= 0.3."""
    project = Project.init(root, task="tabular-multilabel")
    if config:
        project.update_config(config)
    source = yeast_csv(root / "yeast.csv", n=n)
    return _run(project, str(source), metric="macro_f1", target=0.3, until=until, epochs=epochs)


def _run(
    project: Project, source: str, *, metric: str, target: float, until: str, epochs: int
) -> Project:
    steps = STEPS[: STEPS.index(until) + 1]
    if "define" in steps:
        project.define(metric=metric, target=target, objective="tests")
    if "ingest" in steps:
        project.ingest(source, progress=False)
    if "split" in steps:
        project.split()
    if "train" in steps:
        project.train(epochs=epochs, progress=False)
    return project
