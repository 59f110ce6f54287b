"""The samples of one confusion-matrix cell (true class, predicted class) of the train or
validation split.

`dlw evaluate` records the matrix's counts (metrics.json "confusion") but not which sample
fell in which cell, so the cell pages run the trained model over the split once, with the
functions evaluate itself uses (load_split, load_model, label_indices, predict_logits: the
predicted class is the arg-max of the logits, which temperature scaling does not move), and
keep the assignment for the process. Before any cell is shown the assignment's counts are
compared with the recorded matrix: a model trained or a split changed since `dlw evaluate`
gives a different matrix, and the page says to run `dlw evaluate` again instead of listing
samples that do not match the numbers beside them. The sealed test set is never read here
(load_split refuses it)."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dlworkflow.errors import DlwError

if TYPE_CHECKING:
    from dlworkflow.project import Project

PAGE_SIZE = 50


class CellsError(DlwError):
    """The cell samples cannot be listed (not evaluated, or evaluated with another model)."""


@dataclass(frozen=True)
class Sample:
    sample_id: str
    path: str
    true: str
    predicted: str
    image: bool  # a file the image route may serve


@dataclass
class Assignment:
    key: tuple[Any, ...]
    classes: list[str]
    samples: list[Sample]  # every sample of the split with a known label, in split order

    def cell(self, true: int, predicted: int) -> list[Sample]:
        t, p = self.classes[true], self.classes[predicted]
        return [s for s in self.samples if s.true == t and s.predicted == p]

    def counts(self) -> list[list[int]]:
        index = {c: i for i, c in enumerate(self.classes)}
        matrix = [[0] * len(self.classes) for _ in self.classes]
        for s in self.samples:
            matrix[index[s.true]][index[s.predicted]] += 1
        return matrix


_cache: dict[tuple[str, str], Assignment] = {}
_lock = threading.Lock()


def _key(project: Project, split: str) -> tuple[Any, ...]:
    """What the assignment depends on: the metrics file, the trained model, the split."""
    files = (
        project.paths.reports / "evaluate" / split / "metrics.json",
        project.paths.train_dir / "best.json",
        project.paths.state / "split" / "assignments.parquet",
    )
    return tuple((f.stat().st_mtime_ns, f.stat().st_size) if f.is_file() else None for f in files)


def assignment(project: Project, split: str, recorded: list[list[int]]) -> Assignment:
    """Every sample's (true, predicted) on `split` ("train" or "val"), checked against the
    matrix `dlw evaluate` recorded."""
    if split not in ("train", "val"):
        raise CellsError(
            "Only the train and validation splits list their samples.",
            expected="split val or train",
            received=split,
            fix="the test split shows what `dlw test` recorded, never its samples",
        )
    key = _key(project, split)
    with _lock:
        cached = _cache.get((str(project.root), split))
        if cached is None or cached.key != key:
            cached = _compute(project, split, key)
            _cache[(str(project.root), split)] = cached
    if cached.counts() != recorded:
        raise CellsError(
            f"The trained model's predictions on the {split} split no longer give the "
            "confusion matrix `dlw evaluate` recorded: the model or the split changed since.",
            expected="the matrix in reports/evaluate/" + split + "/metrics.json",
            received="a different matrix from the current model",
            fix=f"run `dlw evaluate --split {split}` again",
        )
    return cached


def _compute(project: Project, split: str, key: tuple[Any, ...]) -> Assignment:
    from dlworkflow.models.predict import label_indices, load_model, predict_logits
    from dlworkflow.store import load_split
    from dlworkflow.ui.data import IMAGE_MEDIA

    rows = load_split(project, split)
    model, meta = load_model(project)
    classes = [str(c) for c in meta["classes"]]
    y = label_indices(rows, classes)
    known = y >= 0
    rows, y = rows[known].reset_index(drop=True), y[known]
    predicted = predict_logits(project, model, meta, rows).argmax(axis=1)
    paths = rows["path"].astype(str).tolist() if "path" in rows else [""] * len(rows)
    samples = [
        Sample(
            str(sample_id),
            path,
            classes[int(t)],
            classes[int(p)],
            Path(path).suffix.lower() in IMAGE_MEDIA,
        )
        for sample_id, path, t, p in zip(rows["sample_id"], paths, y, predicted, strict=True)
    ]
    return Assignment(key, classes, samples)


def image_file(project: Project, split: str, sample_id: str) -> tuple[Path, str] | None:
    """(file, media type) of the image of a sample of `split` (train or val): the manifest's
    path for that sample id, if the split assigns it to `split`, through data.servable_image's
    checks; else None. A path given in a request is never opened. The rows are the data pages'
    cached ones (no Parquet read per thumbnail)."""
    from dlworkflow.ui.data import samples, servable_image

    if split not in ("train", "val") or not project.paths.manifest.is_file():
        return None
    row = samples(project).row(sample_id)
    if row is None or row["split"] != split:
        return None
    return servable_image(project, row["path"])
