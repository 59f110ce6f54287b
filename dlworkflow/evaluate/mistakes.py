"""Error analysis. Classification: the most confident mistakes and the most confused class
pairs. Regression: the largest absolute residuals. Multi-label: precision, recall and F1 per
label, and the samples with the most wrong labels. With show_content (the problem's
data_sensitivity is "none"), a text snippet or the first feature values come along."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from pathlib import Path

    import pandas as pd

N_MISTAKES = 16
N_PAIRS = 5
SNIPPET = 120  # characters of a text shown with a mistake
N_FEATURES = 6  # tabular feature values shown with a mistake
SEP = "|"  # joins a sample's labels, as the manifest does


def confident_mistakes(
    rows: pd.DataFrame,
    y: np.ndarray,
    proba: np.ndarray,
    classes: list[str],
    *,
    n: int = N_MISTAKES,
    show_content: bool = True,
) -> list[dict[str, Any]]:
    """The wrong predictions made with the highest confidence, most confident first. With
    show_content, a text snippet (text) or the first feature values (tabular) come along."""
    pred = proba.argmax(axis=1)
    confidence = proba.max(axis=1)
    wrong = np.flatnonzero(pred != y)
    order = wrong[np.argsort(-confidence[wrong], kind="stable")][:n]
    out = []
    for i in order:
        row = rows.iloc[int(i)]
        item: dict[str, Any] = {
            "row": int(i),
            "sample_id": str(row["sample_id"]),
            "true": classes[int(y[i])],
            "predicted": classes[int(pred[i])],
            "confidence": float(confidence[i]),
            "p_true": float(proba[i, y[i]]),
        }
        out.append(_with_content(item, rows, row, show_content=show_content))
    return out


def _with_content(
    item: dict[str, Any], rows: pd.DataFrame, row: pd.Series, *, show_content: bool
) -> dict[str, Any]:
    """The item with a text snippet (text) or the first feature values (tabular)."""
    features = [c for c in rows.columns if c.startswith("f:")][:N_FEATURES]
    if show_content and "text" in rows.columns:
        item["text"] = str(row["text"])[:SNIPPET]
    if show_content and features:
        item["features"] = {c[2:]: _plain(row[c]) for c in features}
    return item


def largest_residuals(
    rows: pd.DataFrame,
    y: np.ndarray,
    predicted: np.ndarray,
    *,
    n: int = N_MISTAKES,
    show_content: bool = True,
) -> list[dict[str, Any]]:
    """Regression: the samples with the largest |true - predicted|, largest first; residual
    = true - predicted (positive: the model predicted too little)."""
    y = np.asarray(y, dtype=np.float64)
    predicted = np.asarray(predicted, dtype=np.float64).reshape(len(y), -1)[:, 0]
    residual = y - predicted
    order = np.argsort(-np.abs(residual), kind="stable")[:n]
    out = []
    for i in order:
        row = rows.iloc[int(i)]
        item: dict[str, Any] = {
            "row": int(i),
            "sample_id": str(row["sample_id"]),
            "true": float(y[i]),
            "predicted": float(predicted[i]),
            "residual": float(residual[i]),
        }
        out.append(_with_content(item, rows, row, show_content=show_content))
    return out


def residual_summary(y: np.ndarray, predicted: np.ndarray) -> dict[str, float | None]:
    """Regression: the residuals' mean (bias: positive when the model predicts too little),
    standard deviation, median and largest absolute value."""
    residual = (
        np.asarray(y, dtype=np.float64)
        - np.asarray(predicted, dtype=np.float64).reshape(len(y), -1)[:, 0]
    )
    if not len(residual):
        return {"mean": None, "std": None, "median_abs": None, "max_abs": None}
    return {
        "mean": float(residual.mean()),
        "std": float(residual.std()),
        "median_abs": float(np.median(np.abs(residual))),
        "max_abs": float(np.abs(residual).max()),
    }


def per_label(
    y: np.ndarray, predicted: np.ndarray, names: list[str], thresholds: np.ndarray
) -> list[dict[str, Any]]:
    """Multi-label: per label its support (samples that have it), how often it is
    predicted, precision, recall and F1 (None where undefined), and its threshold."""
    truth = np.asarray(y) > 0.5
    pred = np.asarray(predicted, dtype=bool)
    tp = (truth & pred).sum(axis=0)
    support, chosen = truth.sum(axis=0), pred.sum(axis=0)
    out = []
    for j, name in enumerate(names):
        denom = support[j] + chosen[j]
        out.append(
            {
                "label": name,
                "support": int(support[j]),
                "predicted": int(chosen[j]),
                "precision": float(tp[j] / chosen[j]) if chosen[j] else None,
                "recall": float(tp[j] / support[j]) if support[j] else None,
                "f1": float(2 * tp[j] / denom) if denom else None,
                "threshold": float(thresholds[j]),
            }
        )
    return out


def most_wrong_labels(
    rows: pd.DataFrame,
    y: np.ndarray,
    predicted: np.ndarray,
    names: list[str],
    *,
    n: int = N_MISTAKES,
    show_content: bool = True,
) -> list[dict[str, Any]]:
    """Multi-label: the samples with the most wrong label decisions (missed + extra), most
    first; samples whose label set is exactly right are never listed."""
    truth = np.asarray(y) > 0.5
    pred = np.asarray(predicted, dtype=bool)
    wrong = (truth != pred).sum(axis=1)
    order = [i for i in np.argsort(-wrong, kind="stable")[:n] if wrong[i]]
    out = []
    for i in order:
        row = rows.iloc[int(i)]
        item: dict[str, Any] = {
            "row": int(i),
            "sample_id": str(row["sample_id"]),
            "true": SEP.join(names[j] for j in np.flatnonzero(truth[i])),
            "predicted": SEP.join(names[j] for j in np.flatnonzero(pred[i])),
            "wrong": int(wrong[i]),
            "missed": [names[j] for j in np.flatnonzero(truth[i] & ~pred[i])],
            "extra": [names[j] for j in np.flatnonzero(~truth[i] & pred[i])],
        }
        out.append(_with_content(item, rows, row, show_content=show_content))
    return out


def confused_pairs(cm: np.ndarray, classes: list[str], *, n: int = N_PAIRS) -> list[dict[str, Any]]:
    """The largest off-diagonal cells of the confusion matrix (true -> predicted)."""
    off = np.array(cm, dtype=np.int64)
    np.fill_diagonal(off, 0)
    flat = np.argsort(-off, axis=None, kind="stable")[:n]
    support = np.asarray(cm).sum(axis=1)
    pairs = []
    for index in flat:
        t, p = np.unravel_index(index, off.shape)
        if off[t, p] == 0:
            break
        pairs.append(
            {
                "true": classes[t],
                "predicted": classes[p],
                "count": int(off[t, p]),
                "share_of_true": float(off[t, p] / support[t]),
            }
        )
    return pairs


def mistakes_csv(mistakes: list[dict[str, Any]], path: Path) -> Path:
    """The confident mistakes as a table (text and tabular data: their rows), one per line."""
    return items_csv(mistakes, ["sample_id", "true", "predicted", "confidence", "p_true"], path)


def items_csv(items: list[dict[str, Any]], columns: list[str], path: Path) -> Path:
    """Error-analysis items as a CSV table: the columns, the text snippet when the items
    have one, then their feature values; list cells are joined by "|"."""
    import csv
    import io

    from dlworkflow.fileio import atomic_write_text

    feature_names = list(items[0].get("features", {})) if items else []
    columns = list(columns) + (["text"] if items and "text" in items[0] else [])
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(columns + feature_names)
    for m in items:
        writer.writerow(
            [_cell(m.get(c)) for c in columns]
            + [m.get("features", {}).get(f) for f in feature_names]
        )
    atomic_write_text(path, buffer.getvalue())
    return path


def _cell(value: Any) -> Any:
    return SEP.join(map(str, value)) if isinstance(value, list) else value


def _plain(value: Any) -> Any:
    import pandas as pd

    if value is None or pd.isna(value):
        return None
    if isinstance(value, (np.floating, float, np.integer, int)):
        return float(value)
    return str(value)
