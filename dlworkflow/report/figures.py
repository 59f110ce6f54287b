"""Figures the steps did not write as files, drawn from their records: per-class bars (from
metrics.json), and the canvas helpers other reports draw with. PNG bytes, Agg canvas.
(Canvas helpers and training curves: dlworkflow/plots.py.)"""

from __future__ import annotations

from typing import Any

from dlworkflow.plots import new_figure, png_bytes


def per_class_bars(per_class: list[dict[str, Any]], split: str) -> bytes | None:
    """Recall and precision per class, worst F1 first (at most 40 classes)."""
    rows = [c for c in per_class if c.get("f1") is not None]
    if not rows:
        return None
    rows = sorted(rows, key=lambda c: c["f1"])[:40]
    fig = new_figure(8.0, max(2.6, 0.28 * len(rows) + 1.2))
    ax = fig.add_subplot()
    y = range(len(rows))
    ax.barh(
        [i - 0.2 for i in y], [c.get("recall") or 0.0 for c in rows], height=0.4, label="recall"
    )
    ax.barh(
        [i + 0.2 for i in y],
        [c.get("precision") or 0.0 for c in rows],
        height=0.4,
        label="precision",
    )
    ax.set_yticks(list(y))
    ax.set_yticklabels([f"{str(c['class'])[:18]} (n={c.get('support')})" for c in rows], fontsize=8)
    ax.set_xlim(0, 1.0)
    ax.invert_yaxis()
    ax.set_title(f"per class on {split}, weakest F1 first", fontsize=10)
    ax.legend(fontsize=8, loc="lower right")
    return png_bytes(fig)
