"""Pictures of samples that are not images, for the evaluation's error views and the
importance of series and audio inputs: a series as its curves (one line per channel), a clip
as a small log-mel spectrogram image (low frequencies at the bottom, louder is brighter), and
the fall of the metric per occluded part as bar charts with their intervals."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from dlworkflow.evaluate.figures import _figure, _save
from dlworkflow.style import PALETTE

MAX_LINES = 8  # channels drawn per series (the first ones)
SPEC_MELS = 48  # mel bins of a spectrogram thumbnail
SPEC_WIDTH = 96  # its width in pixels (frames averaged down)


def series_png(
    series: list[np.ndarray],
    captions: list[str],
    path: Path,
    *,
    title: str,
    columns: int = 4,
) -> Path:
    """A grid of small plots, one per (C, T) series, each channel a line (at most MAX_LINES,
    in the same colour in every cell), captioned; each series scaled to its own cell. Drawn
    on one axes (a sub-plot per series took seconds to save)."""
    n = max(1, len(series))
    cols = min(columns, n)
    rows = (n + cols - 1) // cols
    fig = _figure(2.4 * cols, 1.3 * rows + 0.5)
    ax = fig.add_axes((0.01, 0.01, 0.98, 0.86 if rows == 1 else 0.92))
    ax.axis("off")
    if not series:
        ax.text(0.5, 0.5, "no mistakes", ha="center", va="center")
    colours = [f"C{c}" for c in range(MAX_LINES)]
    for i, (s, caption) in enumerate(zip(series, captions)):
        left, bottom = (i % cols) * 1.15, (rows - 1 - i // cols) * 1.3
        array = np.atleast_2d(np.asarray(s, dtype=float))[:MAX_LINES]
        low, high = np.nanmin(array), np.nanmax(array)
        scaled = (array - low) / (high - low) if high > low else np.zeros_like(array) + 0.5
        steps = np.linspace(0.0, 1.0, array.shape[1])
        for c, line in enumerate(scaled):
            ax.plot(left + steps, bottom + line, color=colours[c], linewidth=0.8)
        ax.add_patch(_frame(left, bottom))
        ax.text(left + 0.5, bottom + 1.03, caption, ha="center", va="bottom", fontsize=7)
    ax.set_xlim(-0.05, cols * 1.15)
    ax.set_ylim(-0.05, rows * 1.3)
    fig.suptitle(title, fontsize=9)
    return _save(fig, path, tight=False)


def _frame(left: float, bottom: float) -> Any:
    from matplotlib.patches import Rectangle

    return Rectangle((left, bottom), 1.0, 1.0, fill=False, edgecolor="0.8", linewidth=0.6)


def spectrogram_images(waves: np.ndarray, *, sample_rate: int) -> list[np.ndarray]:
    """uint8 (3, SPEC_MELS, <= SPEC_WIDTH) images of waveforms' log-mel spectrograms
    (preprocess.audio.log_mel_numpy), each scaled to its own range, in the viridis colours."""
    from matplotlib import colormaps

    from dlworkflow.preprocess.audio import log_mel_numpy

    if not len(waves):
        return []
    spec = log_mel_numpy(
        np.asarray(waves, dtype=np.float64), sample_rate=sample_rate, n_mels=SPEC_MELS
    )[:, 0]  # (N, mels, frames)
    frames = spec.shape[2]
    width = min(SPEC_WIDTH, frames)
    cuts = np.linspace(0, frames, width + 1).astype(int)
    small = np.stack([spec[:, :, a:b].mean(axis=2) for a, b in zip(cuts[:-1], cuts[1:])], 2)
    images = []
    for one in small:
        low, high = float(one.min()), float(one.max())
        scaled = (one - low) / (high - low) if high > low else np.zeros_like(one)
        rgb = colormaps["viridis"](scaled[::-1])[..., :3]  # low frequencies at the bottom
        images.append(np.moveaxis((rgb * 255).round().astype(np.uint8), -1, 0))
    return images


def importance_bars_png(
    entries: list[dict[str, Any]],
    groups: dict[str, list[str]],
    path: Path,
    *,
    metric: str,
    title: str,
) -> Path:
    """One bar chart per kind of occluded part (`groups`: its names in order): the fall of
    the metric without each part, with its interval."""
    found = {e["name"]: e for e in entries}
    kinds = [(k, names) for k, names in groups.items() if names] or [("", [])]
    fig = _figure(max(4.0, 0.45 * max(len(n) for _, n in kinds) + 1.5), 2.4 * len(kinds) + 0.4)
    for i, (kind, names) in enumerate(kinds):
        ax = fig.add_subplot(len(kinds), 1, i + 1)
        drops = [_value(found.get(n), "drop") for n in names]
        low = [_value(found.get(n), "low") for n in names]
        high = [_value(found.get(n), "high") for n in names]
        x = np.arange(len(names))
        err = np.array(
            [[d - lo for d, lo in zip(drops, low)], [h - d for d, h in zip(drops, high)]]
        )
        ax.bar(x, drops, color=PALETTE["primary"])
        ax.errorbar(x, drops, yerr=np.nan_to_num(np.abs(err)), fmt="none", ecolor="k", lw=0.8)
        p_true = [_value(found.get(n), "p_true_fall") for n in names]
        if not np.isnan(p_true).all():
            ax.plot(x, p_true, "x", color=PALETTE["bad"], label="fall of mean p(true class)")
            ax.legend(fontsize=7, loc="best")
        ax.axhline(0.0, color="grey", lw=0.6)
        ax.set_xticks(x, [n.split(" (")[0] for n in names], rotation=30, ha="right", fontsize=7)
        ax.set_ylabel(f"fall of {metric}", fontsize=8)
        ax.set_title(kind, fontsize=8)
    fig.suptitle(title, fontsize=9)
    return _save(fig, path)


def _value(entry: dict[str, Any] | None, key: str) -> float:
    value = (entry or {}).get(key)
    return float(value) if value is not None else float("nan")
