"""Tabular evidence: per-column statistics, missingness, correlations, and columns that leak
the target (one column alone predicts the label, an id-like column, or - for two classes,
where the encoded label has a meaning - a near-perfect correlation with the encoded label).
For tasks without one class per sample (regression, multi-label) a leak is an id-like column or
a near-perfect correlation with the encoded target (the value; any one label's 0/1 column)."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

    from dlworkflow.tasks.base import Task

LEAK_ACCURACY = 0.99  # one column alone predicts the label this well (cross-validated)
LEAK_CORRELATION = 0.95  # |correlation| with the encoded label
ID_LIKE_MIN_ROWS = 20  # a column unique on every row is id-like when there are this many rows
MAX_LEAK_ROWS = 5000  # rows used to test each column alone
MAX_HEATMAP = 30  # columns in the correlation heatmap
HIGH_MISSING = 0.2  # share of missing values worth a warning


@dataclass
class ColumnStats:
    name: str
    kind: str  # "number" | "category"
    missing: float
    distinct: int
    mean: float = float("nan")
    std: float = float("nan")
    minimum: float = float("nan")
    maximum: float = float("nan")


@dataclass
class Leak:
    column: str
    reason: str


@dataclass
class TabularEvidence:
    columns: list[ColumnStats]
    correlation: np.ndarray | None
    correlation_names: list[str]
    leaks: list[Leak] = field(default_factory=list)
    rows_with_missing: int = 0
    n_nonfinite: int = 0


def feature_columns(manifest: pd.DataFrame) -> list[str]:
    return [c for c in manifest.columns if str(c).startswith("f:")]


def tabular_evidence(
    manifest: pd.DataFrame, *, seed: int, task: Task | None = None
) -> TabularEvidence:
    """`task`: how the label column is read (classification when None)."""
    import pandas as pd

    names = feature_columns(manifest)
    numeric = {n: pd.to_numeric(manifest[n], errors="coerce") for n in names}
    numeric = {
        n: v
        for n, v in numeric.items()
        if v.notna().sum() >= 0.9 * manifest[n].notna().sum() and v.notna().any()
    }
    stats = [_column_stats(manifest[n], numeric.get(n), n[2:]) for n in names]
    values = pd.DataFrame({n: v.replace([np.inf, -np.inf], np.nan) for n, v in numeric.items()})
    n_nonfinite = int(
        sum(np.isinf(v.to_numpy(dtype=float, na_value=np.nan)).sum() for v in numeric.values())
    )
    corr_names = list(values.columns)[:MAX_HEATMAP]
    corr = values[corr_names].corr().to_numpy() if len(corr_names) >= 2 else None
    return TabularEvidence(
        columns=stats,
        correlation=corr,
        correlation_names=[n[2:] for n in corr_names],
        leaks=(
            _leaks(manifest, names, numeric, seed=seed)
            if task is None or task.single_label
            else _target_leaks(manifest, names, numeric, task)
        ),
        rows_with_missing=int(manifest[names].isna().any(axis=1).sum()) if names else 0,
        n_nonfinite=n_nonfinite,
    )


def _column_stats(raw: pd.Series, numeric: pd.Series | None, name: str) -> ColumnStats:
    stats = ColumnStats(
        name=name,
        kind="number" if numeric is not None else "category",
        missing=float(raw.isna().mean()),
        distinct=int(raw.nunique()),
    )
    if numeric is not None:
        finite = numeric[np.isfinite(numeric.astype(float))]
        if len(finite):
            stats.mean, stats.std = float(finite.mean()), float(finite.std())
            stats.minimum, stats.maximum = float(finite.min()), float(finite.max())
    return stats


def _leaks(
    manifest: pd.DataFrame, names: list[str], numeric: dict[str, pd.Series], *, seed: int
) -> list[Leak]:
    labels = manifest["label"].astype(str)
    encoded = labels.astype("category").cat.codes.to_numpy().astype(float)
    binary = labels.nunique() == 2
    leaks = []
    for name in names:
        column = manifest[name]
        n_distinct = column.nunique()
        if (
            len(manifest) >= ID_LIKE_MIN_ROWS
            and n_distinct == len(manifest)
            and (name not in numeric or _integral(numeric[name]))
        ):
            leaks.append(Leak(name[2:], "id-like: a different value on every row"))
            continue
        if name in numeric and binary:  # label codes have no order beyond two classes
            corr = _correlation(numeric[name].to_numpy(dtype=float, na_value=np.nan), encoded)
            if abs(corr) >= LEAK_CORRELATION:
                leaks.append(Leak(name[2:], f"correlation {corr:+.3f} with the encoded label"))
                continue
        accuracy = _single_column_accuracy(column, numeric.get(name), labels, seed=seed)
        if accuracy >= LEAK_ACCURACY:
            leaks.append(
                Leak(
                    name[2:],
                    f"alone predicts the label with {accuracy:.1%} cross-validated accuracy",
                )
            )
    return leaks


def _target_leaks(
    manifest: pd.DataFrame, names: list[str], numeric: dict[str, pd.Series], task: Task
) -> list[Leak]:
    """Id-like columns, and numeric columns nearly perfectly correlated with the encoded target
    (regression: the value; multi-label: the 0/1 column of any one label)."""
    targets = manifest["label"].astype(str).tolist()
    outputs = task.output_names(targets)
    y = np.asarray(task.encode(targets, outputs), dtype=np.float64).reshape(len(targets), -1)
    leaks = []
    for name in names:
        if (
            len(manifest) >= ID_LIKE_MIN_ROWS
            and manifest[name].nunique() == len(manifest)
            and (name not in numeric or _integral(numeric[name]))
        ):
            leaks.append(Leak(name[2:], "id-like: a different value on every row"))
            continue
        if name not in numeric:
            continue
        x = numeric[name].to_numpy(dtype=float, na_value=np.nan)
        corr = [
            (_correlation(np.where(np.isfinite(y[:, j]), x, np.nan), np.nan_to_num(y[:, j])), j)
            for j in range(y.shape[1])
        ]
        r, j = max(corr, key=lambda c: abs(c[0]))
        if abs(r) >= LEAK_CORRELATION:
            what = "the target" if y.shape[1] == 1 else f"label {outputs[j]}"
            leaks.append(Leak(name[2:], f"correlation {r:+.3f} with {what}"))
    return leaks


def _integral(values: pd.Series) -> bool:
    v = values.dropna().to_numpy(dtype=float)
    return bool(len(v)) and bool(np.all(np.isfinite(v))) and bool(np.all(v == np.round(v)))


def _correlation(x: np.ndarray, y: np.ndarray) -> float:
    ok = np.isfinite(x)
    if ok.sum() < 3 or np.std(x[ok]) == 0 or np.std(y[ok]) == 0:
        return 0.0
    return float(np.corrcoef(x[ok], y[ok])[0, 1])


def _single_column_accuracy(
    raw: pd.Series, numeric: pd.Series | None, labels: pd.Series, *, seed: int
) -> float:
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.tree import DecisionTreeClassifier

    if numeric is not None:
        x = numeric.to_numpy(dtype=float, na_value=np.nan)
        x = np.where(np.isfinite(x), x, np.nanmedian(x) if np.isfinite(x).any() else 0.0)
    else:
        x = raw.astype("category").cat.codes.to_numpy().astype(float)
    y = labels.to_numpy()
    if len(x) > MAX_LEAK_ROWS:
        pick = np.random.default_rng(seed).choice(len(x), MAX_LEAK_ROWS, replace=False)
        x, y = x[pick], y[pick]
    folds = min(3, int(np.unique(y, return_counts=True)[1].min()))
    if folds < 2:
        return 0.0
    model = DecisionTreeClassifier(min_samples_leaf=2, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cv = StratifiedKFold(folds, shuffle=True, random_state=seed)
        return float(cross_val_score(model, x.reshape(-1, 1), y, cv=cv).mean())
