"""The monitor page's prediction figures for the dense image tasks (html.PREDICTION_FIGURES):
detection the boxes per image over time and the distributions of box counts, box sizes and
box scores; segmentation the predicted share of the classes that moved most over time and
each class's mean predicted share, reference against live."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from dlworkflow.monitor import dense
from dlworkflow.plots import new_figure, png_bytes

if TYPE_CHECKING:
    from typing import Any

    from dlworkflow.monitor.drift import Drift
    from dlworkflow.monitor.html import Timeline
    from dlworkflow.monitor.logread import Sample

TOP_CLASSES = 6


def detection_series(
    reference: Sample, live: Sample, drift: Drift, line: Timeline, names: list[str]
) -> list[tuple[str, bytes]]:
    """Mean boxes per image per time bucket, and the out-of-distribution rate."""
    from dlworkflow.monitor.html import _ood_series, _per_bucket, _series

    if not reference.dense or not live.dense:
        return []
    fig = new_figure(8.0, 3.0)
    left, right = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    _series(
        left,
        line,
        _per_bucket(line, dense.box_counts(live)),
        label="live",
        reference=float(dense.box_counts(reference).mean()),
    )
    left.set_title("mean boxes per image", fontsize=10)
    _ood_series(right, drift, line)
    return [
        (
            "Boxes per image and out-of-distribution rate per time bucket (dashed: the "
            "reference level)",
            png_bytes(fig),
        )
    ]


def _hist(ax: Any, ref: np.ndarray, cur: np.ndarray, title: str) -> None:
    ref, cur = ref[np.isfinite(ref)], cur[np.isfinite(cur)]
    both = np.concatenate([ref, cur])
    edges: Any = np.linspace(both.min(), both.max(), 25) if np.ptp(both) > 0 else 10
    if len(ref):
        ax.hist(ref, bins=edges, density=True, alpha=0.5, label="reference")
    if len(cur):
        ax.hist(cur, bins=edges, density=True, alpha=0.5, label="live")
    ax.set_title(title, fontsize=9)
    ax.tick_params(labelsize=8)
    ax.legend(fontsize=7)


def detection_distributions(
    reference: Sample, live: Sample, drift: Drift, names: list[str]
) -> tuple[str, bytes]:
    """Histograms, reference against live: boxes per image, box area share (every box),
    box score (every box), and the OOD score."""
    from dlworkflow.monitor.html import _ood_histogram

    fig = new_figure(10.0, 3.0)
    axes = [fig.add_subplot(1, 4, i + 1) for i in range(4)]
    pooled = [
        (dense.box_counts, "boxes per image"),
        (lambda s: _pooled(dense.box_areas(s)), "box area (share of the image)"),
        (lambda s: _pooled(dense.box_scores(s)), "box score"),
    ]
    for ax, (values, title) in zip(axes, pooled):
        ref, cur = values(reference), values(live)
        if len(ref) + len(cur):
            _hist(ax, ref, cur, title)
    _ood_histogram(axes[3], drift)
    axes[3].tick_params(labelsize=8)
    return "Distributions: live against the reference (boxes of every image)", png_bytes(fig)


def _pooled(values: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(values) if values else np.zeros(0)


def segmentation_series(
    reference: Sample, live: Sample, drift: Drift, line: Timeline, names: list[str]
) -> list[tuple[str, bytes]]:
    """The mean predicted share per time bucket of the classes whose share changed most."""
    from dlworkflow.monitor.html import _per_bucket, _series

    if not names or not reference.dense or not live.dense:
        return []
    ref, cur = dense.class_shares(reference, names), dense.class_shares(live, names)
    change = np.abs(cur.mean(axis=0) - ref.mean(axis=0))
    top = np.argsort(-change, kind="stable")[:TOP_CLASSES]
    fig = new_figure(8.0, 3.0)
    ax = fig.add_subplot()
    for j in top:
        _series(
            ax,
            line,
            _per_bucket(line, cur[:, j]),
            label=names[j][:20],
            reference=float(ref[:, j].mean()),
        )
    ax.set_ylabel("mean share of the pixels", fontsize=8)
    ax.legend(fontsize=7, ncol=min(len(top), 6), loc="upper left")
    return [
        (
            "Predicted class share per time bucket of the classes whose share changed most "
            "(dashed: the reference share)",
            png_bytes(fig),
        )
    ]


def segmentation_distributions(
    reference: Sample, live: Sample, drift: Drift, names: list[str]
) -> tuple[str, bytes]:
    """Each class's mean predicted share, reference against live (* the classes that moved),
    and the OOD score."""
    from dlworkflow.monitor.html import _ood_histogram

    ref, cur = dense.class_shares(reference, names), dense.class_shares(live, names)
    moved = set(
        next(
            (
                c.details.get("moved") or []
                for c in drift.checks
                if c.details.get("shape") == "shares"
            ),
            [],
        )
    )
    fig = new_figure(8.0, 3.0)
    left, right = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    x = np.arange(len(names))
    left.bar(
        x - 0.2, ref.mean(axis=0) if len(ref) else np.zeros(len(names)), 0.4, label="reference"
    )
    left.bar(x + 0.2, cur.mean(axis=0) if len(cur) else np.zeros(len(names)), 0.4, label="live")
    left.set_xticks(
        x, [("* " if n in moved else "") + n[:12] for n in names], rotation=90, fontsize=7
    )
    left.set_title("mean predicted share per class", fontsize=10)
    left.legend(fontsize=8)
    left.tick_params(labelsize=8)
    _ood_histogram(right, drift)
    right.tick_params(labelsize=8)
    return (
        "Class shares: live against the reference (* the classes whose share moved)",
        png_bytes(fig),
    )
