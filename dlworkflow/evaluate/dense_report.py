"""The dense tasks' part of the full report (full_report.ANALYSES): per-class scores with
their intervals, error analysis, and figures.

Detection adds to the report
    per_class: [{class, boxes, detections, ap: {value, low, high}, ap50: {...}}]
    errors: {match_iou, score_threshold (None: the task's default), boxes, found, missed,
             confused, false_positives, shown, per_class: [{class, boxes, found, missed, confused,
             false_positives}], confused_pairs: [{true, predicted, count}],
             worst_images: [{row, sample_id, errors, found, missed, false_positives, confused}]}
and the figures per_class (AP per class and AP by box size, with intervals) and box_errors
(the images with the most errors, their boxes drawn). AP by box size is in `metrics` (ap_small,
ap_medium, ap_large; areas in pixels of the network's input).
Segmentation adds
    per_class: [{class, pixels, predicted_pixels, iou: {value, low, high}, dice: {...}}]
    image_iou: {median, worst}   worst_images: [{row, sample_id, iou, pixel_accuracy,
                                                 missed, added}]
and the figures per_class (IoU and Dice per class, with intervals) and worst_masks (the
worst images: truth | prediction | wrong pixels).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from dlworkflow.evaluate.dense_errors import detection_errors, worst_masks
from dlworkflow.evaluate.dense_figures import (
    detection_errors_png,
    per_class_png,
    worst_masks_png,
)
from dlworkflow.evaluate.dense_scores import confusions, image_scores, per_class_ap, per_class_iou

if TYPE_CHECKING:
    import pandas as pd

    from dlworkflow.models.meta import ModelMeta
    from dlworkflow.tasks import Task
    from dlworkflow.workspace import Workspace

SIZES = ("small", "medium", "large")


def detection_analysis(
    task: Task,
    rows: pd.DataFrame,
    y: np.ndarray,
    out: np.ndarray,
    target: dict[str, Any],
    names: list[str],
    *,
    show_content: bool,
    n_resamples: int,
    confidence: float,
    seed: int,
) -> dict[str, Any]:
    return {
        "per_class": per_class_ap(
            task, y, out, target, names, n_resamples=n_resamples, confidence=confidence, seed=seed
        ),
        "errors": detection_errors(task, rows, y, out, names, target),
    }


def segmentation_analysis(
    task: Task,
    rows: pd.DataFrame,
    y: np.ndarray,
    out: np.ndarray,
    target: dict[str, Any],
    names: list[str],
    *,
    show_content: bool,
    n_resamples: int,
    confidence: float,
    seed: int,
) -> dict[str, Any]:
    conf = confusions(y, out, len(names))
    iou, accuracy = image_scores(conf)
    scored = iou[~np.isnan(iou)]
    return {
        "per_class": per_class_iou(
            conf, names, n_resamples=n_resamples, confidence=confidence, seed=seed
        ),
        "image_iou": {
            "median": float(np.median(scored)) if len(scored) else None,
            "worst": float(scored.min()) if len(scored) else None,
        },
        "worst_images": worst_masks(rows, conf, iou, accuracy, names),
    }


def detection_figures(
    project: Workspace,
    meta: ModelMeta,
    rows: pd.DataFrame,
    y: np.ndarray,
    out: np.ndarray,
    report: dict[str, Any],
    *,
    split: str,
) -> dict[str, Path]:
    from dlworkflow.evaluate.full_report import _folder, _thumbnails

    folder = _folder(project, split)
    name = f"{report['model']} on {split} (n={report['n']})"
    metrics = report["metrics"]
    groups = [
        ("AP per class", [(e["class"], e["ap"]) for e in report["per_class"]]),
        ("AP by box size", [(s, metrics[f"ap_{s}"]) for s in SIZES if f"ap_{s}" in metrics]),
    ]
    worst = report["errors"]["worst_images"]
    return {
        "per_class": per_class_png(
            [g for g in groups if g[1]], folder / "per_class.png", title=f"AP: {name}"
        ),
        "box_errors": detection_errors_png(
            _thumbnails(project, meta, rows, [w["row"] for w in worst]),
            worst,
            folder / "box_errors.png",
            title=f"most errors ({_shown_words(report['errors'])}): {name}",
        ),
    }


def _shown_words(errors: dict[str, Any]) -> str:
    """ "boxes with score >= 0.31, IoU >= 0.5"."""
    threshold = errors.get("score_threshold")
    shown = "boxes shown" if threshold is None else f"score >= {threshold:.2f}"
    return f"{shown}, IoU >= {errors['match_iou']}"


def segmentation_figures(
    project: Workspace,
    meta: ModelMeta,
    rows: pd.DataFrame,
    y: np.ndarray,
    out: np.ndarray,
    report: dict[str, Any],
    *,
    split: str,
) -> dict[str, Path]:
    from dlworkflow.evaluate.full_report import _folder, _thumbnails

    folder = _folder(project, split)
    name = f"{report['model']} on {split} (n={report['n']})"
    entries = report["per_class"]
    worst = report["worst_images"]
    chosen = [w["row"] for w in worst]
    return {
        "per_class": per_class_png(
            [
                ("IoU per class", [(e["class"], e["iou"]) for e in entries]),
                ("Dice per class", [(e["class"], e["dice"]) for e in entries]),
            ],
            folder / "per_class.png",
            title=f"per class: {name}",
        ),
        "worst_masks": worst_masks_png(
            _thumbnails(project, meta, rows, chosen),
            [np.asarray(y[i]) for i in chosen],
            [np.asarray(out[i]).argmax(axis=0) for i in chosen],
            worst,
            folder / "worst_masks.png",
            title=f"lowest IoU: {name}",
        ),
    }
