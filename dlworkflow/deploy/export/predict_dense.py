"""`dlw predict`'s CSV for dense models (predict.py hands them here), in each image's pixels:

- object detection: one row per box: path, box (its index in the image, best score first),
  x1, y1, x2, y2 (pixels of the image as shown, EXIF orientation applied), label, score,
  error; the boxes at or above the score threshold tuned on validation. An image with no
  such box keeps one row with empty box fields, so it is not lost; a file that cannot be used
  one row with its error.
- semantic segmentation: one row per image: path, mask (the PNG of its class indices at the
  image's size, written to `<csv name>_masks/` beside the CSV, named by the row's position and
  the image's name; the column holds the path relative to the CSV's folder), share_<class>
  (the share of the mask's pixels in each class), error.

Each writer returns the CSV's rows (header first) and the counts the summary shows (boxes
per label; images per largest class besides the first, background).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from dlworkflow.fileio import atomic_write_bytes
from dlworkflow.runtime.bundle import Bundle
from dlworkflow.runtime.dense import (
    boxes_in_pixels,
    class_shares,
    kept_boxes,
    mask_png,
    score_threshold,
    sized_mask,
)

# (where, the task outputs of the image or None, the error, (width, height) or None)
DenseRecord = tuple[str, "np.ndarray | None", str, "tuple[int, int] | None"]
BOX_COLUMNS = ["path", "box", "x1", "y1", "x2", "y2", "label", "score", "error"]


def box_rows(
    bundle: Bundle, records: Sequence[DenseRecord], out: Path
) -> tuple[list[list[Any]], dict[str, int]]:
    names, threshold = bundle.classes, score_threshold(bundle.target)
    rows: list[list[Any]] = [BOX_COLUMNS]
    counts: Counter[str] = Counter()
    for where, row, error, size in records:
        if row is None or size is None:
            rows.append([where, "", "", "", "", "", "", "", error])
            continue
        kept = kept_boxes(row, threshold)
        if not len(kept):
            rows.append([where, "", "", "", "", "", "", "", ""])
        for index, (box, k) in enumerate(zip(boxes_in_pixels(kept, size), kept)):
            label = names[int(k[5])] if int(k[5]) < len(names) else str(int(k[5]))
            counts[label] += 1
            rows.append([where, index, *(f"{v:.2f}" for v in box), label, f"{k[4]:.6f}", ""])
    return rows, dict(counts)


def masks_folder(out: Path) -> Path:
    """Where `dlw predict` writes the masks of the CSV `out`: `<stem>_masks/` beside it."""
    return out.parent / f"{out.stem}_masks"


def mask_rows(
    bundle: Bundle, records: Sequence[DenseRecord], out: Path
) -> tuple[list[list[Any]], dict[str, int]]:
    names = list(bundle.classes)
    folder = masks_folder(out)
    rows: list[list[Any]] = [["path", "mask", *(f"share_{n}" for n in names), "error"]]
    counts: Counter[str] = Counter()
    for position, (where, row, error, size) in enumerate(records):
        if row is None or size is None:
            rows.append([where, "", *[""] * len(names), error])
            continue
        mask = sized_mask(row, size)
        name = f"{position:05d}_{Path(where).stem[:80]}.png"
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(folder / name, mask_png(mask))
        shares = class_shares(mask, names)
        rest = {n: s for n, s in list(shares.items())[1:] if s > 0}
        counts[max(rest, key=lambda n: (rest[n], n)) if rest else names[0]] += 1
        rows.append([where, f"{folder.name}/{name}", *(f"{shares[n]:.6f}" for n in names), ""])
    return rows, dict(counts)


#: Per target kind (task.kind): the CSV rows of a dense model's predictions.
DENSE_ROWS: dict[
    str, Callable[[Bundle, Sequence[DenseRecord], Path], tuple[list[list[Any]], dict[str, int]]]
] = {"detection": box_rows, "segmentation": mask_rows}
