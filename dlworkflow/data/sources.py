"""Data sources: each yields candidate samples (id, path, label, group) without decoding them.

A candidate whose label cannot be known is yielded with `problem` set, and is quarantined.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from dlworkflow.errors import DataError

if TYPE_CHECKING:
    from dlworkflow.project import Project

IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".gif"}


@dataclass
class Candidate:
    sample_id: str
    path: Path
    label: str | None
    group: str | None = None
    problem: str | None = None  # a reason to quarantine before decoding


@dataclass
class SourceScan:
    kind: str
    candidates: Iterator[Candidate]
    skipped: list[str]  # files that are not samples (README, .DS_Store): listed, not used


def open_source(project: Project, source: str) -> SourceScan:
    if source.startswith("builtin:"):
        from dlworkflow.data.builtin import materialise

        folder = materialise(project, source.removeprefix("builtin:"))
        return scan_folder(folder, kind=source)
    path = Path(source).expanduser()
    if not path.exists():
        raise DataError(
            f"Data source {source!r} does not exist.",
            expected="builtin:NAME, a folder of class sub-folders of images, or a CSV file "
            "with path and label columns",
            received=str(path.resolve()),
            fix="check the path; `dlw datasets` lists the built-in datasets",
        )
    if path.is_dir():
        return scan_folder(path.resolve(), kind="folder")
    if path.suffix.lower() in (".csv", ".tsv"):
        cfg = project.config.data
        return scan_csv(path.resolve(), path_column=cfg.path_column,
                        label_column=cfg.label_column, group_column=cfg.group_column)
    raise DataError(
        f"Cannot read data source {source!r}.",
        expected="a folder, a .csv/.tsv file, or builtin:NAME",
        received=f"a file ending in {path.suffix or '(no extension)'}",
        fix="point `dlw ingest` at a folder of class sub-folders or a CSV with path,label",
    )


def scan_folder(root: Path, *, kind: str) -> SourceScan:
    """root/<class>/.../<image>: the first folder level is the label."""
    skipped: list[str] = []
    if not any(child.is_dir() for child in root.iterdir()):
        raise DataError(
            f"{root} has no class sub-folders.",
            expected="one sub-folder per class, each holding that class's images",
            received="a folder with no sub-folders",
            fix="arrange the images as ROOT/<class name>/<image>, or ingest a CSV "
            "with path and label columns",
        )

    def candidates() -> Iterator[Candidate]:
        for file in sorted(p for p in root.rglob("*") if p.is_file()):
            rel = file.relative_to(root).as_posix()
            if any(part.startswith(".") for part in file.relative_to(root).parts):
                continue  # hidden files and folders (.DS_Store, .git) are not samples
            if file.suffix.lower() not in IMAGE_EXTENSIONS:
                skipped.append(rel)
                continue
            if file.parent == root:
                yield Candidate(rel, file, None, problem="no label: not inside a class sub-folder")
                continue
            yield Candidate(rel, file, file.relative_to(root).parts[0])

    return SourceScan(kind=kind, candidates=candidates(), skipped=skipped)


def scan_csv(file: Path, *, path_column: str, label_column: str,
             group_column: str | None) -> SourceScan:
    """A CSV (or TSV) with a path column (relative to the file's folder) and a label column."""
    delimiter = "\t" if file.suffix.lower() == ".tsv" else ","
    with open(file, newline="", encoding="utf-8-sig") as handle:
        header = next(csv.reader(handle, delimiter=delimiter), None)
    required = [c for c in (path_column, label_column, group_column) if c]
    missing = [c for c in required if c not in (header or [])]
    if missing:
        raise DataError(
            f"{file.name} lacks the column{'s' if len(missing) > 1 else ''} "
            f"{', '.join(repr(c) for c in missing)}.",
            expected=f"columns {', '.join(required)}",
            received=f"columns {', '.join(header or []) or '(empty file)'}",
            fix="rename the columns, or set data.path_column / data.label_column / "
            "data.group_column in dlworkflow.yaml",
        )

    def candidates() -> Iterator[Candidate]:
        seen: set[str] = set()
        with open(file, newline="", encoding="utf-8-sig") as handle:
            for line, row in enumerate(csv.DictReader(handle, delimiter=delimiter), start=2):
                yield _csv_candidate(file, row, line, seen, path_column, label_column,
                                     group_column)

    return SourceScan(kind="csv", candidates=candidates(), skipped=[])


def _csv_candidate(file: Path, row: dict[str, str | None], line: int, seen: set[str],
                   path_column: str, label_column: str, group_column: str | None) -> Candidate:
    raw_path = (row.get(path_column) or "").strip()
    label = (row.get(label_column) or "").strip()
    group = (row.get(group_column) or "").strip() or None if group_column else None
    sample_id = raw_path or f"{file.name}:line{line}"
    path = (file.parent / raw_path).resolve()
    problem = None
    if not raw_path:
        problem = f"line {line}: empty {path_column}"
    elif raw_path in seen:
        problem = f"line {line}: duplicate id {raw_path!r} (first occurrence kept)"
        sample_id = f"{raw_path}#line{line}"
    elif not label or label.lower() in ("nan", "null", "none", "na", "n/a"):
        problem = f"line {line}: no label (empty or NaN {label_column})"
    seen.add(raw_path)
    return Candidate(sample_id, path, label or None, group, problem=problem)
