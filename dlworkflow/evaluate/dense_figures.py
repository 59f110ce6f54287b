"""Figures of the dense tasks: boxes drawn on test images (PIL), masks laid over them, and
per-class scores with their intervals (matplotlib). Images come as uint8 (C, H, W) at the
network's size; box coordinates are normalised (0..1); masks are class indices at the same
size (IGNORE: not judged)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from dlworkflow.evaluate.dense_scores import IGNORE
from dlworkflow.evaluate.figures import _figure, _save, mistakes_png

MIN_SIDE = 192  # thumbnails are enlarged (nearest) to at least this many pixels a side
ALPHA = 0.55  # opacity of a class colour over the image
# box colours: what happened to the box
FOUND, MISSED, FALSE_POSITIVE, CONFUSED = (40, 180, 60), (255, 150, 0), (230, 30, 30), (200, 0, 200)
BOX_LEGEND = "green: found, orange: missed, red: false positive, magenta: confused class"
PALETTE = np.array(  # class colours (class 0, the background, is left uncoloured)
    [
        (0, 0, 0),
        (31, 119, 180),
        (255, 127, 14),
        (44, 160, 44),
        (214, 39, 40),
        (148, 103, 189),
        (140, 86, 75),
        (227, 119, 194),
        (188, 189, 34),
        (23, 190, 207),
        (255, 220, 0),
        (127, 127, 127),
    ],
    dtype=np.float64,
)


def _rgb(image: np.ndarray) -> np.ndarray:
    """uint8 (C, H, W) -> (H, W, 3), enlarged (nearest) to at least MIN_SIDE a side."""
    array = np.asarray(image)
    rgb = np.repeat(array, 3, axis=0) if array.shape[0] == 1 else array[:3]
    hwc = np.ascontiguousarray(np.moveaxis(rgb, 0, -1))
    scale = max(1, -(-MIN_SIDE // max(1, min(hwc.shape[:2]))))
    return hwc.repeat(scale, axis=0).repeat(scale, axis=1) if scale > 1 else hwc


def boxes_drawn(image: np.ndarray, record: dict[str, Any]) -> np.ndarray:
    """One image with its error analysis drawn: found true boxes, missed true boxes, false
    positives and confused detections (with 'true>predicted'); uint8 (3, H, W)."""
    from PIL import Image, ImageDraw

    canvas = Image.fromarray(_rgb(image))
    draw = ImageDraw.Draw(canvas)
    w, h = canvas.size
    width = max(1, min(w, h) // 120)

    def rect(box: Sequence[float], colour: tuple[int, int, int], thick: int) -> tuple[int, int]:
        x1, y1, x2, y2 = box[0] * w, box[1] * h, box[2] * w, box[3] * h
        draw.rectangle((x1, y1, x2, y2), outline=colour, width=thick)
        return int(x1), int(y1)

    for box in record.get("found") or []:
        rect(box, FOUND, width)
    for item in record.get("missed") or []:
        rect(item["box"], MISSED, width + 1)
    for item in record.get("false_positives") or []:
        rect(item["box"], FALSE_POSITIVE, width + 1)
    for item in record.get("confused") or []:
        x, y = rect(item["box"], CONFUSED, width + 1)
        draw.text((x + 2, y + 1), f"{item['true']}>{item['predicted']}"[:24], fill=CONFUSED)
    return np.moveaxis(np.asarray(canvas), -1, 0)


def _overlay(rgb: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Class colours over the image (background and ignored pixels left as they are)."""
    scale = rgb.shape[0] // mask.shape[0]
    mask = mask.repeat(scale, axis=0).repeat(scale, axis=1) if scale > 1 else mask
    out = rgb.astype(np.float64)
    coloured = (mask > 0) & (mask != IGNORE)
    colours = PALETTE[np.where(coloured, mask % len(PALETTE), 0)]
    out[coloured] = (1 - ALPHA) * out[coloured] + ALPHA * colours[coloured]
    return out.astype(np.uint8)


def mask_panels(image: np.ndarray, truth: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """Three panels side by side, uint8 (3, H, 3W + gaps): the truth laid over the image,
    the prediction laid over it, and the wrong pixels in red on the grey image."""
    rgb = _rgb(image)
    scale = rgb.shape[0] // truth.shape[0]
    wrong = (truth != predicted) & (truth != IGNORE)
    if scale > 1:
        wrong = wrong.repeat(scale, axis=0).repeat(scale, axis=1)
    grey = np.repeat(rgb.mean(axis=2, keepdims=True), 3, axis=2) * 0.6
    grey[wrong] = FALSE_POSITIVE
    gap = np.full((rgb.shape[0], 4, 3), 255, dtype=np.uint8)
    panels = [_overlay(rgb, truth), gap, _overlay(rgb, predicted), gap, grey.astype(np.uint8)]
    return np.moveaxis(np.concatenate(panels, axis=1), -1, 0)


def detection_errors_png(
    images: list[np.ndarray], worst: list[dict[str, Any]], path: Path, *, title: str
) -> Path:
    """The images with the most errors, their boxes drawn (BOX_LEGEND)."""
    drawn = [boxes_drawn(img, rec) for img, rec in zip(images, worst)]
    captions = [
        f"FP {len(r['false_positives'])}, missed {len(r['missed'])}, confused {len(r['confused'])}"
        for r in worst
    ]
    return mistakes_png(
        drawn, captions, path, title=f"{title}\n{BOX_LEGEND}", columns=4, inches=3.2
    )


def worst_masks_png(
    images: list[np.ndarray],
    truths: list[np.ndarray],
    predicted: list[np.ndarray],
    worst: list[dict[str, Any]],
    path: Path,
    *,
    title: str,
) -> Path:
    """The images with the lowest IoU: truth | prediction | wrong pixels."""
    panels = [mask_panels(i, t, p) for i, t, p in zip(images, truths, predicted)]
    captions = [f"IoU {r['iou']:.2f}, pixel acc. {r['pixel_accuracy']:.2f}" for r in worst]
    return mistakes_png(
        panels,
        captions,
        path,
        title=f"{title}\n(truth | prediction | wrong pixels in red)",
        columns=2,
        inches=6.0,
    )


def per_class_png(
    groups: list[tuple[str, list[tuple[str, dict[str, Any]]]]], path: Path, *, title: str
) -> Path:
    """Bars with their intervals: per group (e.g. "AP per class", "AP by box size") a row of
    (name, {value, low, high}); undefined values are left out and named as such."""
    fig = _figure(min(16.0, 3.0 + 0.5 * max(len(g[1]) for g in groups)), 3.4 * len(groups))
    for i, (label, items) in enumerate(groups, start=1):
        ax = fig.add_subplot(len(groups), 1, i)
        x = np.arange(len(items))
        values = np.array([m["value"] if m["value"] is not None else np.nan for _, m in items])
        low = np.array(
            [m["low"] if m["low"] is not None else v for (_, m), v in zip(items, values)]
        )
        high = np.array(
            [m["high"] if m["high"] is not None else v for (_, m), v in zip(items, values)]
        )
        ok = ~np.isnan(values)
        ax.bar(x[ok], values[ok], color="C0")
        for xi, v in zip(x[ok], values[ok]):
            ax.text(xi, v + 0.02, f"{v:.3f}", ha="center", va="bottom", fontsize=7)
        ax.errorbar(
            x[ok],
            values[ok],
            yerr=[values[ok] - low[ok], high[ok] - values[ok]],
            fmt="none",
            ecolor="black",
            capsize=3,
        )
        ax.set_xticks(list(x))
        ax.set_xticklabels(
            [name[:16] + ("" if okay else " (none)") for (name, _), okay in zip(items, ok)],
            rotation=30 if len(items) > 6 else 0,
            ha="right" if len(items) > 6 else "center",
            fontsize=8,
        )
        ax.set_ylim(0, 1.05)
        ax.set_ylabel(label, fontsize=8)
    fig.suptitle(title, fontsize=10)
    return _save(fig, path)
