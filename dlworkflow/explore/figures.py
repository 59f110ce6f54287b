"""Figures for the report: matplotlib (Agg canvases, imported lazily; the one look of
dlworkflow/style.py) rendered to base64 PNG data URIs."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any

import numpy as np

from dlworkflow.plots import new_figure, png_bytes
from dlworkflow.style import PALETTE, SERIES

MAX_LEGEND = 20  # classes named in a legend; beyond, the colour bar is left out


def _axes(width: float, height: float) -> tuple[Any, Any]:
    fig = new_figure(width, height)
    return fig, fig.subplots()


def _encode(fig: Any) -> str:
    return "data:image/png;base64," + base64.b64encode(png_bytes(fig)).decode("ascii")


def bar_chart(
    names: Sequence[str],
    values: Sequence[float],
    *,
    title: str,
    ylabel: str = "samples",
    highlight: Sequence[bool] | None = None,
) -> str:
    fig, ax = _axes(min(12, 2 + 0.35 * len(names)), 3.2)
    colours = [
        PALETTE["bad"] if h else PALETTE["primary"] for h in (highlight or [False] * len(names))
    ]
    ax.bar(range(len(names)), values, color=colours)
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels(
        [str(n)[:18] for n in names],
        rotation=45 if len(names) > 12 else 0,
        ha="right" if len(names) > 12 else "center",
    )
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    return _encode(fig)


def histogram(
    values: np.ndarray, *, title: str, xlabel: str, bins: int = 40, mark: float | None = None
) -> str:
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    fig, ax = _axes(4.2, 2.8)
    if len(values) and np.ptp(values) == 0:
        bins = 1
    ax.hist(values, bins=bins, color=PALETTE["primary"])
    if mark is not None:
        ax.axvline(mark, color=PALETTE["bad"], linestyle="--", linewidth=1)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("samples")
    ax.set_title(title)
    return _encode(fig)


def histograms_by_class(
    values: np.ndarray, labels: np.ndarray, *, title: str, xlabel: str, bins: int = 30
) -> str:
    """Overlaid step histograms, one per class (at most MAX_LEGEND classes named)."""
    values = np.asarray(values, dtype=float)
    fig, ax = _axes(6, 3)
    finite = values[np.isfinite(values)]
    edges = np.histogram_bin_edges(finite if len(finite) else [0, 1], bins=bins)
    classes = sorted(set(labels.tolist()), key=str)
    for label in classes:
        ax.hist(values[labels == label], bins=edges, histtype="step", label=str(label)[:18])
    if len(classes) <= MAX_LEGEND:
        ax.legend(ncol=2)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("samples")
    ax.set_title(title)
    return _encode(fig)


def scatter_map(
    xy: np.ndarray, labels: np.ndarray, *, title: str, marked: np.ndarray | None = None
) -> str:
    """2-D map coloured by label; `marked` points (label-issue candidates) ringed in black."""
    fig, ax = _axes(6.5, 5)
    classes = sorted(set(labels.tolist()), key=str)
    colours = _class_colours(len(classes))
    for k, label in enumerate(classes):
        m = labels == label
        ax.scatter(
            xy[m, 0],
            xy[m, 1],
            s=6,
            alpha=0.6,
            color=colours[k],
            label=str(label)[:18],
            linewidths=0,
        )
    if marked is not None and marked.any():
        ax.scatter(
            xy[marked, 0],
            xy[marked, 1],
            s=28,
            facecolors="none",
            edgecolors="black",
            linewidths=0.8,
            label="label-issue candidate",
        )
    if len(classes) <= MAX_LEGEND:
        ax.legend(markerscale=2, loc="best", ncol=2)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title)
    return _encode(fig)


def heatmap(
    matrix: np.ndarray,
    names: Sequence[str],
    *,
    title: str,
    vmin: float = -1.0,
    cmap: str = "RdBu_r",
) -> str:
    n = len(names)
    side = min(10, 2.5 + 0.3 * n)
    fig, ax = _axes(side + 1, side)
    image = ax.imshow(matrix, cmap=cmap, vmin=vmin, vmax=1)
    ax.set_xticks(range(n))
    ax.set_yticks(range(n))
    ax.set_xticklabels([str(x)[:14] for x in names], rotation=90)
    ax.set_yticklabels([str(x)[:14] for x in names])
    fig.colorbar(image, ax=ax, shrink=0.8)
    ax.set_title(title)
    return _encode(fig)


def scatter_values(xy: np.ndarray, values: np.ndarray, *, title: str, label: str = "target") -> str:
    """2-D map coloured by a continuous value (a regression target), with a colour bar."""
    fig, ax = _axes(6.5, 5)
    points = ax.scatter(
        xy[:, 0],
        xy[:, 1],
        s=6,
        alpha=0.7,
        c=np.asarray(values, dtype=float),
        cmap="viridis",
        linewidths=0,
    )
    fig.colorbar(points, ax=ax, shrink=0.8, label=label)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title)
    return _encode(fig)


def _class_colours(n: int) -> list[Any]:
    """SERIES for up to its length of classes, then matplotlib's tab20 (distinct enough)."""
    if n <= len(SERIES):
        return list(SERIES[:n])
    import matplotlib

    cmap = matplotlib.colormaps["tab20"]
    return [cmap(k % cmap.N) for k in range(n)]
