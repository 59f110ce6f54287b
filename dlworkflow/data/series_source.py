"""The source of a sequence-classification project: labelled series, read in place.

Sources (`scan_series` decides by the path):
- a UCR/UEA `.ts` file (store.ts_format; labels: the class values). `<Name>_TRAIN.ts` whose
  `<Name>_TEST.ts` lies beside it, or a folder holding one such pair, reads both: ids
  `train/0007` and `test/0012`, `source_split` "train" / "test" (split.use_source_split keeps
  that division as the sealed test set);
- a long CSV / Parquet table (one row per time step) or a wide one (one row per series):
  data/series_tables.py;
- a folder of `.npy` arrays with a labels CSV: data/series_arrays.py.

Every series is checked the same way (`SeriesChecks`), and quarantined with the reason when it
holds values that are not numbers (or infinite, or beyond float32), has a run of missing
values longer than data.max_gap (shorter runs are interpolated) or missing values at either
end, fewer steps than data.series.min_length or more than max_length, more channels than
max_channels, or another channel count than the data set's (the .ts header's @dimensions,
else the first usable series'). `read_series_candidate` writes a usable series once,
content-addressed, under .dlw/series/ (store.series). Originals are only read; a table or
.ts file over MAX_SOURCE_BYTES is refused (DataError), as is a source that cannot be parsed
at all, while one bad series is quarantined.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from dlworkflow.data.sources import TABLE_EXTENSIONS, Candidate, SourceScan
from dlworkflow.errors import DataError
from dlworkflow.store import ImageDecodeError

if TYPE_CHECKING:
    from dlworkflow.config import Data
    from dlworkflow.workspace import Workspace

#: the largest table or .ts file a sequence source may be (read whole, or parsed line by line)
MAX_SOURCE_BYTES = 256 * 1024 * 1024
TS_SUFFIX = ".ts"
FLOAT32_MAX = float(np.finfo(np.float32).max)  # a larger value would be stored as inf
SERIES_TABLES = {".csv", ".tsv", ".parquet", ".pq"}


def scan_series(project: Workspace, path: Path) -> SourceScan:
    """The candidates of a sequence source (a .ts file or pair, a table, a folder)."""
    if path.is_dir():
        pair = _pair_in(path)
        if pair is not None:
            return _scan_ts(project, pair, location=path)
        from dlworkflow.data.series_arrays import scan_arrays

        return scan_arrays(project, path)
    suffix = path.suffix.lower()
    if suffix == TS_SUFFIX:
        test = _test_sibling(path)
        return _scan_ts(project, (path, test) if test else (path,), location=path)
    if suffix in SERIES_TABLES:
        from dlworkflow.data.series_tables import scan_series_table

        return scan_series_table(project, path)
    raise DataError(
        f"Cannot read the series source {path.name!r}.",
        expected="a UCR/UEA .ts file (or a folder with <Name>_TRAIN.ts and <Name>_TEST.ts), "
        "a long or wide CSV / Parquet table, or a folder of .npy arrays with labels.csv",
        received=f"a file ending in {path.suffix or '(no extension)'}"
        + (" (this table type is not read for series)" if suffix in TABLE_EXTENSIONS else ""),
        fix="convert the series to one of these forms",
    )


def check_size(path: Path, what: str) -> None:
    """DataError when the file is over MAX_SOURCE_BYTES (it would be read whole)."""
    size = path.stat().st_size
    if size > MAX_SOURCE_BYTES:
        raise DataError(
            f"The {what} {path.name!r} is too large to read as a series source.",
            expected=f"at most {MAX_SOURCE_BYTES:,} bytes",
            received=f"{size:,} bytes",
            fix="split it into several files, or convert it to a folder of .npy arrays "
            "(one per series) with a labels.csv",
        )


# --- the checks every series passes ---------------------------------------------------------


class SeriesChecks:
    """Quarantine reasons of one source's series; the data set's channel count is fixed by
    `channels` (a .ts header's @dimensions) or else by the first usable series."""

    def __init__(self, data: Data, *, channels: int | None = None, where: str = "") -> None:
        self.data = data
        self.channels = channels
        self.source = where or "the first usable series"

    def check(self, array: Any) -> tuple[np.ndarray | None, str | None]:
        """(the series with short gaps filled, None) or (None, the reason)."""
        filled, problem = series_problem(array, self.data)
        if problem is not None or filled is None:
            return None, problem
        if self.channels is None:
            self.channels = int(filled.shape[0])
        elif filled.shape[0] != self.channels:
            return None, (
                f"channel count: {filled.shape[0]} channel(s), the data set has "
                f"{self.channels} (from {self.source})"
            )
        return filled, None


def series_problem(array: Any, data: Data) -> tuple[np.ndarray | None, str | None]:
    """(the float32 (C, T) series with short gaps filled, None), or (None, why it is
    quarantined): not numeric, a shape that is not (T,) or (C, T), too short, too long, too
    many channels, a value float32 cannot hold, an infinite value, a run of missing values
    over data.max_gap (or missing values at either end)."""
    from dlworkflow.store.series import fill_gaps

    a = np.asarray(array)
    if a.dtype.kind not in "fiub":
        return None, f"non-numeric values: array of dtype {a.dtype}"
    if a.ndim == 1:
        a = a[None, :]
    if a.ndim != 2:
        return None, f"shape {tuple(a.shape)}: a series is (length,) or (channels, length)"
    fmt = data.series
    channels, length = a.shape
    if channels > fmt.max_channels:
        return None, f"too many channels: {channels} (data.series.max_channels: {fmt.max_channels})"
    if length < fmt.min_length:
        return None, f"too short: {length} step(s) (data.series.min_length: {fmt.min_length})"
    if length > fmt.max_length:
        return None, f"too long: {length:,} steps (data.series.max_length: {fmt.max_length:,})"
    values = a.astype(np.float64)
    finite = values[np.isfinite(values)]
    if finite.size and np.abs(finite).max() > FLOAT32_MAX:
        return None, f"float32 overflow: a value of {np.abs(finite).max():.3g} (beyond +-3.4e38)"
    filled, problem = fill_gaps(values, data.max_gap)
    if problem is not None:
        return None, problem if problem.startswith("infinite") else f"missing values: {problem}"
    return filled, None


def read_series_candidate(project: Workspace, cand: Candidate) -> dict[str, Any]:
    """The manifest columns of one series (written once under .dlw/series/); a series that
    fails the checks raises ImageDecodeError (quarantined with the reason)."""
    from dlworkflow.store.series import write_series

    if cand.series is None:
        raise ImageDecodeError("no series was read for this sample")
    filled, problem = series_problem(cand.series, project.config.data)
    if problem is not None or filled is None:
        raise ImageDecodeError(problem or "unusable series")
    path, digest = write_series(project.paths.state, filled)
    origin = cand.origin or cand.path
    return {
        "path": str(path),
        "origin_path": str(origin) if origin is not None else None,
        "content_hash": digest,
        "bytes": int(filled.nbytes),
        "mtime_ns": 0,
        "length": int(filled.shape[1]),
        "channels": int(filled.shape[0]),
        "source_split": cand.source_split,
    }


def checked(cand: Candidate, array: Any, checks: SeriesChecks) -> Candidate:
    """`cand` with the checked series, or with the reason it is quarantined."""
    filled, problem = checks.check(array)
    if problem is not None:
        cand.problem = cand.problem or problem
    else:
        cand.series = filled
    return cand


def noted(candidates: Iterator[Candidate], notes: list[str], what: str) -> Iterator[Candidate]:
    """The candidates, then one note: how many series (per source split), of how many
    channels and steps."""
    channels: set[int] = set()
    lengths: list[int] = []
    parts: Counter[str] = Counter()
    for cand in candidates:
        if cand.series is not None and cand.problem is None:
            channels.add(int(cand.series.shape[0]))
            lengths.append(int(cand.series.shape[1]))
            parts[cand.source_split or ""] += 1
        yield cand
    if lengths:
        low, high = min(lengths), max(lengths)
        steps = f"{low:,}" if low == high else f"{low:,}-{high:,}"
        split = f" ({parts['train']:,} train, {parts['test']:,} test)" if set(parts) - {""} else ""
        shown = "/".join(str(c) for c in sorted(channels))
        notes.append(
            f"{len(lengths):,} series{split} from {what}, {shown} channel(s), {steps} steps"
        )


# --- UCR/UEA .ts files -----------------------------------------------------------------------


def _test_sibling(path: Path) -> Path | None:
    """`<Name>_TEST.ts` beside `<Name>_TRAIN.ts` (any case of TRAIN), else None."""
    stem = path.stem
    if not stem.upper().endswith("_TRAIN"):
        return None
    for name in (stem[:-5] + "TEST", stem[:-5] + "test", stem[:-5] + "Test"):
        sibling = path.with_name(name + path.suffix)
        if sibling.is_file():
            return sibling
    return None


def _pair_in(folder: Path) -> tuple[Path, Path] | None:
    """The one <Name>_TRAIN.ts / <Name>_TEST.ts pair in `folder`, None when it has no .ts
    file; DataError for .ts files that are not one pair."""
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() == TS_SUFFIX and p.is_file())
    if not files:
        return None
    pairs = [(p, t) for p in files if (t := _test_sibling(p)) is not None]
    if len(pairs) != 1:
        raise DataError(
            f"{folder} holds .ts files that are not one TRAIN/TEST pair.",
            expected="one <Name>_TRAIN.ts with its <Name>_TEST.ts (or point at one .ts file)",
            received=", ".join(p.name for p in files[:8]) + (" ..." if len(files) > 8 else ""),
            fix="point `dlw ingest` at the .ts file to read, or keep one pair in the folder",
        )
    return pairs[0]


def _scan_ts(project: Workspace, files: tuple[Path, ...], *, location: Path) -> SourceScan:
    from dlworkflow.store.ts_format import read_ts_header

    data = project.config.data
    limits = _ts_limits(data)
    headers = []
    for file in files:
        check_size(file, ".ts file")
        header = read_ts_header(file, limits=limits)
        if header.class_labels is None:
            raise DataError(
                f"{file.name} declares no class labels, so its series have no class.",
                expected="@classLabel true <labels...> in the header (a classification file)",
                received="@classLabel false" + (" / @targetLabel true" * header.target_label),
                fix="use a classification .ts file, or a table with a label column",
            )
        headers.append(header)
    dims = next((h.dimensions for h in headers if h.dimensions), None)
    where = f"@dimensions of {files[0].name}" if dims else ""
    checks = SeriesChecks(data, channels=dims, where=where)
    kind = "ts pair" if len(files) == 2 else "ts"
    scan = SourceScan(kind=kind, candidates=iter(()), location=str(location))
    what = " + ".join(f.name for f in files)
    scan.candidates = noted(_ts_candidates(files, checks, limits), scan.notes, what)
    return scan


def _ts_limits(data: Data) -> Any:
    from dlworkflow.store.ts_format import MAX_LENGTH, TsLimits

    # the decoder's length bound only protects memory: data.series.max_length is checked per
    # series (quarantined as too long), so the decoder allows at least its default
    return TsLimits(
        max_bytes=MAX_SOURCE_BYTES,
        max_length=max(MAX_LENGTH, data.series.max_length),
        max_channels=data.series.max_channels,
    )


def _ts_candidates(
    files: tuple[Path, ...], checks: SeriesChecks, limits: Any
) -> Iterator[Candidate]:
    from dlworkflow.store.ts_format import case_results

    splits = ("train", "test") if len(files) == 2 else (None,)
    for file, split in zip(files, splits):
        for index, (line, case, problem) in enumerate(case_results(file, limits=limits)):
            sample_id = f"{index:04d}" if split is None else f"{split}/{index:04d}"
            label = case.label if case is not None else None
            cand = Candidate(sample_id, label, path=file, origin=file, source_split=split)
            if case is None:
                cand.problem = f"line {line}: {problem}"
                yield cand
                continue
            cand = checked(cand, case.series, checks)
            if cand.problem is not None:
                cand.problem = f"line {line}: {cand.problem}"
            yield cand
