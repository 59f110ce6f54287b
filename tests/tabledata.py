"""Real tabular test data shared by the tabular tests (importable as `tabledata`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd


def mixed_cancer_table(folder: Path, *, missing: bool = True) -> tuple[Path, pd.DataFrame]:
    """scikit-learn's breast cancer table plus a string feature (a size band of the real mean
    radius) and, with `missing`, missing numbers and strings: standardising, imputing and
    one-hot encoding are all exercised. Written as cancer.parquet in `folder`."""
    from dlworkflow.datasets.breast_cancer import load_table

    table = load_table()
    table["size band"] = pd.cut(table["mean radius"], [0, 11, 13, 16, 100],
                                labels=["small", "medium", "large", "huge"]).astype("string")
    if missing:
        table.loc[::17, "mean texture"] = np.nan
        table.loc[::23, "size band"] = pd.NA
    source = Path(folder) / "cancer.parquet"
    table.to_parquet(source, index=False)
    return source, table
