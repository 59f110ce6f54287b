"""Slices without configuration, the worst slice, and inclusion (sensitive columns).

With evaluate.slices empty and evaluate.auto_slices on, the judged split is sliced by what the
data has (auto_columns): images by their original size and brightness (recorded per sample at
ingest: nothing is decoded again), texts by their length in words, tables by the most
important features (dlworkflow.evaluate.importance; with importance off, by a cheap proxy:
how much of the target's variance the feature's bins explain), series by their length (and
channel count, and the data set's own train/test part when they vary), audio clips by the
duration, loudness (RMS in dBFS) and sample rate of the original file; every modality by its source
folder or addition (`dlw retrain --data` adds samples as add<N>/...) and by data.group_column.
A column with a single value says nothing and is left out, and so is a series or clip property
that groups the rows exactly as the source folder or the group does (a series' source split
and its source folder, say).

The worst slice is the one with the worst metric among those whose whole interval lies on the
wrong side of the overall metric. Each column of data.sensitive_columns gets the metric per
group and the largest gap between two groups (with at least evaluate.slice_min_samples
samples), with a bootstrap interval over the same resamples of the whole split.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from dlworkflow.evaluate.bootstrap import bc_interval
from dlworkflow.evaluate.scores import resample_counts, scalar_metrics
from dlworkflow.evaluate.slices import (
    FEATURE_PREFIX,
    MAX_VALUES,
    check_columns,
    resolve_column,
    slice_labels,
    slice_report,
    task_slice_report,
)
from dlworkflow.evaluate.task_scores import finite

if TYPE_CHECKING:
    import pandas as pd

    from dlworkflow.tasks import Task
    from dlworkflow.workspace import Workspace

TOP_FEATURES = 2  # tables: slices by this many of the most important features
ADDITION = re.compile(r"add\d+")
ORIGINAL = "original"
SENSITIVE_KEY = "data.sensitive_columns"
RECORDED = {  # (manifest column recorded at ingest, slice name) per modality
    "sequence": (
        ("length", "length (steps)"),
        ("channels", "channels"),
        ("source_split", "source split"),
    ),
    "audio": (
        ("duration_s", "duration (s)"),
        ("rms_dbfs", "loudness (RMS dBFS)"),
        ("sample_rate", "source sample rate (Hz)"),
        ("channels", "source channels"),
    ),
}

# (the sliced rows' mask, weights (B, m)) -> the metric per weight row (B,)
MaskScore = Callable[[np.ndarray, np.ndarray], np.ndarray]


def check_sensitive(rows: pd.DataFrame, names: list[str]) -> None:
    """Preflight: every data.sensitive_columns column exists (before any expensive work)."""
    check_columns(rows, names, key=SENSITIVE_KEY)


def source_of(sample_id: str, label: str) -> str:
    """The folder a sample came from: add<N> for `dlw retrain --data` additions, else the
    first folder of its id that is not its label folder ('original' when none)."""
    parts = str(sample_id).replace("\\", "/").split("/")[:-1]
    if parts and ADDITION.fullmatch(parts[0]):
        return parts[0]
    parts = [p for p in parts if p and p != str(label)]
    return parts[0] if parts else ORIGINAL


def auto_columns(
    rows: pd.DataFrame,
    *,
    modality: str,
    important: list[str],
) -> pd.DataFrame:
    """The columns to slice by (one per property of the data with at least two values)."""
    import pandas as pd

    frame = pd.DataFrame(index=rows.index)
    if modality == "image":
        if {"width", "height"} <= set(rows.columns):
            w = rows["width"].astype("Int64")
            h = rows["height"].astype("Int64")
            sizes = w.astype("string") + "x" + h.astype("string")
            frame["image size"] = (
                sizes if sizes.nunique(dropna=True) <= MAX_VALUES else (w * h).astype(float)
            )
        if "brightness" in rows.columns:
            frame["brightness"] = rows["brightness"].astype(float)
    elif modality == "text" and "text" in rows.columns:
        frame["text length (words)"] = [
            float(len(str(t).split())) for t in rows["text"].fillna("").tolist()
        ]
    elif modality == "tabular":
        for name in important[:TOP_FEATURES]:
            column = FEATURE_PREFIX + name
            if column in rows.columns:
                frame[name] = rows[column]
    else:
        for column, name in RECORDED.get(modality, ()):
            if column in rows.columns and rows[column].notna().any():
                frame[name] = rows[column]
    if "sample_id" in rows.columns:
        labels = rows["label"] if "label" in rows.columns else [""] * len(rows)
        frame["source"] = [source_of(s, lab) for s, lab in zip(rows["sample_id"], labels)]
    if "group" in rows.columns and rows["group"].notna().any():
        frame["group"] = rows["group"]
    generic = {_cut(frame[c]) for c in ("source", "group") if c in frame.columns}
    recorded = {name for _, name in RECORDED.get(modality, ())}
    keep = [
        c
        for c in frame.columns
        if frame[c].nunique(dropna=False) > 1 and not (c in recorded and _cut(frame[c]) in generic)
    ]
    return frame[keep]


def _cut(values: pd.Series) -> tuple[int, ...]:
    """How a column groups the rows (codes in order of first appearance)."""
    import pandas as pd

    return tuple(pd.factorize(values.astype("string").fillna("\0"))[0].tolist())


def proxy_ranking(rows: pd.DataFrame, task: Task, y: np.ndarray, features: list[str]) -> list[str]:
    """Tables without measured importance: features by the share of the target's variance
    their bins (values, or quartiles) explain (the correlation ratio), largest first."""
    target = _target_matrix(task, y)
    known = np.isfinite(target).all(axis=1)
    scores = {}
    for name in features:
        column = resolve_column(rows, name)
        labels, values, _ = slice_labels(rows[column])
        t, lab = target[known], labels[known]
        total = ((t - t.mean(axis=0)) ** 2).sum()
        between = sum(
            (lab == v).sum() * ((t[lab == v].mean(axis=0) - t.mean(axis=0)) ** 2).sum()
            for v in values
            if (lab == v).any()
        )
        scores[name] = float(between / total) if total > 0 else 0.0
    return sorted(features, key=lambda f: (-scores[f], f))


def _target_matrix(task: Task, y: np.ndarray) -> np.ndarray:
    y = np.asarray(y)
    if task.kind == "classification":
        k = int(y.max()) + 1 if len(y) else 1
        out = np.full((len(y), k), np.nan)
        ok = y >= 0
        out[ok] = np.eye(k)[y[ok]]
        return out
    return np.asarray(y, dtype=np.float64).reshape(len(y), -1)


def mask_score(
    task: Task, y: np.ndarray, out: np.ndarray, target: dict[str, Any], metric: str
) -> MaskScore:
    if task.kind == "classification":
        return lambda m, w: scalar_metrics(y[m], out[m], w, only=metric)[metric]
    return lambda m, w: task.metric_scores(metric, y[m], out[m], w, target)


def slices_section(
    project: Workspace,
    task: Task,
    rows: pd.DataFrame,
    y: np.ndarray,
    out: np.ndarray,
    target: dict[str, Any],
    *,
    metric: str,
    overall: float | None,
    modality: str,
    important: list[str],
    n_resamples: int,
    confidence: float,
    seed: int,
) -> dict[str, Any]:
    """The report's slices (configured, else automatic), worst slice and inclusion."""
    cfg = project.config.evaluate
    kw: dict[str, Any] = {
        "metric": metric,
        "min_samples": cfg.slice_min_samples,
        "n_resamples": n_resamples,
        "confidence": confidence,
        "seed": seed,
    }

    def report(frame: pd.DataFrame, columns: list[str]) -> list[dict[str, Any]]:
        if not columns or not len(y):
            return []
        if task.kind == "classification":
            return slice_report(frame, y, out, columns, **kw)
        return task_slice_report(task, frame, y, out, target, columns, **kw)

    auto = not cfg.slices and cfg.auto_slices
    if cfg.slices:
        slices = report(rows, list(cfg.slices))
    elif auto:
        frame = auto_columns(rows, modality=modality, important=important)
        slices = report(frame, list(frame.columns))
        for entry in slices:
            entry["auto"] = True
    else:
        slices = []
    higher = task.metric(metric).higher_is_better
    sensitive = list(project.config.data.sensitive_columns)
    inclusion = report(rows, sensitive)
    score = mask_score(task, y, out, target, metric)
    for entry in inclusion:
        column = resolve_column(rows, entry["column"])
        labels, _, _ = slice_labels(rows[column])
        entry["gap"] = largest_gap(
            entry,
            labels,
            score,
            higher_is_better=higher,
            n_resamples=n_resamples,
            confidence=confidence,
            seed=seed,
        )
    return {
        "slices": slices,
        "slices_auto": bool(auto and slices),
        "worst_slice": worst_slice(slices, overall, higher_is_better=higher),
        "inclusion": inclusion,
    }


def worst_slice(
    slices: list[dict[str, Any]], overall: float | None, *, higher_is_better: bool
) -> dict[str, Any] | None:
    """The slice with the worst metric among those whose interval lies wholly on the worse
    side of the overall metric; None when no interval does."""
    if overall is None:
        return None
    below = [
        {"column": entry["column"], **s, "overall": overall}
        for entry in slices
        for s in entry["slices"]
        if s.get("low") is not None
        and s.get("metric") is not None
        and (s["high"] < overall if higher_is_better else s["low"] > overall)
    ]
    if not below:
        return None
    return (min if higher_is_better else max)(below, key=lambda s: s["metric"])


def largest_gap(
    entry: dict[str, Any],
    labels: np.ndarray,
    score: MaskScore,
    *,
    higher_is_better: bool,
    n_resamples: int,
    confidence: float,
    seed: int,
) -> dict[str, Any] | None:
    """The gap between the best and the worst group with an interval (better minus worse,
    in the metric's better direction: positive), and its BC bootstrap interval over the same
    resamples of the whole split; None with fewer than two such groups."""
    groups = [
        s for s in entry["slices"] if s.get("low") is not None and s.get("metric") is not None
    ]
    if len(groups) < 2:
        return None
    sign = 1.0 if higher_is_better else -1.0
    best = max(groups, key=lambda s: sign * s["metric"])
    worst = min(groups, key=lambda s: sign * s["metric"])
    mb, mw = labels == best["value"], labels == worst["value"]
    point = sign * (best["metric"] - worst["metric"])
    diffs = [
        sign * (score(mb, w[:, mb]) - score(mw, w[:, mw]))
        for w in resample_counts(len(labels), n_resamples=n_resamples, seed=seed)
    ]
    low, high = bc_interval(np.concatenate(diffs), float(point), confidence)
    return {
        "metric": entry["metric"],
        "better": best["value"],
        "worse": worst["value"],
        "value": finite(float(point)),
        "low": finite(low),
        "high": finite(high),
    }


def slice_rows(report: dict[str, Any]) -> list[tuple[str, str]]:
    """The terminal's rows for the worst slice and inclusion (the slices have their own)."""
    rows = []
    worst = report.get("worst_slice")
    if worst:
        rows.append(
            (
                "worst slice",
                f"{worst['column']}={worst['value']}: {worst['metric']:.3f} "
                f"[{worst['low']:.3f}, {worst['high']:.3f}] n={worst['n']}, wholly below the "
                f"overall {worst['overall']:.3f}",
            )
        )
    elif report.get("slices"):
        rows.append(("worst slice", "none: no slice's interval lies wholly below the overall"))
    for entry in report.get("inclusion") or []:
        gap = entry.get("gap")
        rows.append(
            (
                f"inclusion: {entry['column']}",
                f"largest gap {gap['value']:.3f} [{gap['low']:.3f}, {gap['high']:.3f}] "
                f"({gap['better']} vs {gap['worse']})"
                if gap and gap["low"] is not None
                else "fewer than two groups with enough samples for a gap",
            )
        )
    return rows
