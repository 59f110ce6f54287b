"""Matplotlib figures as PNG bytes, without pyplot (an Agg canvas per figure: no global state,
safe in threads), for every step that draws: the canvas helpers, and the training curves
`dlw train` shows and the report repeats. matplotlib is imported only when drawing; every
figure gets the one look of dlworkflow/style.py (fonts, colours, DPI)."""

from __future__ import annotations

import io
from typing import Any

from dlworkflow.style import DPI, PALETTE, apply_matplotlib


def new_figure(width: float, height: float, *, dpi: int = DPI) -> Any:
    """A matplotlib Figure on an Agg canvas (no pyplot state, safe in threads), in the style."""
    apply_matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=dpi)
    FigureCanvasAgg(fig)
    return fig


def png_bytes(fig: Any, *, tight: bool = True) -> bytes:
    """The figure as PNG bytes (tight layout unless `tight` is False)."""
    if tight:
        fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


def curves_png(history: list[dict[str, Any]], metric: str) -> bytes | None:
    """Loss (train, val) and val `metric` against epoch; None when there is no epoch."""
    epochs = [row["epoch"] for row in history if "epoch" in row]
    if not epochs:
        return None
    fig = new_figure(7.5, 2.8)
    loss_ax, metric_ax = fig.subplots(1, 2)
    for key, style in (("train_loss", "o-"), ("val_loss", "s-")):
        values = [row.get(key) for row in history if "epoch" in row]
        if any(v is not None for v in values):
            loss_ax.plot(epochs, values, style, label=key.replace("_", " "))
    loss_ax.set(xlabel="epoch", ylabel="loss", title="loss")
    loss_ax.legend(fontsize=8)
    key = f"val_{metric}"
    values = [row.get(key) for row in history if "epoch" in row]
    if any(v is not None for v in values):
        metric_ax.plot(epochs, values, "o-", color=PALETTE["good"])
    metric_ax.set(xlabel="epoch", ylabel=key.replace("_", " "), title=f"validation {metric}")
    for ax in (loss_ax, metric_ax):
        ax.grid(alpha=0.3)
        ax.xaxis.get_major_locator().set_params(integer=True)
    return png_bytes(fig)
