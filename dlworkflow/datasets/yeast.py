"""Yeast (Elisseeff and Weston 2002): 2,417 genes, 103 expression features, 14 functions.

river's copy of the MULAN version (river/datasets/yeast.csv.gz, the same as OpenML 40597),
read in place from the river wheel, installed --no-deps as a data-only package
(datasets/data_packages.py; river is never imported). materialise writes
folder/yeast.parquet: the features Att1 ... Att103 and `label`, the gene's functional
classes joined by "|" (Class1 ... Class14; 4.2 per gene on average).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from dlworkflow.datasets.catalog import BUILTINS, BuiltinDataset, write_parquet_source
from dlworkflow.datasets.data_packages import find_file, install_hint
from dlworkflow.errors import DataError

if TYPE_CHECKING:
    import pandas as pd

N_SAMPLES = 2_417
PIN = "river==0.26.1"
RELATIVE = "datasets/yeast.csv.gz"
FEATURES = tuple(f"Att{i}" for i in range(1, 104))
LABELS = tuple(f"Class{i}" for i in range(1, 15))


def load_table(*, one_hot: bool = False) -> pd.DataFrame:
    """103 float features and `label` ("Class1|Class2|..."); one_hot: the 14 label columns
    (0/1) as the file has them, instead of `label`."""
    import pandas as pd

    path = find_file("river", RELATIVE)
    if path is None:
        raise DataError(
            "The built-in dataset yeast needs river's data files, which are not installed.",
            expected=f"river/{RELATIVE}",
            received="no river folder holds it",
            fix=install_hint(PIN),
        )
    table = pd.read_csv(path)
    if list(table.columns) != [*FEATURES, *LABELS] or len(table) != N_SAMPLES:
        raise DataError(
            "river's yeast.csv.gz is not the expected table.",
            expected=f"{N_SAMPLES} rows: Att1..Att103, Class1..Class14",
            received=f"{len(table)} rows, {len(table.columns)} columns",
            fix=f"{install_hint(PIN)} --force-reinstall",
        )
    out = table[list(FEATURES)].astype("float64").copy()
    flags = table[list(LABELS)].astype("int64")
    if one_hot:
        return pd.concat([out, flags], axis=1)
    out["label"] = ["|".join(c for c, on in zip(LABELS, row) if on) for row in flags.to_numpy()]
    return out


def materialise(folder: Path) -> Path:
    return write_parquet_source(folder, "yeast", load_table())


BUILTINS.add(
    "yeast",
    BuiltinDataset(
        name="yeast",
        task="tabular-multilabel",
        description="2,417 yeast genes, 103 micro-array expression and phylogenetic features, "
        "14 functional classes per gene (multi-label; 4.2 labels per gene on average)",
        n_samples=N_SAMPLES,
        size="103 features",
        licence="BSD-3-Clause (river); data: Elisseeff and Weston (2002), MULAN (Tsoumakas et "
        "al. 2011)",
        source="MULAN's yeast, as shipped in river (datasets/yeast.csv.gz; OpenML 40597)",
        package=f"{PIN} (pip, --no-deps, data only)",
        materialise=materialise,
    ),
)
