"""A folder of `.npy` series with a labels CSV (file,label[,group]).

The labels file is data.series.labels_file (relative to the folder, else to the project) or
`labels.csv` in the folder. Each row names an array inside the folder: 1-D (one channel) or
2-D (channels, length), any numeric dtype. Arrays are loaded with allow_pickle=False: a
pickled or object array is quarantined with the reason, never unpickled. A file listed twice,
missing, outside the folder or over MAX_ARRAY_BYTES is quarantined too; .npy files the labels
file does not list are skipped (named in the summary).
"""

from __future__ import annotations

import csv
import stat
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from dlworkflow.data.series_source import SeriesChecks, check_size, checked, noted
from dlworkflow.data.sources import Candidate, SourceScan
from dlworkflow.errors import DataError
from dlworkflow.store import ImageDecodeError

if TYPE_CHECKING:
    from dlworkflow.workspace import Workspace

LABELS_FILE = "labels.csv"
MAX_ARRAY_BYTES = 512 * 1024 * 1024


def scan_arrays(project: Workspace, folder: Path) -> SourceScan:
    """The candidates of a folder of .npy arrays listed in its labels CSV."""
    labels = _labels_path(project, folder)
    rows = _read_labels(labels)
    scan = SourceScan(kind="npy folder", candidates=iter(()), location=str(folder))
    listed = {(folder / name).resolve() for _, name, _, _ in rows}
    scan.skipped = sorted(
        p.relative_to(folder).as_posix()
        for p in folder.rglob("*.npy")
        if p.resolve() not in listed and not p.name.startswith(".")
    )
    checks = SeriesChecks(project.config.data)
    candidates = _candidates(folder, rows, checks)
    scan.candidates = noted(candidates, scan.notes, f"{len(rows):,} rows of {labels.name}")
    return scan


def _labels_path(project: Workspace, folder: Path) -> Path:
    given = project.config.data.series.labels_file
    if not given:
        path = folder / LABELS_FILE
    else:
        path = Path(given).expanduser()
        if not path.is_absolute():
            path = folder / given if (folder / given).is_file() else project.root / given
    if not path.is_file():
        raise DataError(
            f"The series folder {folder} has no labels file.",
            expected=f"{LABELS_FILE} in the folder (columns file,label[,group]), or "
            "data.series.labels_file; or a <Name>_TRAIN.ts / <Name>_TEST.ts pair",
            received=f"no file {path}",
            fix=f"write {LABELS_FILE} with one row per .npy array: file,label",
        )
    check_size(path, "labels file")
    return path


def _read_labels(path: Path) -> list[tuple[int, str, str | None, str | None]]:
    """(line, file, label, group) of each row."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            names = {(h or "").strip().lower(): h for h in reader.fieldnames or []}
            if "file" not in names or "label" not in names:
                raise DataError(
                    f"The labels file {path.name!r} has no file and label columns.",
                    expected="a CSV with columns file,label (and optionally group)",
                    received=f"columns {', '.join(names) or '(none)'}",
                    fix="name the columns file,label[,group] (files relative to the folder)",
                )
            return [
                (
                    n + 2,
                    (row.get(names["file"]) or "").strip(),
                    (row.get(names["label"]) or "").strip() or None,
                    ((row.get(names["group"]) or "").strip() or None) if "group" in names else None,
                )
                for n, row in enumerate(reader)
            ]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(
            f"The labels file {path.name!r} cannot be read.",
            expected="a UTF-8 CSV with file and label columns",
            received=str(exc)[:300],
            fix="save the labels file as UTF-8 CSV",
        ) from None


def _candidates(
    folder: Path, rows: list[tuple[int, str, str | None, str | None]], checks: SeriesChecks
) -> Iterator[Candidate]:
    root = folder.resolve()
    seen: set[str] = set()
    for line, name, label, group in rows:
        sample_id = unicodedata.normalize("NFC", name) or f"line {line}"
        file = (folder / name).resolve()
        cand = Candidate(sample_id, label, group=group, path=file, origin=file)
        problem = None
        if not name:
            problem = "no file name"
        elif sample_id in seen:
            cand.sample_id = f"{sample_id}#line {line}"
            problem = f"duplicate file {sample_id!r} (first row kept)"
        elif not file.is_relative_to(root):
            problem = f"outside the folder: {name!r} is not inside {root}: not read"
        elif label is None:
            problem = "no label"
        seen.add(sample_id)
        if problem is None:
            try:
                array = load_array(file)
            except ImageDecodeError as exc:
                problem = exc.reason
        if problem is not None:
            cand.problem = f"line {line}: {problem}"
            yield cand
            continue
        cand = checked(cand, array, checks)
        if cand.problem is not None:
            cand.problem = f"line {line}: {cand.problem}"
        yield cand


def load_array(file: Path) -> np.ndarray:
    """The numeric array of one .npy file (never unpickled); ImageDecodeError with the
    reason otherwise."""
    try:
        mode = file.stat().st_mode
    except OSError:
        raise ImageDecodeError("file not found") from None
    if not stat.S_ISREG(mode):
        raise ImageDecodeError("not a regular file")
    if file.stat().st_size > MAX_ARRAY_BYTES:
        raise ImageDecodeError(
            f"too large: {file.stat().st_size:,} bytes (at most {MAX_ARRAY_BYTES:,} per array)"
        )
    try:
        array = np.load(file, allow_pickle=False)
    except ValueError as exc:
        if "pickle" in str(exc).lower():
            raise ImageDecodeError(
                "pickled or object array: not loaded (allow_pickle=False; save the series "
                "as a numeric array)"
            ) from None
        raise ImageDecodeError(f"not a readable .npy array: {str(exc)[:200]}") from None
    except (OSError, EOFError) as exc:
        raise ImageDecodeError(f"not a readable .npy array: {str(exc)[:200]}") from None
    if not isinstance(array, np.ndarray):  # an .npz archive
        array.close()
        raise ImageDecodeError("not a single .npy array (an .npz archive?)")
    if array.dtype.kind not in "fiub":
        raise ImageDecodeError(f"non-numeric values: array of dtype {array.dtype}")
    return array
