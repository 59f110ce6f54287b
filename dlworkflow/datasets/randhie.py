"""RAND Health Insurance Experiment: 20,190 person-years, outpatient visits to predict.

The table is statsmodels' copy (statsmodels/datasets/randhie/randhie.csv, public domain),
read in place from the statsmodels wheel, installed --no-deps as a data-only package
(datasets/data_packages.py; statsmodels is never imported). materialise writes
folder/randhie.parquet: the 9 numeric covariates under their original names and the target,
mdvis (the number of outpatient visits to a doctor in the year), as `label`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from dlworkflow.datasets.catalog import BUILTINS, BuiltinDataset, write_parquet_source
from dlworkflow.datasets.data_packages import find_file, install_hint
from dlworkflow.errors import DataError

if TYPE_CHECKING:
    import pandas as pd

N_SAMPLES = 20_190
PIN = "statsmodels==0.15.0"
RELATIVE = "datasets/randhie/randhie.csv"
TARGET = "mdvis"
FEATURES = ("lncoins", "idp", "lpi", "fmde", "physlm", "disea", "hlthg", "hlthf", "hlthp")


def csv_path() -> Path:
    path = find_file("statsmodels", RELATIVE)
    if path is None:
        raise DataError(
            "The built-in dataset randhie needs statsmodels' data files, which are not installed.",
            expected=f"statsmodels/{RELATIVE}",
            received="no statsmodels folder holds it",
            fix=install_hint(PIN),
        )
    return path


def load_table() -> pd.DataFrame:
    """The 9 covariates (float) and label: mdvis (float)."""
    import pandas as pd

    table = pd.read_csv(csv_path())
    expected = {TARGET, *FEATURES}
    if set(table.columns) != expected or len(table) != N_SAMPLES:
        raise DataError(
            "statsmodels' randhie.csv is not the expected table.",
            expected=f"{N_SAMPLES} rows, columns {sorted(expected)}",
            received=f"{len(table)} rows, columns {list(table.columns)}",
            fix=f"{install_hint(PIN)} --force-reinstall",
        )
    out = table[list(FEATURES)].astype("float64")
    out["label"] = table[TARGET].astype("float64")
    return out


def materialise(folder: Path) -> Path:
    return write_parquet_source(folder, "randhie", load_table())


BUILTINS.add(
    "randhie",
    BuiltinDataset(
        name="randhie",
        task="tabular-regression",
        description="20,190 person-years of the RAND Health Insurance Experiment: 9 covariates "
        "(coinsurance, deductible plan, participation incentive, physical limitation, chronic "
        "disease count, self-rated health) and the target, outpatient visits to a doctor in the "
        "year (mdvis: 0 to 77, mean 2.9; a skewed count, 31% zeros)",
        n_samples=N_SAMPLES,
        size="9 features",
        licence="public domain (statsmodels' datasets/randhie: 'This is in the public domain.')",
        source="RAND Health Insurance Experiment, via Cameron and Trivedi (2005), as shipped in "
        "statsmodels (datasets/randhie/randhie.csv)",
        package=f"{PIN} (pip, --no-deps, data only)",
        materialise=materialise,
    ),
)
