"""Built-in datasets become a folder of PNG files inside the project (.dlw/raw/NAME)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from dlworkflow.datasets import get_builtin
from dlworkflow.fileio import atomic_write_json, read_json

if TYPE_CHECKING:
    from dlworkflow.project import Project


def materialise(project: Project, name: str) -> Path:
    """Write the dataset's images once as ROOT/<label>/<name>-<index>.png; later calls reuse it."""
    from PIL import Image

    dataset = get_builtin(name)
    root = project.paths.raw / name
    marker = root / ".complete.json"
    if marker.is_file() and read_json(marker).get("n_samples") == dataset.n_samples:
        return root
    count = 0
    for index, (label, image) in enumerate(dataset.load()):
        target = root / label / f"{name}-{index:05d}.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(target, optimize=False)
        count += 1
    atomic_write_json(marker, {"n_samples": count, "source": dataset.source,
                               "licence": dataset.licence})
    return root
