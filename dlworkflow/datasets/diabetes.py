"""Diabetes (Efron et al. 2004): 442 patients, 10 baseline variables, disease progression.

scikit-learn's copy (load_diabetes, scaled=False: age in years, sex 1/2, BMI, blood
pressure and six blood serum measurements). materialise writes folder/diabetes.parquet with
the 10 features and `label`: a quantitative measure of disease progression one year after
baseline (25 to 346).
"""

from __future__ import annotations

from pathlib import Path

from dlworkflow.datasets.catalog import BUILTINS, BuiltinDataset, write_parquet_source

N_SAMPLES = 442


def load_table():  # -> pandas.DataFrame
    from sklearn.datasets import load_diabetes

    bunch = load_diabetes(as_frame=True, scaled=False)
    table = bunch.data.astype("float64").copy()
    table.columns = [str(c) for c in table.columns]
    table["label"] = bunch.target.astype("float64")
    return table


def materialise(folder: Path) -> Path:
    return write_parquet_source(folder, "diabetes", load_table())


BUILTINS.add(
    "diabetes",
    BuiltinDataset(
        name="diabetes",
        task="tabular-regression",
        description="442 diabetes patients, 10 baseline variables (age, sex, BMI, blood pressure, "
        "6 blood serum measurements); target: disease progression one year later (25 to 346)",
        n_samples=N_SAMPLES,
        size="10 features",
        licence="BSD-3-Clause (scikit-learn); Efron, Hastie, Johnstone and Tibshirani (2004)",
        source="Efron et al., Least Angle Regression, Annals of Statistics 2004, as shipped in "
        "scikit-learn (load_diabetes)",
        package="scikit-learn (pip)",
        materialise=materialise,
    ),
)
