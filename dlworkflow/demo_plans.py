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
genes. Text and table classification (Rotten Tomatoes, breast cancer): demo_plans_text.py;
sequence and audio: demo_plans_signals.py.
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
    # step 9, given what write_incoming / write_later returned: the inputs `dlw monitor
    # --inputs` reads (the images of a folder that also holds annotations) and the source
    # `dlw retrain --data` ingests; None: the returned path itself
    monitor_inputs: Callable[[Path], Path] | None = None
    retrain_source: Callable[[Path], Path] | None = None


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


# ------------------------------------------------ semantic segmentation: digit-masks

SCANNER_B_MOSAICS = 300  # of the 449 mosaics of scikit-learn's 1,797 digits: the first batch


def _scanner_b_digits() -> tuple[Any, Any]:
    """scikit-learn's 1,797 8x8 UCI digits (another scanner than MNIST's) as MNIST-like 28x28
    digits: each upscaled to 20x20 and centred, as MNIST centres its digits; their labels."""
    import numpy as np
    from PIL import Image

    from dlworkflow.datasets.digits import _digits_rows

    digits, labels = [], []
    for label, small in _digits_rows():
        big = Image.fromarray(small).resize((20, 20), Image.Resampling.BILINEAR)
        canvas = np.zeros((28, 28), dtype=np.uint8)
        canvas[4:24, 4:24] = np.asarray(big)
        digits.append(canvas)
        labels.append(int(label))
    return np.stack(digits), np.array(labels)


def _scanner_b_mosaics(root: Path, name: str, first: bool) -> Path:
    """root/incoming/<name>/: images/ and palette masks/ (derived as digit-masks derives them:
    pixel >= 128 of a digit takes class digit + 1) and classes.txt, of 2x2 mosaics of scanner
    B's digits: the first SCANNER_B_MOSAICS mosaics, or the rest (written once)."""
    from PIL import Image

    from dlworkflow.datasets.digit_masks import CLASSES, PALETTE, mosaics

    folder = root / "incoming" / name
    if (folder / "classes.txt").is_file():
        return folder
    images, masks, _ = mosaics(*_scanner_b_digits())
    part = slice(0, SCANNER_B_MOSAICS) if first else slice(SCANNER_B_MOSAICS, None)
    (folder / "images").mkdir(parents=True, exist_ok=True)
    (folder / "masks").mkdir(parents=True, exist_ok=True)
    palette = [v for rgb in PALETTE for v in rgb]
    for index, (image, mask) in enumerate(zip(images[part], masks[part])):
        file = f"scan-{index:04d}.png"
        Image.fromarray(image).save(folder / "images" / file)
        indexed = Image.frombytes("P", (mask.shape[1], mask.shape[0]), mask.tobytes())
        indexed.putpalette(palette)
        indexed.save(folder / "masks" / file)
    (folder / "classes.txt").write_text("\n".join(CLASSES) + "\n", encoding="utf-8")
    return folder


def _mask_labels(folder: Path) -> Path:
    """<folder>-labels.csv: id (the image's path under images/, as `dlw monitor --inputs
    folder/images` names it), label (its mask as the manifest stores it)."""
    import csv

    import numpy as np
    from PIL import Image

    from dlworkflow.datasets.digit_masks import CLASSES
    from dlworkflow.tasks.masks import mask_to_label

    path = folder.with_name(f"{folder.name}-labels.csv")
    if not path.is_file():
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["id", "label"])
            for mask in sorted((folder / "masks").glob("*.png")):
                values = np.asarray(Image.open(mask, formats=["PNG"]))
                writer.writerow([mask.name, mask_to_label(values, CLASSES, None)])
    return path


DEMOS.add(
    "semantic-segmentation",
    DemoPlan(
        task="semantic-segmentation",
        name="digit-masks-demo",
        write_source=lambda root: "builtin:digit-masks",
        write_incoming=lambda root: _scanner_b_mosaics(root, "scanner-b", True),
        write_later=lambda root: _scanner_b_mosaics(root, "scanner-b-later", False),
        write_labels=_mask_labels,
        monitor_inputs=lambda folder: folder / "images",
        settings={
            "data.image.size": [64, 64],
            "train.epochs": 15,
            "train.batch_size": 32,
            "train.learning_rate": 3e-3,
            "train.schedule": "onecycle",
            "explore.backbone": "pixels",
            "retrain.warm_start": True,
            "retrain.epochs": 1,
        },
        problem={
            "objective": "Mark which pixels of a scanned form belong to which handwritten "
            "digit, so that each digit can be cut out and read (digit-masks: masks DERIVED "
            "from MNIST by a threshold, not drawn by people).",
            "metric": "miou",
            "target": 0.5,
            "max_latency_ms": 100.0,
            "constituencies": [
                "data-entry team (users)",
                "operations lead (decides on deployment)",
            ],
            "assumptions": [
                "a threshold at 128 marks a digit's pixels well enough",
                "the MNIST mosaics represent the scans seen in production",
            ],
        },
    ),
)


# ------------------------------------------------------- object detection: trees

TREES_TILE = 400


def _evening_tiles(root: Path, name: str, first: bool) -> Path:
    """root/incoming/<name>/: the trees images' 400 px tiles (the ingest's tiling) as a later
    flight in evening light would see them (darker and warmer: red kept, green x0.8, blue
    x0.6, brightness x0.75), every other tile (first: the even ones), with boxes.csv
    (path,xmin,ymin,xmax,ymax,label in tile pixels; written once)."""
    import csv

    import numpy as np
    from PIL import Image

    from dlworkflow.data.tiles import plan_tiles
    from dlworkflow.datasets.trees import MERGED, read_boxes

    folder = root / "incoming" / name
    if (folder / "boxes.csv").is_file():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    by_image: dict[str, list[Any]] = {}
    for row in read_boxes():
        box = [float(row[k]) for k in ("xmin", "ymin", "xmax", "ymax")]
        by_image.setdefault(row["path"], []).append((*box, MERGED[row["label"]]))
    shift = np.array([0.75, 0.6, 0.45], dtype=np.float32)  # per channel: evening light
    rows, count = [], 0
    for path, boxes in by_image.items():
        image = Image.open(path, formats=["PNG"]).convert("RGB")
        tiles = plan_tiles(*image.size, boxes, size=TREES_TILE, overlap=0, min_visible=0.5)
        for tile in tiles:
            count += 1
            if (count % 2 == 1) != first:
                continue
            pixels = np.asarray(image.crop((tile.x1, tile.y1, tile.x2, tile.y2)), np.float32)
            file = f"{Path(path).stem}@{tile.x1}_{tile.y1}.png"
            Image.fromarray((pixels * shift).round().astype(np.uint8)).save(folder / file)
            rows += [[file, *(f"{v:.2f}" for v in b[:4]), b[4]] for b in tile.boxes]
            if not tile.boxes:  # a negative tile: listed with no box
                rows.append([file, "", "", "", "", ""])
    with (folder / "boxes.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "xmin", "ymin", "xmax", "ymax", "label"])
        writer.writerows(rows)
    return folder


def _box_labels(folder: Path) -> Path:
    """<folder>-labels.csv: id (the tile's file name, as `dlw monitor --inputs` names it),
    label (its boxes as the manifest stores them)."""
    import csv

    from PIL import Image

    from dlworkflow.tasks.detection import dump_boxes

    path = folder.with_name(f"{folder.name}-labels.csv")
    if path.is_file():
        return path
    boxes: dict[str, list[Any]] = {}
    with (folder / "boxes.csv").open(encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            listed = boxes.setdefault(row["path"], [])
            if row["label"]:
                listed.append([float(row[k]) for k in ("xmin", "ymin", "xmax", "ymax")])
                listed[-1].append(row["label"])
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "label"])
        for file, found in sorted(boxes.items()):
            with Image.open(folder / file, formats=["PNG"]) as image:
                writer.writerow([file, dump_boxes(image.size, found)])
    return path


DEMOS.add(
    "object-detection",
    DemoPlan(
        task="object-detection",
        name="trees-demo",
        write_source=lambda root: "builtin:trees",
        write_incoming=lambda root: _evening_tiles(root, "evening-flight", True),
        write_later=lambda root: _evening_tiles(root, "evening-flight-later", False),
        write_labels=_box_labels,
        retrain_source=lambda folder: folder / "boxes.csv",
        settings={
            # blocks of 3x3 tiles, not whole images, are the split's groups: grouped by
            # image, the four images (42, 12, 1 and 1 tiles) left one tile to the test set
            "data.tiles": {"size": TREES_TILE, "overlap": 0, "block": 3 * TREES_TILE},
            "data.image.size": [320, 320],
            # CenterNet's heatmaps take ~12 epochs of 32 tiles to start finding crowns on
            # CPU; val mAP@.5 reached 0.30 by epoch 25 (batch 4, 8 steps an epoch)
            "train.epochs": 30,
            "train.early_stopping_patience": 10,  # through the plateau of the first epochs
            "train.batch_size": 4,
            "train.learning_rate": 3e-3,
            "explore.backbone": "pixels",
            "retrain.warm_start": True,
            "retrain.epochs": 2,
            # an evening flight brings 28 tiles (the 4 images hold 56 in all): test them
            "monitor.min_samples": 20,
        },
        problem={
            "objective": "Find the tree crowns in airborne RGB images, to count trees per "
            "plot without walking it (trees: 4 NEON images, SMALL; a try of the workflow, "
            "not a judgement of a tree detector).",
            "metric": "map50",
            "target": 0.15,
            "max_latency_ms": 500.0,
            "constituencies": ["forest survey team (users)", "programme lead (decides)"],
            "assumptions": [
                "the three NEON sites represent the forests to survey",
                "every visible crown has a box",
            ],
        },
    ),
)


# the signal tasks' demos register themselves here (sequence and audio classification), the
# text and table classification demos there (Rotten Tomatoes, breast cancer)
from dlworkflow import demo_plans_signals as _signals  # noqa: E402, F401
from dlworkflow import demo_plans_text as _text  # noqa: E402, F401
