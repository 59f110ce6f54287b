"""Data sources: each yields candidate samples without decoding them.

A source is `builtin:NAME`, a folder of class sub-folders (images, DICOM), a table (CSV, TSV,
JSONL, Parquet) with a path, text or feature columns, or a remote URI (fsspec) of either.
A candidate whose label or id is unusable carries `problem` and is quarantined.
"""

from __future__ import annotations

from collections.abc import Iterator
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


@dataclass
class SourceScan:
    kind: str  # folder | table | builtin:NAME (+ remote)
    candidates: Iterator[Candidate]
    skipped: list[str] = field(default_factory=list)  # files that are not samples
    columns: dict[str, str] = field(default_factory=dict)  # tabular: feature -> dtype kind
    location: str = ""  # the local folder or file actually read


def open_source(project: Workspace, source: str) -> SourceScan:
    if source.startswith("builtin:"):
        from dlworkflow.data.builtin import materialise

        scan = open_path(project, materialise(project, source.removeprefix("builtin:")))
        scan.kind = source
        return scan
    if "://" in source and not source.startswith("file://"):
        from dlworkflow.data.remote import fetch

        scan = open_path(project, fetch(project, source))
        scan.kind = f"remote {scan.kind}"
        return scan
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
        return scan_table(path, project.config)
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


def _folder_candidates(root: Path, skipped: list[str]) -> Iterator[Candidate]:
    for file in _walk(root):
        rel = file.relative_to(root)
        if file.suffix.lower() not in IMAGE_EXTENSIONS:
            skipped.append(rel.as_posix())
            continue
        if len(rel.parts) == 1:
            yield Candidate(
                rel.as_posix(), None, path=file, problem="no label: not inside a class sub-folder"
            )
            continue
        yield Candidate(rel.as_posix(), rel.parts[0], path=file)


def _walk(root: Path) -> Iterator[Path]:
    """Files below root in a stable (sorted) order, one folder listed at a time; hidden
    files and folders (.DS_Store, .git, .dlw) are not samples."""
    entries = sorted(root.iterdir(), key=lambda p: p.name)
    for entry in entries:
        if entry.name.startswith("."):
            continue
        if entry.is_dir():
            yield from _walk(entry)
        elif entry.is_file():
            yield entry
