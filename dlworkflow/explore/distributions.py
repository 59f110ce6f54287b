"""A property's distribution shown only as much as it informs: one value is a sentence, two
values a small table, more a histogram (issue 20: MNIST's width, height and aspect-ratio
histograms were each a single bar).

    shown = distribution(widths, title="width", xlabel="pixels", noun="images", unit=" px")
    parts = shown.text + [figures(*shown.figures)]   # sentences and tables, then the figures
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from dlworkflow.explore import figures as fig
from dlworkflow.explore.render import Raw, figure, fmt, para, table

#: Fewer distinct values than this: a table of values and counts, not a histogram.
MIN_DISTINCT_FOR_HISTOGRAM = 3


@dataclass
class Shown:
    """What to put on the page: `text` (sentences, tables) and `figures` (for a figure grid)."""

    text: list[Raw] = field(default_factory=list)
    figures: list[Raw] = field(default_factory=list)

    def __add__(self, other: Shown) -> Shown:
        return Shown(self.text + other.text, self.figures + other.figures)


def distinct(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The finite values' distinct values and their counts, most frequent first."""
    values = np.asarray(values, dtype=float)
    found, counts = np.unique(values[np.isfinite(values)], return_counts=True)
    order = np.argsort(-counts, kind="stable")
    return found[order], counts[order]


def distribution(
    values: np.ndarray | Sequence[float],
    *,
    title: str,
    xlabel: str,
    noun: str,
    unit: str = "",
    mark: float | None = None,
) -> Shown:
    """`values` of every sample (NaN: unknown, left out) as a sentence ("all 5,000 images
    have width 28 px"), a table (fewer than 3 distinct values) or a histogram."""
    found, counts = distinct(np.asarray(values, dtype=float))
    total = int(counts.sum())
    if len(found) == 0:
        return Shown(text=[para(f"{title}: no value known")])
    if len(found) == 1:
        return Shown(text=[para(f"All {total:,} {noun} have {title} {fmt(found[0])}{unit}.")])
    if len(found) < MIN_DISTINCT_FOR_HISTOGRAM:
        rows = [(f"{fmt(v)}{unit}", f"{c:,}", f"{c / total:.1%}") for v, c in zip(found, counts)]
        return Shown(text=[table([title, noun, "share"], rows)])
    chart = fig.histogram(np.asarray(values, dtype=float), title=title, xlabel=xlabel, mark=mark)
    return Shown(figures=[figure(chart, f"{title} distribution")])


def image_sizes(widths: np.ndarray, heights: np.ndarray, modes: dict[str, int]) -> Shown:
    """Image width, height and aspect ratio: one sentence when every image has the same size
    ("all 5,000 images are 28×28, mode L"), else each as `distribution` shows it."""
    w, h = np.asarray(widths, dtype=float), np.asarray(heights, dtype=float)
    mode_text = ", ".join(f"{k}: {v:,}" for k, v in modes.items())
    if len(modes) == 1:
        mode_text = f"mode {next(iter(modes))}"
    sizes, counts = distinct(w * 100_000 + h)  # one number per (width, height) pair
    if len(sizes) == 1:
        n, (width, height) = int(counts[0]), divmod(int(sizes[0]), 100_000)
        known = "" if n == len(w) else " with a known size"
        return Shown(text=[para(f"All {n:,} images{known} are {width}×{height}, {mode_text}.")])
    shown = Shown(text=[para(f"{len(sizes):,} distinct sizes. Modes: {mode_text}.")])
    shown += distribution(w, title="width", xlabel="pixels", noun="images", unit=" px")
    shown += distribution(h, title="height", xlabel="pixels", noun="images", unit=" px")
    with np.errstate(divide="ignore", invalid="ignore"):
        aspect = w / h
    return shown + distribution(
        aspect, title="aspect ratio", xlabel="width / height", noun="images"
    )
