"""Slices: the primary metric and its bootstrap interval per value of a metadata column."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from dlworkflow.errors import ConfigError
from dlworkflow.evaluate.bootstrap import metric_interval
from dlworkflow.evaluate.scores import scalar_metrics
from dlworkflow.evaluate.task_scores import finite, intervals, task_scorer

if TYPE_CHECKING:
    import pandas as pd

    from dlworkflow.tasks import Task

FEATURE_PREFIX = "f:"  # tabular features are stored as f:<name> in the manifest
MAX_VALUES = 10  # numeric columns with more distinct values are sliced by quartile
HIDDEN = ("sample_id", "content_hash", "path", "origin_path", "text", "mtime_ns", "phash")


class SliceError(ConfigError):
    """evaluate.slices (or data.sensitive_columns) names a column the manifest does not have."""


def slice_report(
    rows: pd.DataFrame,
    y: np.ndarray,
    proba: np.ndarray,
    columns: list[str],
    *,
    metric: str,
    n_resamples: int,
    confidence: float,
    seed: int,
    min_samples: int,
) -> list[dict[str, Any]]:
    """One entry per column: its slices with n, metric value and interval; slices under
    min_samples are listed with a note instead of an interval."""

    def one(value: str, mask: np.ndarray) -> dict[str, Any]:
        return _one_slice(
            value,
            y[mask],
            proba[mask],
            metric=metric,
            n_resamples=n_resamples,
            confidence=confidence,
            seed=seed,
            min_samples=min_samples,
        )

    return _by_column(rows, columns, one, metric=metric)


def task_slice_report(
    task: Task,
    rows: pd.DataFrame,
    y: np.ndarray,
    out: np.ndarray,
    target: dict[str, Any],
    columns: list[str],
    *,
    metric: str,
    n_resamples: int,
    confidence: float,
    seed: int,
    min_samples: int,
) -> list[dict[str, Any]]:
    """slice_report for any task: its metric of `outputs` (task.scores) per slice."""

    def one(value: str, mask: np.ndarray) -> dict[str, Any]:
        n = int(mask.sum())
        scorer = task_scorer(task, y[mask], out[mask], target)
        point = float(scorer(np.ones((1, n)))[metric][0]) if n else float("nan")
        entry: dict[str, Any] = {
            "value": value,
            "n": n,
            "metric": finite(point),
            "low": None,
            "high": None,
            "note": None,
        }
        if n < min_samples:
            entry["note"] = f"skipped: {n} samples (< {min_samples}), too few for an interval"
            return entry
        m = intervals(
            lambda w: {metric: scorer(w)[metric]},
            n,
            n_resamples=n_resamples,
            confidence=confidence,
            seed=seed,
        )[metric]
        if m["low"] is not None:
            entry["low"], entry["high"] = m["low"], m["high"]
        else:
            entry["note"] = f"{metric} undefined on this slice"
        return entry

    return _by_column(rows, columns, one, metric=metric)


def _by_column(
    rows: pd.DataFrame,
    columns: list[str],
    one: Callable[[str, np.ndarray], dict[str, Any]],
    *,
    metric: str,
) -> list[dict[str, Any]]:
    out = []
    for name in columns:
        column = resolve_column(rows, name)
        labels, values, how = slice_labels(rows[column])
        entries = [one(str(value), labels == value) for value in values]
        out.append({"column": name, "by": how, "metric": metric, "slices": entries})
    return out


def _one_slice(
    value: str,
    y: np.ndarray,
    proba: np.ndarray,
    *,
    metric: str,
    n_resamples: int,
    confidence: float,
    seed: int,
    min_samples: int,
) -> dict[str, Any]:
    n = len(y)
    point = float(scalar_metrics(y, proba, np.ones((1, n)), only=metric)[metric][0])
    entry: dict[str, Any] = {
        "value": value,
        "n": n,
        "metric": point if np.isfinite(point) else None,
        "low": None,
        "high": None,
        "note": None,
    }
    if n < min_samples:
        entry["note"] = f"skipped: {n} samples (< {min_samples}), too few for an interval"
        return entry
    low, high = metric_interval(
        metric, y, proba, n_resamples=n_resamples, confidence=confidence, seed=seed
    )
    if np.isfinite(low):
        entry["low"], entry["high"] = low, high
    else:
        entry["note"] = f"{metric} undefined on this slice (one class only)"
    return entry


def check_columns(rows: pd.DataFrame, names: list[str], *, key: str = "evaluate.slices") -> None:
    """Preflight: every column of the config key `key` exists (before any expensive work)."""
    for name in names:
        resolve_column(rows, name, key=key)


def resolve_column(rows: pd.DataFrame, name: str, *, key: str = "evaluate.slices") -> str:
    for candidate in (name, FEATURE_PREFIX + name):
        if candidate in rows.columns:
            return candidate
    usable = [
        c.removeprefix(FEATURE_PREFIX) for c in rows.columns if c not in HIDDEN and c != "label"
    ]
    raise SliceError(
        f"{key} names the column {name!r}, which the manifest does not have.",
        expected=f"one of {', '.join(usable)}",
        received=repr(name),
        fix=f"edit {key} in dlworkflow.yaml (metadata columns of the manifest; "
        "tabular features by their name)",
    )


def slice_labels(values: pd.Series) -> tuple[np.ndarray, list[str], str]:
    """(a slice label per row, the labels in order, 'value' or 'quartile')."""
    import pandas as pd

    numeric = pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
    if numeric and values.nunique(dropna=True) > MAX_VALUES:
        codes, edges = pd.qcut(
            values.astype(float), 4, labels=False, retbins=True, duplicates="drop"
        )
        names = [
            f"{'[' if i == 0 else '('}{edges[i]:.4g}, {edges[i + 1]:.4g}]"
            for i in range(len(edges) - 1)
        ]
        labels = np.array([names[int(c)] if c == c else "(missing)" for c in codes], dtype=object)
        return labels, [n for n in names + ["(missing)"] if (labels == n).any()], "quartile"
    labels = values.astype("string").fillna("(missing)").to_numpy(dtype=object)
    ordered = sorted(set(labels), key=lambda v: (v == "(missing)", v))
    return labels, ordered, "value"
