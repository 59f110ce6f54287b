"""The target section for semantic segmentation: the masks.

Each class's share of the labelled pixels (and the images it appears in), mask coverage per
image (the share of an image's labelled pixels that are not background), the share of
ignored pixels, and sample overlays: images with their mask coloured over them. Read from
the manifest's run-length labels (tasks/masks.py) without building the masks, except for
the overlays.
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

if TYPE_CHECKING:
    from collections.abc import Sequence

    import pandas as pd

    from dlworkflow.explore.evidence import Evidence
    from dlworkflow.tasks.base import Task

RARE_PIXELS = 0.001  # a class with a smaller share of the labelled pixels is rare
EMPTY_WARN = 0.2  # share of images with no foreground worth a warning
GRID_IMAGES = 8  # images shown with their mask over them
GRID_SIDE = 160  # longest side of a drawn overlay, pixels
ALPHA = 0.5  # the mask colour's weight over the image
# a distinct colour per class index (background: none, the image shows through)
COLOURS = (
    (230, 25, 75),
    (60, 180, 75),
    (255, 225, 25),
    (0, 130, 200),
    (245, 130, 48),
    (145, 30, 180),
    (70, 240, 240),
    (240, 50, 230),
    (210, 245, 60),
    (250, 190, 212),
    (0, 128, 128),
    (170, 110, 40),
)


@dataclass
class MaskTarget:
    names: list[str]  # background (the first class) first
    pixels: dict[str, int]  # labelled pixels of each class
    images: dict[str, int]  # images each class appears in
    coverage: np.ndarray  # per image: non-background share of its labelled pixels
    ignored: int  # pixels of the ignore value
    total: int  # every pixel, ignored ones included
    sizes: Counter[tuple[int, int]] = field(default_factory=Counter)
    unreadable: int = 0  # labels that are not masks (counted, not shown)

    @property
    def background(self) -> str:
        return self.names[0] if self.names else "background"

    @property
    def labelled(self) -> int:
        return sum(self.pixels.values())

    @property
    def shares(self) -> dict[str, float]:
        """Each class's share of the labelled pixels."""
        n = max(self.labelled, 1)
        return {k: v / n for k, v in self.pixels.items()}

    @property
    def foreground(self) -> dict[str, int]:
        return {k: v for k, v in self.pixels.items() if k != self.background}

    @property
    def imbalance_ratio(self) -> float:
        """Most / least frequent foreground class, by pixels."""
        counts = [c for c in self.foreground.values() if c > 0]
        return max(counts) / min(counts) if counts else float("nan")

    @property
    def rare(self) -> list[str]:
        shares = self.shares
        return [
            k
            for k in self.foreground
            if shares[k] < RARE_PIXELS or self.images.get(k, 0) < MIN_CLASS_SAMPLES
        ]

    @property
    def empty_share(self) -> float:
        """Share of the images without any foreground pixel."""
        return float((self.coverage == 0).mean()) if len(self.coverage) else float("nan")

    def summary(self) -> dict[str, Any]:
        cov = self.coverage
        return {
            "images": len(cov),
            "classes": len(self.names),
            "pixel_share": self.shares,
            "images_per_class": self.images,
            "coverage_mean": float(cov.mean()) if len(cov) else float("nan"),
            "coverage_median": float(np.median(cov)) if len(cov) else float("nan"),
            "empty_share": self.empty_share,
            "ignored_share": self.ignored / max(self.total, 1),
            "imbalance_ratio": self.imbalance_ratio,
            "rare": self.rare,
        }


def mask_target(manifest: pd.DataFrame, task: Task) -> MaskTarget:
    """Pixel counts per class, coverage per image, from the labels' runs."""
    from dlworkflow.tasks.base import TargetError
    from dlworkflow.tasks.masks import parse_label

    labels = manifest["label"].astype(str).tolist()
    pixels: Counter[str] = Counter()
    images: Counter[str] = Counter()
    sizes: Counter[tuple[int, int]] = Counter()
    coverage, ignored, total, unreadable = [], 0, 0, 0
    first: Counter[str] = Counter()
    for text in labels:
        try:
            parsed = parse_label(text)
        except (TargetError, ValueError):
            unreadable += 1
            continue
        counts = parsed.pixel_counts()
        pixels.update(counts)
        images.update(counts.keys())
        first[parsed.classes[0]] += 1
        sizes[parsed.size] += 1
        n = parsed.size[0] * parsed.size[1]
        done = sum(counts.values())
        total += n
        ignored += n - done
        coverage.append((done - counts.get(parsed.classes[0], 0)) / done if done else 0.0)
    names = task.output_names(labels) if len(labels) > unreadable else []
    if not names:
        names = [c for c, _ in first.most_common(1)] + sorted(set(pixels) - set(first))
    return MaskTarget(
        names=names,
        pixels={k: int(pixels.get(k, 0)) for k in names},
        images={k: int(images.get(k, 0)) for k in names},
        coverage=np.array(coverage, dtype=np.float64),
        ignored=int(ignored),
        total=int(total),
        sizes=sizes,
        unreadable=unreadable,
    )


def masks_section(ev: Evidence) -> Raw:
    t: MaskTarget = ev.target
    shares = t.shares
    n_images = max(len(t.coverage), 1)
    cov = t.coverage
    coverage = distribution(
        cov, title="mask coverage", xlabel="non-background share", noun="images"
    )
    parts = [
        para(
            f"{len(t.names)} classes over {len(cov):,} masks; {t.labelled:,} labelled pixels"
            + (
                f", {t.ignored:,} ignored ({t.ignored / max(t.total, 1):.1%}, data.ignore_index)"
                if t.ignored
                else ""
            )
            + f". Mask coverage (the share of an image's labelled pixels that are not "
            f"{t.background}): mean {_pct(cov.mean() if len(cov) else None)}, median "
            f"{_pct(np.median(cov) if len(cov) else None)}; {t.empty_share:.1%} of the images "
            f"have no foreground. Foreground imbalance (most / least frequent class by "
            f"pixels): {t.imbalance_ratio:.2f}."
        ),
        *coverage.text,
        figures(
            figure(
                fig.bar_chart(
                    list(shares),
                    [round(100 * v, 3) for v in shares.values()],
                    title="share of labelled pixels (%)",
                    highlight=[n in t.rare for n in shares],
                ),
                "pixel share per class",
            ),
            *coverage.figures,
        ),
        table(
            ["class", "pixels", "share of pixels", "images", "share of images"],
            [
                (
                    k,
                    fmt(t.pixels[k]),
                    f"{shares[k]:.2%}",
                    fmt(t.images[k]),
                    _pct(t.images[k] / n_images),
                )
                for k in t.names
            ],
        ),
    ]
    if t.unreadable:
        parts.append(para(f"{t.unreadable:,} labels could not be read as masks.", "note"))
    parts += [heading("Rare classes")]
    parts.append(
        para(", ".join(f"{k} ({shares[k]:.3%} of pixels, {t.images[k]} images)" for k in t.rare))
        if t.rare
        else para("none", "ok")
    )
    parts += [heading("Sample overlays (the mask coloured over the image)"), _grid(ev)]
    return section("classes", "3. Masks", *parts)


def _pct(value: float | None) -> str:
    return "–" if value is None or value != value else f"{value:.1%}"


def _grid(ev: Evidence) -> Raw:
    """Up to GRID_IMAGES explored images (never sealed test samples) with their masks."""
    t: MaskTarget = ev.target
    rows = ev.manifest
    if ev.test_ids:
        rows = rows[~rows["sample_id"].astype(str).isin(ev.test_ids)]
    if not len(rows):
        return para("no images to show", "note")
    rng = np.random.default_rng(0)
    picked = np.sort(rng.choice(len(rows), size=min(GRID_IMAGES, len(rows)), replace=False))
    cells = []
    for row in rows.iloc[picked].itertuples():
        uri = overlay(str(row.path), str(row.label), t.names)
        body = (
            f"<img src='{esc(uri)}' alt='{esc(row.sample_id)}' style='max-width:{GRID_SIDE}px'>"
            if uri
            else "<div class='note'>(image unreadable)</div>"
        )
        cells.append(
            f"<div class='tile'>{body}<div>{esc(mask_caption(str(row.label)))}</div>"
            f"<div class='note'>{esc(str(row.sample_id)[-40:])}</div></div>"
        )
    legend = ", ".join(
        f"{n}: rgb{COLOURS[(i - 1) % len(COLOURS)]}" for i, n in enumerate(t.names) if i
    )
    return Raw(
        f"<div class='tiles'>{''.join(cells)}</div>"
        + para(f"colours: {t.background}: none (the image); {legend}", "note")
    )


def overlay(
    path: str,
    label: str,
    names: Sequence[str],
    *,
    side: int = GRID_SIDE,
    max_pixels: int = 89_478_485,
) -> str | None:
    """A data: URI (PNG) of the image with its mask coloured over it (background and ignored
    pixels left as they are), or None if either cannot be read."""
    from PIL import Image

    from dlworkflow.store import ImageDecodeError, decode_image
    from dlworkflow.store.images import normalise
    from dlworkflow.tasks.base import TargetError
    from dlworkflow.tasks.masks import label_to_mask

    try:
        img = normalise(decode_image(path, max_pixels=max_pixels)).convert("RGB")
        mask = label_to_mask(label, list(names), size=(img.height, img.width))
    except (ImageDecodeError, TargetError, OSError, ValueError):
        return None
    pixels = np.asarray(img, dtype=np.float32)
    palette = np.array([(0, 0, 0), *COLOURS], dtype=np.float32)
    index = np.where(mask == 0, 0, (mask.astype(np.int64) - 1) % len(COLOURS) + 1)
    paint = (mask > 0) & (mask < len(names))  # not background, not ignored
    pixels[paint] = (1 - ALPHA) * pixels[paint] + ALPHA * palette[index[paint]]
    out = Image.fromarray(pixels.round().clip(0, 255).astype(np.uint8))
    scale = min(1.0, side / max(out.size)) if max(out.size) > side else side / max(out.size)
    size = (max(1, round(out.width * scale)), max(1, round(out.height * scale)))
    out = out.resize(size, Image.Resampling.NEAREST)
    buffer = io.BytesIO()
    out.save(buffer, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def mask_caption(text: str) -> str:
    """A mask label (or a caption that starts with one) in words: "3, 7 (coverage 12%)"."""
    import json

    from dlworkflow.tasks.base import TargetError
    from dlworkflow.tasks.masks import parse_label

    try:
        data, end = json.JSONDecoder().raw_decode(text)
        if not isinstance(data, dict) or "rle" not in data:
            return text
        parsed = parse_label(text[:end])
    except (ValueError, TargetError):
        return text
    counts = parsed.pixel_counts()
    background = parsed.classes[0]
    done = max(sum(counts.values()), 1)
    fore = sorted(((n, c) for c, n in counts.items() if c != background), reverse=True)
    cover = sum(n for n, _ in fore) / done
    words = ", ".join(c for _, c in fore[:4]) or f"only {background}"
    return f"{words} (coverage {cover:.0%})" + text[end:]


def masks_warnings(ev: Evidence) -> list[Warning]:
    t: MaskTarget = ev.target
    out = imbalance_warning(
        t.imbalance_ratio,
        "pixel imbalance {ratio} between foreground classes",
        "judge with miou or dice, which weigh every class equally (pixel_accuracy "
        "is dominated by the frequent classes)",
    )
    if t.rare:
        shares = t.shares
        names = ", ".join(f"{k} ({shares[k]:.3%}, {t.images[k]} images)" for k in t.rare[:5])
        out.append(
            Warning(
                "medium",
                f"{len(t.rare)} rare class{'es' if len(t.rare) > 1 else ''} (under "
                f"{RARE_PIXELS:.1%} of the pixels or in fewer than {MIN_CLASS_SAMPLES} "
                f"images): {names}",
                "collect more images showing them: their IoU will be unreliable",
                "classes",
            )
        )
    if t.empty_share == t.empty_share and t.empty_share >= EMPTY_WARN:
        out.append(
            Warning(
                "low",
                f"{t.empty_share:.0%} of the masks have no foreground",
                "check that these images are true negatives, not masks that failed to export",
                "classes",
            )
        )
    return out


def masks_numbers(ev: Evidence) -> list[tuple[str, str]]:
    t: MaskTarget = ev.target
    cov = t.coverage
    return [
        ("classes", fmt(len(t.names))),
        ("mask coverage (mean)", _pct(cov.mean() if len(cov) else None)),
        ("pixel imbalance (foreground)", f"{t.imbalance_ratio:.2f}"),
    ]


def masks_groups(task: Task, targets: Sequence[str]) -> list[str]:
    """The class covering most of the image (background aside)."""
    from dlworkflow.tasks.base import TargetError

    try:
        return task.strata(list(targets))
    except (TargetError, ValueError):
        return ["(unreadable)"] * len(targets)
