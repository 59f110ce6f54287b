"""What `dlw demo --task TASK` runs: per task, real built-in data, the problem it solves, the
demo's settings, and the data that arrives later for step 9 (monitor, then retrain).

    plan = demo_plan("tabular-regression")
    source = plan.write_source(root)     # the data of steps 2-7
    incoming = plan.write_incoming(root)  # what arrives in step 9

Image classification (the default) is the MNIST story: 5,000 digits, then scanner B's 8x8
digits in two labelled batches: the first is monitored (drift, and the live accuracy falls
far below the test estimate) and retrained on; the second arrives later and is monitored
against the retrained champion (its digits never seen in training). Regression is RAND's
Health Insurance Experiment: the plans without an individual deductible first, then the
individual-deductible plans arrive (a population the model has never seen: its covariates
drift). Multi-label is Yeast: 1,900 genes with known functions, then 517 newly annotated
genes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dlworkflow.registry import Registry


@dataclass(frozen=True)
class DemoPlan:
    task: str
    name: str  # the project's name
    write_source: Callable[[Path], str]  # writes (or names) the data; returns the source
    write_incoming: Callable[[Path], Path]  # step 9: the labelled data that arrives
    problem: dict[str, Any]  # `dlw define` fields
    settings: dict[str, Any] = field(default_factory=dict)  # dlworkflow.yaml keys
    # step 9, the labels of the data that arrives (`dlw monitor --labels`): given the folder
    # or file write_incoming / write_later returned, a CSV of id,label; None: unlabelled
    write_labels: Callable[[Path], Path] | None = None
    # step 9, a later batch from the same source, monitored (with its labels) against the
    # champion the retrain left serving; None: no second batch
    write_later: Callable[[Path], Path] | None = None


DEMOS: Registry[DemoPlan] = Registry("demo task")


def demo_plan(task: str) -> DemoPlan:
    return DEMOS.get(task)


def demo_tasks() -> list[str]:
    return DEMOS.names()


# -------------------------------------------------------------- image classification: MNIST


def _mnist_source(root: Path) -> str:
    return "builtin:mnist5k"


SCANNER_B_FIRST = 1200  # of scikit-learn's 1,797 digits: the first batch; the rest later


def _scanner_b_batch(root: Path, name: str, first: bool) -> Path:
    """root/incoming/<name>/<label>/digits-<i>.png: scanner B's first SCANNER_B_FIRST digits,
    or the rest (written once)."""
    from dlworkflow.datasets.digits import _digits_rows, write_png_folder

    incoming = root / "incoming" / name
    if not incoming.is_dir():
        rows = list(_digits_rows())
        batch = rows[:SCANNER_B_FIRST] if first else rows[SCANNER_B_FIRST:]
        write_png_folder(incoming, batch, "digits")
    return incoming


def _scanner_b(root: Path) -> Path:
    return _scanner_b_batch(root, "scanner-b", True)


def _scanner_b_later(root: Path) -> Path:
    return _scanner_b_batch(root, "scanner-b-later", False)


def _folder_labels(folder: Path) -> Path:
    """<folder>-labels.csv beside a folder of class folders: id (the image's path in the
    folder, the id `dlw monitor --inputs` gives it), label (its class folder)."""
    path = folder.with_name(f"{folder.name}-labels.csv")
    if not path.is_file():
        rows = sorted(
            f.relative_to(folder).as_posix() for f in folder.rglob("*.png") if f.is_file()
        )
        path.write_text("id,label\n" + "".join(f"{r},{r.split('/', 1)[0]}\n" for r in rows))
    return path


# The settings: a one-cycle schedule at lr 5e-3 reaches 0.97 validation accuracy on MNIST-5k
# with small_cnn at epoch 3 (bench/mnist_time_to_97.py), where the shipped cosine schedule
# runs 15 epochs; explore maps and checks labels on the raw pixels of every digit (28x28
# digits are an informative feature space as they are) instead of embedding 1,500 of them
# with the ImageNet backbone, which on a CPU took most of explore's time.
DEMOS.add(
    "image-classification",
    DemoPlan(
        task="image-classification",
        name="mnist-demo",
        write_source=_mnist_source,
        write_incoming=_scanner_b,
        write_labels=_folder_labels,
        write_later=_scanner_b_later,
        settings={
            "train.schedule": "onecycle",
            "train.learning_rate": 5e-3,
            "train.epochs": 3,
            "explore.backbone": "pixels",
            "model.params": {"channels": [16, 32]},
            "retrain.warm_start": True,
            "retrain.epochs": 1,
        },
        problem={
            "objective": "Read handwritten digits (0-9) from 28x28 grayscale scans, so that "
            "numeric form fields can be captured without manual typing.",
            "metric": "accuracy",
            "target": 0.95,
            "max_latency_ms": 50.0,
            "max_model_size_mb": 5.0,
            "constituencies": [
                "data-entry team (users)",
                "operations lead (decides on deployment)",
            ],
            "assumptions": [
                "the 5,000 MNIST digits represent the scans seen in production",
                "labels are correct",
            ],
        },
    ),
)


# ------------------------------------------------------------ tabular regression: randhie


def _part(root: Path, name: str, load: Callable[[], Any], select: Callable[[Any], Any]) -> Path:
    """root/data/<name>.parquet: the rows `select` picks from the built-in table `load`
    gives (written once)."""
    from dlworkflow.datasets.catalog import write_parquet_source

    folder = root / "data"
    folder.mkdir(parents=True, exist_ok=True)
    if (folder / f"{name}.parquet").is_file():
        return folder / f"{name}.parquet"
    return write_parquet_source(folder, name, select(load()).reset_index(drop=True))


def _table_labels(file: Path) -> Path:
    """<stem>-labels.csv beside a table with a `label` column: id (the row as `dlw monitor
    --inputs` names it, "<file>:row <n>", 1-based), label (as written in the table)."""
    import csv

    import pandas as pd

    path = file.with_name(f"{file.stem}-labels.csv")
    if not path.is_file():
        labels = pd.read_parquet(file, columns=["label"])["label"]
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["id", "label"])
            for k, label in enumerate(labels, start=1):
                writer.writerow([f"{file.name}:row {k}", str(label)])
    return path


def _randhie_part(root: Path, idp: float, name: str) -> Path:
    from dlworkflow.datasets.randhie import load_table

    return _part(root, name, load_table, lambda table: table[table["idp"] == idp])


DEMOS.add(
    "tabular-regression",
    DemoPlan(
        task="tabular-regression",
        name="randhie-demo",
        write_source=lambda root: str(_randhie_part(root, 0.0, "randhie-no-deductible")),
        write_incoming=lambda root: _randhie_part(root, 1.0, "randhie-individual-deductible"),
        write_labels=_table_labels,
        settings={"train.epochs": 8, "retrain.warm_start": True, "retrain.epochs": 3},
        problem={
            "objective": "Predict the number of outpatient doctor visits in a year from a "
            "person's insurance plan and health, to budget a plan's outpatient care.",
            "metric": "rmse",
            "target": 5.0,
            "max_latency_ms": 50.0,
            "constituencies": ["actuaries (users)", "benefits committee (decides)"],
            "assumptions": [
                "RAND's HIE participants represent the insured population",
                "visit counts are recorded completely",
            ],
        },
    ),
)


# ------------------------------------------------------------- tabular multi-label: Yeast


def _yeast_part(root: Path, first: bool, name: str) -> Path:
    from dlworkflow.datasets.yeast import load_table

    return _part(
        root,
        name,
        load_table,
        lambda table: table.iloc[:YEAST_KNOWN] if first else table.iloc[YEAST_KNOWN:],
    )


YEAST_KNOWN = 1900  # genes in the first release; the other 517 arrive in step 9

DEMOS.add(
    "tabular-multilabel",
    DemoPlan(
        task="tabular-multilabel",
        name="yeast-demo",
        write_source=lambda root: str(_yeast_part(root, True, "yeast-known")),
        write_incoming=lambda root: _yeast_part(root, False, "yeast-new"),
        write_labels=_table_labels,
        settings={"train.epochs": 20, "retrain.warm_start": True, "retrain.epochs": 5},
        problem={
            "objective": "Suggest the functional classes of a yeast gene from its expression "
            "and phylogenetic profile, to prioritise lab annotation.",
            "metric": "macro_f1",
            "target": 0.4,
            "max_latency_ms": 50.0,
            "constituencies": ["annotation curators (users)", "lab lead (decides)"],
            "assumptions": [
                "the annotated genes represent the genes still to annotate",
                "annotations are complete (a missing class is a true negative)",
            ],
        },
    ),
)
