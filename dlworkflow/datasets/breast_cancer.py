"""Breast Cancer Wisconsin (Diagnostic): 569 tumours, 30 numeric features, malignant / benign.

The data is scikit-learn's copy (sklearn/datasets/data/breast_cancer.csv, via
load_breast_cancer). materialise writes folder/breast_cancer.parquet: the 30 feature columns
under their original names ("mean radius" ... "worst fractal dimension") and a label column.
"""

from __future__ import annotations

from pathlib import Path

from dlworkflow.datasets.catalog import BUILTINS, BuiltinDataset, write_parquet_source

N_SAMPLES = 569


def load_table():  # -> pandas.DataFrame
    """30 float feature columns (original names) and label: 'malignant' or 'benign'."""
    from sklearn.datasets import load_breast_cancer

    bunch = load_breast_cancer(as_frame=True)
    table = bunch.data.copy()
    table.columns = [str(name) for name in table.columns]
    names = [str(name) for name in bunch.target_names]  # index 0 malignant, 1 benign
    table["label"] = bunch.target.map(dict(enumerate(names))).astype("string")
    return table


def materialise(folder: Path) -> Path:
    """folder/breast_cancer.parquet (30 features + label); return its path."""
    return write_parquet_source(folder, "breast_cancer", load_table())


BUILTINS.add(
    "breast-cancer",
    BuiltinDataset(
        name="breast-cancer",
        task="tabular-classification",
        description="569 breast tumour samples, 30 numeric features of cell nuclei from digitised "
        "fine-needle aspirate images (mean, standard error and worst of 10 measurements), "
        "2 classes: malignant (212) / benign (357)",
        n_samples=N_SAMPLES,
        size="30 features",
        licence="CC BY 4.0 (UCI Machine Learning Repository; Wolberg, Street and Mangasarian 1995)",
        source="UCI Breast Cancer Wisconsin (Diagnostic), as shipped in scikit-learn "
        "(load_breast_cancer, sklearn/datasets/data/breast_cancer.csv)",
        package="scikit-learn (pip)",
        materialise=materialise,
    ),
)
