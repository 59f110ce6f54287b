"""The target section for object detection: the boxes.

Boxes per image (and the images without any: negatives), box sizes and aspect ratios by
class, class balance counted by box, duplicate boxes within an image (same class, IoU above
DUPLICATE_IOU: a copy the annotation tool made twice) and a grid of samples with their boxes
drawn. Sizes are in pixels of the stored image (a tile, when data.tiles cut the images).
"""

from __future__ import annotations

import base64
import io
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from dlworkflow.explore import figures as fig
from dlworkflow.explore.distributions import distribution
from dlworkflow.explore.render import Raw, esc, figure, figures, fmt, heading, para, section, table
from dlworkflow.explore.trust import MIN_CLASS_SAMPLES, Warning, imbalance_warning
from dlworkflow.style import SERIES

if TYPE_CHECKING:
    from collections.abc import Sequence

    import pandas as pd

    from dlworkflow.explore.evidence import Evidence
    from dlworkflow.tasks.base import Task

DUPLICATE_IOU = 0.95  # two boxes of one class overlapping this much are one object twice
SMALL_SIDE = 8.0  # boxes with a shorter side (pixels) are hard to detect at any input size
SMALL_WARN = 0.1  # share of such boxes worth a warning
GRID_IMAGES = 8  # images drawn with their boxes
GRID_SIDE = 192  # longest side of a drawn image, pixels
SHOWN_DUPLICATES = 20
COLOURS = SERIES


@dataclass
class BoxTarget:
    n_images: int
    negatives: int  # images without boxes
    per_image: np.ndarray  # boxes in each image (int)
    widths: np.ndarray  # one per box, pixels
    heights: np.ndarray
    classes_of_box: np.ndarray  # str, one per box
    boxes_per_class: dict[str, int]
    images_per_class: dict[str, int]
    # (sample_id, box i, box j, IoU, class), 1-based box numbers in the label's order
    duplicates: list[tuple[str, int, int, float, str]] = field(default_factory=list)
    unreadable: int = 0  # labels that are not boxes (counted, not shown)

    @property
    def n_boxes(self) -> int:
        return int(self.per_image.sum())

    @property
    def imbalance_ratio(self) -> float:
        counts = [c for c in self.boxes_per_class.values() if c > 0]
        return max(counts) / min(counts) if counts else float("nan")

    @property
    def rare(self) -> list[str]:
        return [k for k, v in self.boxes_per_class.items() if v < MIN_CLASS_SAMPLES]

    @property
    def small_share(self) -> float:
        if not len(self.widths):
            return float("nan")
        return float((np.minimum(self.widths, self.heights) < SMALL_SIDE).mean())

    def summary(self) -> dict[str, Any]:
        return {
            "images": self.n_images,
            "boxes": self.n_boxes,
            "negatives": self.negatives,
            "boxes_per_image": float(self.per_image.mean()) if self.n_images else float("nan"),
            "boxes_per_class": self.boxes_per_class,
            "imbalance_ratio": self.imbalance_ratio,
            "duplicate_boxes": len(self.duplicates),
            "small_share": self.small_share,
        }


def box_target(manifest: pd.DataFrame, task: Task) -> BoxTarget:
    from dlworkflow.tasks.base import TargetError
    from dlworkflow.tasks.detection import load_boxes

    per_image, widths, heights, names = [], [], [], []
    images_per_class: Counter[str] = Counter()
    duplicates: list[tuple[str, int, int, float, str]] = []
    unreadable = 0
    for sid, label in zip(manifest["sample_id"].astype(str), manifest["label"].astype(str)):
        try:
            _, boxes = load_boxes(label)
        except TargetError:
            unreadable += 1
            continue
        per_image.append(len(boxes))
        for x1, y1, x2, y2, name in boxes:
            widths.append(x2 - x1)
            heights.append(y2 - y1)
            names.append(name)
        images_per_class.update({b[4] for b in boxes})
        duplicates += duplicate_boxes(sid, boxes)
    counts = Counter(names)
    order = sorted(counts, key=lambda k: (-counts[k], k))
    return BoxTarget(
        n_images=len(per_image),
        negatives=sum(1 for n in per_image if n == 0),
        per_image=np.array(per_image, dtype=np.int64),
        widths=np.array(widths, dtype=np.float64),
        heights=np.array(heights, dtype=np.float64),
        classes_of_box=np.array(names, dtype=object).astype(str),
        boxes_per_class={k: counts[k] for k in order},
        images_per_class={k: images_per_class[k] for k in order},
        duplicates=duplicates,
        unreadable=unreadable,
    )


def duplicate_boxes(
    sample_id: str, boxes: Sequence[tuple[float, float, float, float, str]]
) -> list[tuple[str, int, int, float, str]]:
    """Pairs of boxes of one class in one image whose IoU exceeds DUPLICATE_IOU."""
    from dlworkflow.tasks.boxes import iou_matrix

    out = []
    by_class: dict[str, list[int]] = {}
    for i, box in enumerate(boxes):
        by_class.setdefault(box[4], []).append(i)
    for name, members in by_class.items():
        if len(members) < 2:
            continue
        coords = np.array([boxes[i][:4] for i in members], dtype=np.float64)
        iou = iou_matrix(coords, coords)
        for a, b in zip(*np.nonzero(np.triu(iou > DUPLICATE_IOU, k=1))):
            out.append((sample_id, members[a] + 1, members[b] + 1, float(iou[a, b]), name))
    return out


# --- the report section -------------------------------------------------------------------


def boxes_section(ev: Evidence) -> Raw:
    t: BoxTarget = ev.target
    names = list(t.boxes_per_class)
    total = max(t.n_boxes, 1)
    mean = t.per_image.mean() if t.n_images else float("nan")
    per_image = distribution(t.per_image, title="boxes per image", xlabel="boxes", noun="images")
    parts = [
        para(
            f"{t.n_boxes:,} boxes of {len(names)} class{'es' if len(names) != 1 else ''} in "
            f"{t.n_images:,} images ({t.negatives:,} without boxes: negatives, valid); "
            f"{fmt(float(mean))} boxes per image on average, at most "
            f"{int(t.per_image.max()) if t.n_images else 0}. Sizes are in pixels of the stored "
            "image (a tile when data.tiles cut the images)."
        ),
        *per_image.text,
        figures(*_figures(t), *per_image.figures),
        heading("Class balance, by box"),
        table(
            [
                "class",
                "boxes",
                "share of boxes",
                "images",
                "median width",
                "median height",
                "median width / height",
            ],
            [_class_row(t, k, total) for k in names],
        ),
        heading(
            f"Duplicate boxes within an image (same class, IoU > {DUPLICATE_IOU}): "
            f"{len(t.duplicates):,}"
        ),
    ]
    if t.duplicates:
        parts.append(
            table(
                ["sample", "boxes", "IoU", "class"],
                [
                    (s, f"{i} and {j}", f"{v:.3f}", c)
                    for s, i, j, v, c in t.duplicates[:SHOWN_DUPLICATES]
                ],
            )
        )
    else:
        parts.append(para("none found", "ok"))
    if t.unreadable:
        parts.append(para(f"{t.unreadable:,} labels could not be read as boxes.", "note"))
    parts += [heading("Samples with their boxes drawn (a fixed random choice)"), _grid(ev)]
    return section("classes", "3. Boxes", *parts)


def _figures(t: BoxTarget) -> list[Raw]:
    names = list(t.boxes_per_class)
    rare = set(t.rare)
    out = [
        figure(
            fig.bar_chart(
                names,
                list(t.boxes_per_class.values()),
                title="boxes per class",
                ylabel="boxes",
                highlight=[n in rare for n in names],
            ),
            "class balance by box",
        ),
    ]
    if len(t.widths):
        side = np.sqrt(t.widths * t.heights)
        aspect = t.widths / t.heights
        out += [
            figure(
                fig.histograms_by_class(
                    side,
                    t.classes_of_box,
                    title="box size by class",
                    xlabel="sqrt(width x height), pixels",
                ),
                "box size by class",
            ),
            figure(
                fig.histograms_by_class(
                    np.log2(aspect),
                    t.classes_of_box,
                    title="aspect ratio by class",
                    xlabel="log2(width / height): 0 square, 1 twice as wide",
                ),
                "aspect ratio by class",
            ),
        ]
    return out


def _class_row(t: BoxTarget, name: str, total: int) -> tuple[str, ...]:
    mine = t.classes_of_box == name
    w, h = t.widths[mine], t.heights[mine]
    n = t.boxes_per_class[name]
    return (
        name,
        fmt(n),
        f"{n / total:.1%}",
        fmt(t.images_per_class.get(name, 0)),
        fmt(float(np.median(w))),
        fmt(float(np.median(h))),
        fmt(float(np.median(w / h))),
    )


def _grid(ev: Evidence) -> Raw:
    """Up to GRID_IMAGES explored images (never sealed test samples), boxes drawn."""
    rows = ev.manifest
    if ev.test_ids:
        rows = rows[~rows["sample_id"].astype(str).isin(ev.test_ids)]
    if not len(rows):
        return para("no images to show", "note")
    rng = np.random.default_rng(0)
    picked = np.sort(rng.choice(len(rows), size=min(GRID_IMAGES, len(rows)), replace=False))
    cells = []
    for row in rows.iloc[picked].itertuples():
        uri = drawn(str(row.path), str(row.label))
        body = (
            f"<img src='{esc(uri)}' alt='{esc(row.sample_id)}' style='max-width:{GRID_SIDE}px'>"
            if uri
            else "<div class='note'>(image unreadable)</div>"
        )
        cells.append(
            f"<div class='tile'>{body}<div>{esc(box_caption(str(row.label)))}</div>"
            f"<div class='note'>{esc(str(row.sample_id)[-40:])}</div></div>"
        )
    legend = ", ".join(
        f"{n}: {COLOURS[i % len(COLOURS)]}"
        for i, n in enumerate(list(ev.target.boxes_per_class)[: len(COLOURS)])
    )
    return Raw(f"<div class='tiles'>{''.join(cells)}</div>" + para(f"colours: {legend}", "note"))


def drawn(
    path: str, label: str, *, side: int = GRID_SIDE, max_pixels: int = 89_478_485
) -> str | None:
    """A data: URI (PNG) of the image with its boxes drawn, or None if it cannot be read."""
    from PIL import ImageDraw

    from dlworkflow.store import ImageDecodeError, decode_image
    from dlworkflow.store.images import normalise
    from dlworkflow.tasks.base import TargetError
    from dlworkflow.tasks.detection import load_boxes

    try:
        img = normalise(decode_image(path, max_pixels=max_pixels)).convert("RGB")
        _, boxes = load_boxes(label)
    except (ImageDecodeError, TargetError, OSError, ValueError):
        return None
    scale = min(1.0, side / max(img.size))
    if scale < 1.0:
        img = img.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))))
    draw = ImageDraw.Draw(img)
    order = sorted({b[4] for b in boxes})
    for x1, y1, x2, y2, name in boxes:
        colour = COLOURS[order.index(name) % len(COLOURS)]
        draw.rectangle([x1 * scale, y1 * scale, x2 * scale, y2 * scale], outline=colour, width=2)
    buffer = io.BytesIO()
    img.save(buffer, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def box_caption(text: str) -> str:
    """A boxes label (or a caption holding one: "train: {...}") in words: "12 boxes (Tree
    12)"."""
    import json

    start = text.find('{"size"')
    if start < 0:
        return text
    try:
        data, end = json.JSONDecoder().raw_decode(text, start)
    except ValueError:
        return text
    if not isinstance(data, dict) or not isinstance(data.get("boxes"), list):
        return text
    counts = Counter(str(b[4]) for b in data["boxes"] if isinstance(b, list) and len(b) == 5)
    n = sum(counts.values())
    words = f"{n} box{'es' if n != 1 else ''}" + (
        " (" + ", ".join(f"{k} {v}" for k, v in counts.most_common(3)) + ")" if n else ""
    )
    return text[:start] + words + text[end:]


# --- trust summary, key numbers, groups ---------------------------------------------------


def boxes_warnings(ev: Evidence) -> list[Warning]:
    t: BoxTarget = ev.target
    out = imbalance_warning(
        t.imbalance_ratio,
        "class imbalance {ratio} by box (most / least frequent class)",
        "judge with map (every class weighs the same) and look at the per-class AP",
    )
    if t.rare:
        names = ", ".join(f"{k} ({t.boxes_per_class[k]})" for k in t.rare[:5])
        out.append(
            Warning(
                "medium",
                f"{len(t.rare)} class{'es' if len(t.rare) > 1 else ''} with fewer than "
                f"{MIN_CLASS_SAMPLES} boxes: {names}",
                "annotate more of them: their AP on validation and test will be unreliable",
                "classes",
            )
        )
    if t.duplicates:
        images = len({d[0] for d in t.duplicates})
        out.append(
            Warning(
                "medium",
                f"{len(t.duplicates)} duplicate box{'es' if len(t.duplicates) > 1 else ''} "
                f"(same class, IoU > {DUPLICATE_IOU}) in {images} image{'s' if images > 1 else ''}",
                "remove the copies: a network that finds the object once is counted as missing "
                "the copy",
                "classes",
            )
        )
    if t.small_share == t.small_share and t.small_share >= SMALL_WARN:
        out.append(
            Warning(
                "low",
                f"{t.small_share:.0%} of the boxes have a side shorter than {SMALL_SIDE:g} px",
                "keep data.image.size large enough (or tile the images: data.tiles) so that "
                "they stay visible to the network",
                "classes",
            )
        )
    return out


def boxes_numbers(ev: Evidence) -> list[tuple[str, str]]:
    t: BoxTarget = ev.target
    mean = float(t.per_image.mean()) if t.n_images else float("nan")
    return [
        ("boxes", f"{t.n_boxes:,} in {t.n_images:,} images ({t.negatives:,} without boxes)"),
        ("boxes per image", fmt(mean)),
        ("classes", fmt(len(t.boxes_per_class))),
        ("imbalance (by box)", f"{t.imbalance_ratio:.2f}"),
        ("duplicate boxes", fmt(len(t.duplicates))),
    ]


def boxes_groups(task: Task, targets: Sequence[str]) -> list[str]:
    return task.strata(list(targets))  # the image's most frequent box class, or "(none)"
