"""ELPV: 2,624 electroluminescence images of solar cells, graded by defect probability.

The images stay where the pip package `elpv-dataset` installed them: they are licensed
CC BY-NC-SA 4.0 (non-commercial), so dlworkflow never copies them. materialise writes only a
table, folder/labels.csv (path, label, type), whose paths point at the installed files.

The package's own data/labels.csv is whitespace-separated: `images/cellNNNN.png  <probability>
<mono|poly>`, the probability one of 0, 1/3, 2/3, 1 (the share of experts who saw a defect).
"""

from __future__ import annotations

import csv
import io
from importlib.util import find_spec
from pathlib import Path

from dlworkflow.datasets.catalog import BUILTINS, BuiltinDataset
from dlworkflow.errors import DataError
from dlworkflow.fileio import atomic_write_text

# Defect probability (in thirds) -> class name.
LABELS: dict[int, str] = {
    0: "functional",
    1: "possibly-defective",
    2: "likely-defective",
    3: "defective",
}
CELL_TYPES = ("mono", "poly")
_FIX = "pip install elpv-dataset==1.0.0.post1"


def package_data_dir() -> Path:
    """The installed elpv_dataset/data folder (found without importing the package)."""
    spec = find_spec("elpv_dataset")
    folders = list(spec.submodule_search_locations or []) if spec else []
    for folder in folders:
        if (Path(folder) / "data" / "labels.csv").is_file():
            return Path(folder).resolve() / "data"
    raise DataError(
        "The built-in dataset elpv needs the package elpv-dataset, which is not installed.",
        expected="elpv-dataset (it ships data/labels.csv and data/images/cellNNNN.png)",
        received=f"elpv_dataset found in: {folders}" if spec else "no module elpv_dataset",
        fix=_FIX,
    )


def read_labels(data_dir: Path) -> list[dict[str, str]]:
    """One row per cell: absolute image path, class name and cell type (mono / poly)."""
    rows = []
    table = data_dir / "labels.csv"
    for line_no, line in enumerate(table.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rel, probability, cell_type = line.split()
            thirds = round(float(probability) * 3)
            label = LABELS[thirds]
        except (ValueError, KeyError):
            raise DataError(
                f"{table} line {line_no} cannot be read.",
                expected="<image path> <probability 0|0.333|0.667|1> <mono|poly>",
                received=repr(line),
                fix=f"reinstall: {_FIX} --force-reinstall",
            ) from None
        if abs(float(probability) * 3 - thirds) > 1e-3 or cell_type not in CELL_TYPES:
            raise DataError(
                f"{table} line {line_no} has an unexpected value.",
                expected="a probability in thirds and a type mono or poly",
                received=repr(line),
                fix=f"reinstall: {_FIX} --force-reinstall",
            )
        rows.append(
            {
                "path": str(data_dir / rel),
                "label": label,
                "type": cell_type,
                "probability": f"{thirds / 3:.6f}",
            }
        )
    return rows


def materialise(folder: Path) -> Path:
    """folder/labels.csv over the installed images (absolute paths); the images are not copied."""
    return _write(
        folder, "labels.csv", [{k: r[k] for k in ("path", "label", "type")} for r in _rows()]
    )


def materialise_probability(folder: Path) -> Path:
    """folder/probability.csv: path, label (the defect probability: 0, 1/3, 2/3 or 1), type."""
    return _write(
        folder,
        "probability.csv",
        [{"path": r["path"], "label": r["probability"], "type": r["type"]} for r in _rows()],
    )


def _rows() -> list[dict[str, str]]:
    rows = read_labels(package_data_dir())
    missing = [row["path"] for row in rows if not Path(row["path"]).is_file()]
    if missing:
        raise DataError(
            f"{len(missing)} ELPV image(s) listed in labels.csv are missing.",
            expected="every image of the package on disk",
            received=f"missing, e.g. {missing[0]}",
            fix=f"reinstall: {_FIX} --force-reinstall",
        )
    return rows


def _write(folder: Path, name: str, rows: list[dict[str, str]]) -> Path:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=["path", "label", "type"], lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    target = folder / name
    atomic_write_text(target, buffer.getvalue())
    return target


BUILTINS.add(
    "elpv",
    BuiltinDataset(
        name="elpv",
        task="image-classification",
        description="2,624 electroluminescence images of solar cells (1,074 mono, 1,550 poly), "
        "300x300 grayscale, 4 classes by expert defect probability: functional (0), "
        "possibly-defective (1/3), likely-defective (2/3), defective (1); a 'type' column holds "
        "mono / poly; NON-COMMERCIAL use only, images referenced in place, never copied",
        n_samples=2624,
        size="300x300",
        licence="CC BY-NC-SA 4.0 (data; non-commercial), Apache-2.0 (package code); "
        "Buerhop-Lutz et al. 2018, Deitsch et al. 2019",
        source="github.com/zae-bayern/elpv-dataset: data/labels.csv and data/images/ of the "
        "installed package",
        package="elpv-dataset 1.0.0.post1 (pip)",
        materialise=materialise,
        redistributable=False,
        reads_from=package_data_dir,
    ),
)

BUILTINS.add(
    "elpv-probability",
    BuiltinDataset(
        name="elpv-probability",
        task="image-regression",
        description="the 2,624 ELPV solar-cell images with their defect probability as the "
        "target: the share of experts who saw a defect, which takes only 4 values (0, 1/3, 2/3, "
        "1), so the regression target is coarse; NON-COMMERCIAL use only, images referenced in "
        "place, never copied",
        n_samples=2624,
        size="300x300",
        licence="CC BY-NC-SA 4.0 (data; non-commercial), Apache-2.0 (package code); "
        "Buerhop-Lutz et al. 2018, Deitsch et al. 2019",
        source="github.com/zae-bayern/elpv-dataset: data/labels.csv and data/images/ of the "
        "installed package",
        package="elpv-dataset 1.0.0.post1 (pip)",
        materialise=materialise_probability,
        reads_from=package_data_dir,
        redistributable=False,
    ),
)
