"""Data sources: each yields candidate samples without decoding them.

A source is `builtin:NAME`, a folder of class sub-folders (images, DICOM), a table (CSV, TSV,
JSONL, Parquet) with a path, text or feature columns, or a remote URI (fsspec) of either.
A candidate whose label or id is unusable carries `problem` and is quarantined.
"""

from __future__ import annotations

import os
import stat
import unicodedata
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dlworkflow.errors import DataError
from dlworkflow.tasks import task_of

if TYPE_CHECKING:
    from dlworkflow.workspace import Workspace

IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".gif", ".dcm"}
TABLE_EXTENSIONS = {".csv", ".tsv", ".jsonl", ".json", ".parquet", ".pq"}


@dataclass
class Candidate:
    sample_id: str
    label: str | None
    group: str | None = None
    path: Path | None = None  # image tasks
    text: str | None = None  # text tasks
    features: dict[str, Any] | None = None  # tabular tasks
    problem: str | None = None  # a reason to quarantine before reading the content
    origin: Path | None = None  # a tile's source image (path is the tile, under .dlw/)
    series: Any | None = None  # sequence tasks: the float (C, T) array (NaN: missing)
    source_split: str | None = None  # sequence tasks: the source's own "train" | "test"


@dataclass
class SourceScan:
    kind: str  # folder | table | builtin:NAME (+ remote)
    candidates: Iterator[Candidate]
    skipped: list[str] = field(default_factory=list)  # files that are not samples
    columns: dict[str, str] = field(default_factory=dict)  # tabular: feature -> dtype kind
    location: str = ""  # the local folder or file actually read
    root: str = ""  # tables: the folder every path must lie in (data.root or the table's)
    notes: list[str] = field(default_factory=list)  # what reading it counted (boxes, tiles)


#: Sources whose targets are annotations over the image, by the task's target kind:
#: "module:function" (project, path) -> SourceScan.
ANNOTATED = {
    "detection": "dlworkflow.data.box_source:scan_boxes",
    "segmentation": "dlworkflow.data.masks_ingest:scan_masks",
}


#: Sources of the modalities whose samples are not images, texts or table rows:
#: "module:function" (project, path) -> SourceScan.
MODALITY_SOURCES = {
    "sequence": "dlworkflow.data.series_source:scan_series",
    "audio": "dlworkflow.data.audio_source:scan_audio",
}


def open_source(project: Workspace, source: str) -> SourceScan:
    if source.startswith("builtin:"):
        from dlworkflow.data.builtin import materialise

        scan = open_path(project, materialise(project, source.removeprefix("builtin:")))
        scan.kind = source
        return scan
    if "://" in source and not source.startswith("file://"):
        from dlworkflow.data.remote import open_remote

        return open_remote(project, source)
    return open_path(project, Path(source.removeprefix("file://")).expanduser())


def open_path(project: Workspace, path: Path) -> SourceScan:
    from dlworkflow.data.tables import scan_table

    if not path.exists():
        raise DataError(
            f"Data source {str(path)!r} does not exist.",
            expected="builtin:NAME, a folder of class sub-folders, a table (CSV, TSV, JSONL, "
            "Parquet) or a remote URI (s3://, gs://, https://, ... through fsspec)",
            received=str(path.resolve()),
            fix="check the path; `dlw datasets` lists the built-in datasets",
        )
    path = path.resolve()
    task = task_of(project.config.task)
    annotated = ANNOTATED.get(task.kind) or MODALITY_SOURCES.get(task.modality)
    if annotated is not None:  # dense targets (annotation files beside or listed), series, clips
        import importlib

        module, function = annotated.split(":")
        scan: SourceScan = getattr(importlib.import_module(module), function)(project, path)
        return scan
    if path.is_dir():
        if task_of(project.config.task).modality != "image":
            raise DataError(
                f"A folder source holds images, but the task is {project.config.task}.",
                expected="a table with a text or feature columns for this task",
                received=f"folder {path}",
                fix="point `dlw ingest` at a CSV/JSONL/Parquet file",
            )
        return scan_folder(path)
    if path.suffix.lower() in TABLE_EXTENSIONS:
        from dlworkflow.data.builtin import table_root

        return scan_table(path, project.config, root=table_root(project, path))
    raise DataError(
        f"Cannot read data source {str(path)!r}.",
        expected=f"a folder, a table ({', '.join(sorted(TABLE_EXTENSIONS))}) or builtin:NAME",
        received=f"a file ending in {path.suffix or '(no extension)'}",
        fix="point `dlw ingest` at a folder of class sub-folders or a table with a label column",
    )


def scan_folder(root: Path) -> SourceScan:
    """root/<class>/.../<image>: the first folder level is the label."""
    if not any(child.is_dir() and not child.name.startswith(".") for child in root.iterdir()):
        raise DataError(
            f"{root} has no class sub-folders.",
            expected="one sub-folder per class, each holding that class's images",
            received="a folder with no sub-folders",
            fix="arrange the images as ROOT/<class name>/<image>, or ingest a table "
            "with path and label columns",
        )
    scan = SourceScan(kind="folder", candidates=iter(()), location=str(root))
    scan.candidates = _folder_candidates(root, scan.skipped)
    return scan


def _folder_candidates(
    root: Path, skipped: list[str], *, extensions: Collection[str] = IMAGE_EXTENSIONS
) -> Iterator[Candidate]:
    """Sample ids (and labels) are Unicode NFC: a file named in NFD (macOS) and the same
    name in NFC have one id; a second file with the same id is quarantined. Files whose
    extension is not in `extensions` (lower case, with the dot) are skipped. The ids seen are
    kept as compact digests (SeenIds): memory stays flat however many files there are."""
    from dlworkflow.data.id_set import SeenIds

    seen = SeenIds()
    for file, problem in _walk(root, root, root.resolve(), skipped, set()):
        rel = file.relative_to(root).as_posix()
        name = _utf8(rel)
        if name is None:
            shown = os.fsencode(rel).decode("utf-8", "backslashreplace")
            if file.suffix.lower() in extensions:
                yield Candidate(shown, None, problem=f"file name is not valid UTF-8: {shown!r}")
            else:
                skipped.append(f"{shown} (file name is not valid UTF-8)")
            continue
        if file.suffix.lower() not in extensions:
            skipped.append(name if problem is None else f"{name} ({problem})")
            continue
        parts = name.split("/")
        label = parts[0] if len(parts) > 1 else None
        if name in seen:
            problem = problem or f"duplicate id {name!r} (a name in another Unicode form)"
            name = f"{name}#{len(seen)}"
        seen.add(name)
        if label is None:
            problem = problem or "no label: not inside a class sub-folder"
        yield Candidate(name, label, path=file, problem=problem)


def _utf8(text: str) -> str | None:
    """text in Unicode NFC, or None when it holds bytes that are not UTF-8 (Python keeps
    those as lone surrogates)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return None
    return unicodedata.normalize("NFC", text)


def _walk(
    folder: Path, root: Path, real_root: Path, skipped: list[str], walking: set[Path]
) -> Iterator[tuple[Path, str | None]]:
    """(file, problem) below folder in a stable (sorted) order, one folder listed at a time;
    hidden files and folders (.DS_Store, .git, .dlw) are not samples. Symlinks are followed
    only inside root (never into a folder being walked: no cycles); a link out of
    root, or a file that is not a regular file (named pipe, device, socket), comes with the
    problem that quarantines it, and is never opened."""
    here = folder.resolve()
    walking.add(here)
    for name in _sorted_names(folder):
        entry = folder / name
        rel = os.fsencode(entry.relative_to(root).as_posix()).decode("utf-8", "backslashreplace")
        if entry.is_symlink():
            try:
                target = entry.resolve(strict=True)
            except (OSError, RuntimeError):
                yield entry, "broken symlink"
                continue
            if not target.is_relative_to(real_root):
                if target.is_dir():
                    skipped.append(f"{rel} (symlinked folder outside the source folder: not read)")
                else:
                    yield entry, "symlink pointing outside the source folder: not read"
                continue
        try:
            mode = entry.stat().st_mode
        except OSError:
            yield entry, "cannot read the file's status"
            continue
        if stat.S_ISDIR(mode):
            if entry.resolve() not in walking:
                yield from _walk(entry, root, real_root, skipped, walking)
        elif stat.S_ISREG(mode):
            yield entry, None
        else:
            from dlworkflow.data.tables import file_kind

            yield entry, f"not a regular file: {file_kind(mode)}"
    walking.discard(here)


def _sorted_names(folder: Path) -> list[str]:
    """The names in folder, hidden ones (.DS_Store, .git, .dlw) left out, sorted: names only
    (a Path per entry, held for a folder of 100,000 files, took ~30 MB)."""
    with os.scandir(folder) as listing:
        names = [entry.name for entry in listing if not entry.name.startswith(".")]
    names.sort()
    return names
