"""Error analysis: the most confident mistakes and the most confused class pairs."""

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


def confident_mistakes(rows: pd.DataFrame, y: np.ndarray, proba: np.ndarray,
                       classes: list[str], *, n: int = N_MISTAKES,
                       show_content: bool = True) -> list[dict[str, Any]]:
    """The wrong predictions made with the highest confidence, most confident first. With
    show_content, a text snippet (text) or the first feature values (tabular) come along."""
    pred = proba.argmax(axis=1)
    confidence = proba.max(axis=1)
    wrong = np.flatnonzero(pred != y)
    order = wrong[np.argsort(-confidence[wrong], kind="stable")][:n]
    features = [c for c in rows.columns if c.startswith("f:")][:N_FEATURES]
    out = []
    for i in order:
        row = rows.iloc[int(i)]
        item: dict[str, Any] = {"row": int(i), "sample_id": str(row["sample_id"]),
                                "true": classes[int(y[i])], "predicted": classes[int(pred[i])],
                                "confidence": float(confidence[i]),
                                "p_true": float(proba[i, y[i]])}
        if show_content and "text" in rows.columns:
            item["text"] = str(row["text"])[:SNIPPET]
        if show_content and features:
            item["features"] = {c[2:]: _plain(row[c]) for c in features}
        out.append(item)
    return out


def confused_pairs(cm: np.ndarray, classes: list[str], *,
                   n: int = N_PAIRS) -> list[dict[str, Any]]:
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
        pairs.append({"true": classes[t], "predicted": classes[p], "count": int(off[t, p]),
                      "share_of_true": float(off[t, p] / support[t])})
    return pairs


def mistakes_csv(mistakes: list[dict[str, Any]], path: Path) -> Path:
    """The confident mistakes as a table (text and tabular data: their rows), one per line."""
    import csv
    import io

    from dlworkflow.fileio import atomic_write_text

    feature_names = list(mistakes[0].get("features", {})) if mistakes else []
    columns = ["sample_id", "true", "predicted", "confidence", "p_true"]
    columns += ["text"] if mistakes and "text" in mistakes[0] else []
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(columns + feature_names)
    for m in mistakes:
        writer.writerow([m.get(c) for c in columns]
                        + [m.get("features", {}).get(f) for f in feature_names])
    atomic_write_text(path, buffer.getvalue())
    return path


def _plain(value: Any) -> Any:
    import pandas as pd

    if value is None or pd.isna(value):
        return None
    if isinstance(value, (np.floating, float, np.integer, int)):
        return float(value)
    return str(value)
