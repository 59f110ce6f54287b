"""Figures the steps did not write as files, drawn from their records: training curves (from
the trained model's history) and per-class bars (from metrics.json). PNG bytes, Agg canvas."""

from __future__ import annotations

import io
from typing import Any


def new_figure(width: float, height: float) -> Any:
    """A matplotlib Figure on an Agg canvas (no pyplot state, safe in threads)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def png_bytes(fig: Any) -> bytes:
    """The figure as PNG bytes (tight layout)."""
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


def training_curves(history: list[dict[str, Any]], metric: str) -> bytes | None:
    """Loss (train, val) and the validation metric per epoch."""
    if not history:
        return None
    epochs = [h.get("epoch", i + 1) for i, h in enumerate(history)]
    fig = new_figure(8.0, 3.2)
    loss, score = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    for key, label in (("train_loss", "train loss"), ("val_loss", "validation loss")):
        values = [h.get(key) for h in history]
        if any(v is not None for v in values):
            loss.plot(epochs, values, marker="o", label=label)
    loss.set_xlabel("epoch")
    loss.set_title("loss", fontsize=10)
    loss.legend(fontsize=8)
    for key in (f"val_{metric}", "val_accuracy"):
        values = [h.get(key) for h in history]
        if any(v is not None for v in values):
            score.plot(epochs, values, marker="o", label=key.replace("_", " "))
    from matplotlib.ticker import MaxNLocator

    for ax in (loss, score):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    score.set_xlabel("epoch")
    score.set_title("validation", fontsize=10)
    score.legend(fontsize=8)
    return png_bytes(fig)


def per_class_bars(per_class: list[dict[str, Any]], split: str) -> bytes | None:
    """Recall and precision per class, worst F1 first (at most 40 classes)."""
    rows = [c for c in per_class if c.get("f1") is not None]
    if not rows:
        return None
    rows = sorted(rows, key=lambda c: c["f1"])[:40]
    fig = new_figure(8.0, max(2.6, 0.28 * len(rows) + 1.2))
    ax = fig.add_subplot()
    y = range(len(rows))
    ax.barh([i - 0.2 for i in y], [c.get("recall") or 0.0 for c in rows], height=0.4,
            label="recall")
    ax.barh([i + 0.2 for i in y], [c.get("precision") or 0.0 for c in rows], height=0.4,
            label="precision")
    ax.set_yticks(list(y))
    ax.set_yticklabels([f"{str(c['class'])[:18]} (n={c.get('support')})" for c in rows],
                       fontsize=8)
    ax.set_xlim(0, 1.0)
    ax.invert_yaxis()
    ax.set_title(f"per class on {split}, weakest F1 first", fontsize=10)
    ax.legend(fontsize=8, loc="lower right")
    return png_bytes(fig)
