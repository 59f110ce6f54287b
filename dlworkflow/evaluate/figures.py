"""Evaluation figures as PNG files (matplotlib, Agg canvas, the style of dlworkflow/style.py,
written atomically)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from dlworkflow.fileio import atomic_write_bytes
from dlworkflow.plots import new_figure, png_bytes


def _figure(width: float, height: float) -> Any:
    return new_figure(width, height)


def _save(fig: Any, path: Path, *, tight: bool = True) -> Path:
    atomic_write_bytes(path, png_bytes(fig, tight=tight))
    return path


def confusion_png(cm: np.ndarray, classes: list[str], path: Path, *, title: str) -> Path:
    """Row-normalised colours (recall per true class), raw counts written in the cells."""
    cm = np.asarray(cm)
    k = len(classes)
    side = min(12.0, 2.5 + 0.45 * k)
    fig = _figure(side, side * 0.9)
    ax = fig.add_subplot()
    support = cm.sum(axis=1, keepdims=True)
    share = np.divide(cm, support, out=np.zeros(cm.shape, dtype=float), where=support > 0)
    image = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="share of the true class")
    if k <= 30:
        for (i, j), count in np.ndenumerate(cm):
            if count:
                ax.text(
                    j,
                    i,
                    str(count),
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="white" if share[i, j] > 0.5 else "black",
                )
    ticks = range(k) if k <= 40 else range(0, k, max(1, k // 20))
    ax.set_xticks(list(ticks))
    ax.set_yticks(list(ticks))
    ax.set_xticklabels([str(classes[t])[:14] for t in ticks], rotation=45, ha="right", fontsize=7)
    ax.set_yticklabels([str(classes[t])[:14] for t in ticks], fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=10)
    return _save(fig, path)


def reliability_png(calibration: dict[str, Any], path: Path, *, title: str) -> Path:
    """Accuracy against confidence per bin, the diagonal as perfect calibration; after
    temperature scaling too when it was applied."""
    fig = _figure(5.0, 4.6)
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1], color="0.6", linestyle="--", linewidth=1, label="perfect")
    curves = [("model", calibration["reliability"], calibration["ece"], "C0")]
    if calibration.get("scaled"):
        t = calibration["temperature"]
        curves.append(
            (
                f"after temperature scaling (T={t:.2f})",
                calibration["scaled"]["reliability"],
                calibration["scaled"]["ece"],
                "C3",
            )
        )
    for label, rel, ece, colour in curves:
        points = [
            (c, a, n) for c, a, n in zip(rel["confidence"], rel["accuracy"], rel["count"]) if n
        ]
        if not points:
            continue
        conf, acc, count = (np.array(v, dtype=float) for v in zip(*points))
        sizes = 15 + 120 * count / count.max()
        ax.plot(conf, acc, color=colour, linewidth=1.5, label=f"{label}: ECE {ece:.3f}")
        ax.scatter(conf, acc, s=sizes, color=colour, alpha=0.7, zorder=3)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("confidence (top class probability)")
    ax.set_ylabel("accuracy")
    ax.set_title(title, fontsize=10)
    ax.legend(loc="lower right", fontsize=8)
    return _save(fig, path)


def mistakes_png(
    images: list[np.ndarray],
    captions: list[str],
    path: Path,
    *,
    title: str,
    columns: int = 8,
    inches: float = 1.6,
) -> Path:
    """A grid of thumbnails (uint8 CHW) with 'true -> predicted (confidence)' captions, drawn
    as one mosaic on one axes (a sub-plot per thumbnail took a second to draw); at most
    `columns` a row, each about `inches` wide."""
    n = max(1, len(images))
    cols = min(columns, n)
    rows = (n + cols - 1) // cols
    th = max((np.asarray(img).shape[1] for img in images), default=1)
    tw = max((np.asarray(img).shape[2] for img in images), default=1)
    fig = _figure(inches * cols, (inches * th / tw + 0.15) * rows + 0.5)
    ax = fig.add_axes((0.0, 0.02, 1.0, 0.88 if rows == 1 else 0.93))
    ax.axis("off")
    if not images:
        ax.text(0.5, 0.5, "no mistakes", ha="center", va="center")
    else:
        gap = max(2, th // 3)  # room for each caption above its thumbnail
        mosaic = np.full((rows * (th + gap) + 2, cols * (tw + 2), 3), 255, dtype=np.uint8)
        for i, (img, caption) in enumerate(zip(images, captions)):
            array = np.asarray(img)
            rgb = np.repeat(array, 3, axis=0) if array.shape[0] == 1 else array[:3]
            h, w = rgb.shape[1:]
            top, left = (i // cols) * (th + gap) + gap, (i % cols) * (tw + 2) + 1
            mosaic[top : top + h, left : left + w] = np.moveaxis(rgb, 0, -1)
            ax.text(left + w / 2, top - 1, caption, ha="center", va="bottom", fontsize=7)
        ax.imshow(mosaic, interpolation="nearest")
    fig.suptitle(title, fontsize=9)
    return _save(fig, path, tight=False)  # the axes fills the figure already


def residuals_png(
    y: np.ndarray, predicted: np.ndarray, path: Path, *, title: str, unit: str = "target"
) -> Path:
    """Regression: predicted against true (the diagonal is a perfect prediction) and the
    residual (true - predicted) against predicted (a pattern around 0 is a bias the model
    left)."""
    y = np.asarray(y, dtype=np.float64)
    predicted = np.asarray(predicted, dtype=np.float64).reshape(len(y), -1)[:, 0]
    residual = y - predicted
    fig = _figure(10.0, 4.4)
    left, right = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    size = 12 if len(y) > 500 else 22
    if len(y):
        low = float(min(y.min(), predicted.min()))
        high = float(max(y.max(), predicted.max()))
        left.plot(
            [low, high], [low, high], color="0.6", linestyle="--", linewidth=1, label="perfect"
        )
        left.scatter(y, predicted, s=size, alpha=0.6, color="C0")
        right.axhline(0.0, color="0.6", linestyle="--", linewidth=1)
        right.scatter(predicted, residual, s=size, alpha=0.6, color="C3")
        left.legend(loc="upper left", fontsize=8)
    left.set_xlabel(f"true {unit}")
    left.set_ylabel(f"predicted {unit}")
    left.set_title("predicted against true", fontsize=9)
    right.set_xlabel(f"predicted {unit}")
    right.set_ylabel("residual (true - predicted)")
    right.set_title("residuals", fontsize=9)
    fig.suptitle(title, fontsize=10)
    return _save(fig, path)


def per_label_png(rows: list[dict[str, Any]], path: Path, *, title: str) -> Path:
    """Multi-label: precision, recall and F1 per label (bars), labels by support."""
    rows = sorted(rows, key=lambda r: -r["support"])
    k = max(1, len(rows))
    fig = _figure(min(16.0, 3.0 + 0.45 * k), 4.4)
    ax = fig.add_subplot()
    x = np.arange(len(rows))
    width = 0.27
    for offset, key, colour in (
        (-width, "precision", "C0"),
        (0.0, "recall", "C2"),
        (width, "f1", "C3"),
    ):
        values = [r[key] if r[key] is not None else 0.0 for r in rows]
        ax.bar(x + offset, values, width, label=key, color=colour)
    ax.set_xticks(list(x))
    ax.set_xticklabels(
        [f"{str(r['label'])[:14]} ({r['support']})" for r in rows],
        rotation=45,
        ha="right",
        fontsize=7,
    )
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("score")
    ax.set_xlabel("label (support)")
    ax.legend(loc="upper right", fontsize=8)
    ax.set_title(title, fontsize=10)
    return _save(fig, path)


def occlusion_png(grid: np.ndarray, path: Path, *, metric: str, title: str) -> Path:
    """The fall of the metric with each cell of the image grid occluded (a heatmap, the
    falls written in the cells): the regions the model depends on."""
    grid = np.asarray(grid, dtype=float)
    fig = _figure(3.6, 3.2)
    ax = fig.add_subplot()
    top = max(float(np.nanmax(np.abs(grid))) if grid.size else 0.0, 1e-6)
    image = ax.imshow(grid, cmap="RdBu_r", vmin=-top, vmax=top)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label=f"fall of {metric}")
    for (i, j), value in np.ndenumerate(grid):
        if np.isfinite(value):
            ax.text(j, i, f"{value:+.2f}", ha="center", va="center", fontsize=7)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title, fontsize=9)
    return _save(fig, path)
