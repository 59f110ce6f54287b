"""What the explanation figures of every modality share: the file of an item's figure, its
caption, where it is saved (relative to the project folder, as the evaluation's figure paths
are) and the colours of an attribution (red: for the predicted class, blue: against)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dlworkflow.evaluate.figures import _save

if TYPE_CHECKING:
    from dlworkflow.workspace import Workspace

SAFE = re.compile(r"[^A-Za-z0-9_.-]+")
IMAGE_SUFFIXES = ("png", "jpg", "jpeg", "bmp", "gif", "tif", "tiff", "webp", "dcm")


def item_path(folder: Path, item: dict[str, Any], k: int) -> Path:
    """<kind>-<k>-<sample id>.png: mistakes and correct ones listed in order, one file each."""
    name = SAFE.sub("_", item["sample_id"])
    stem, dot, suffix = name.rpartition(".")
    name = stem if dot and suffix.lower() in IMAGE_SUFFIXES else name  # no "x.png.png"
    return folder / f"{item['kind']}-{k:02d}-{name[:60]}.png"


def caption(item: dict[str, Any]) -> str:
    """'true 3, predicted 8 (0.93)'."""
    return f"true {item['true']}, predicted {item['predicted']} ({item['confidence']:.2f})"


def save_item(
    project: Workspace, fig: Any, path: Path, item: dict[str, Any], *, tight: bool = True
) -> None:
    """Save the figure and record it in the item, relative to the project folder."""
    _save(fig, path, tight=tight)
    item["figure"] = path.relative_to(project.root).as_posix()


def attribution_colour(value: float) -> tuple[float, float, float, float]:
    """RGBA of an attribution scaled to [-1, 1]: red for, blue against, paler when small."""
    from matplotlib import colormaps

    v = max(-1.0, min(1.0, float(value)))
    r, g, b, _ = colormaps["RdBu_r"](0.5 + 0.5 * v)
    return (r, g, b, 1.0)
