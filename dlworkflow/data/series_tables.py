"""Series tables (CSV, TSV, Parquet) of a sequence-classification project.

- long: one row per time step; data.id_column (default `id`) names the series,
  data.series.time_column orders its steps, the channel columns hold the values
  (data.series.channel_columns, else every numeric column but the id, time, label and group
  columns). The label (and data.group_column) must be one value within a series, else that
  series is quarantined with the reason. The time column holds numbers when most of its
  cells are numbers, else dates and times (one format inferred from the cells); a series
  with a time that is neither is quarantined with the reason.
- wide: one row per series; the time steps are the numeric columns in table order (label,
  group and id columns excluded); empty cells at the end of a row mark a shorter series.

A column is numeric (a channel or a step) when most of its non-missing cells are numbers
(more than NUMERIC_SHARE, a half); a wide table's column with no value at all counts as a
step when it lies between two numeric columns. Other columns are metadata, named in the
ingest note. A series with a cell of a numeric column that is not a number is quarantined
with the reason naming the column and the value; a missing cell stays missing (NaN) for
data.max_gap to judge.

data.series.layout auto reads a table as long when it has the id and time columns. The table
is read whole (at most series_source.MAX_SOURCE_BYTES) and never modified.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from dlworkflow.data.series_source import SeriesChecks, check_size, checked, noted
from dlworkflow.data.sources import Candidate, SourceScan
from dlworkflow.errors import DataError
from dlworkflow.tasks.base import MISSING, cell_text

if TYPE_CHECKING:
    import pandas as pd

    from dlworkflow.config import Data
    from dlworkflow.workspace import Workspace

NUMERIC_SHARE = 0.5  # a column is numeric when more than this share of its values are numbers
_MISSING = MISSING | {"?"}


def scan_series_table(project: Workspace, path: Path) -> SourceScan:
    """The candidates of a long or wide series table."""
    data = project.config.data
    check_size(path, "table")
    frame = _read(path)
    header = [str(c) for c in frame.columns]
    frame.columns = header
    id_column = data.id_column or "id"
    time_column = data.series.time_column
    layout = data.series.layout
    if layout == "auto":
        layout = "long" if id_column in header and time_column in header else "wide"
    needed = [data.label_column] + ([data.group_column] if data.group_column else [])
    if layout == "long":
        needed += [id_column, time_column]
    keys = set(needed) | ({id_column} if id_column in header else set())
    _require(path, header, needed + list(data.series.channel_columns or []), layout)
    values, other = _value_columns(frame, keys, data.series.channel_columns, layout=layout)
    if not values:
        raise DataError(
            f"{path.name} has no numeric columns to read as "
            f"{'channels' if layout == 'long' else 'time steps'}.",
            expected="numeric columns beside the id, time, label and group columns",
            received=f"columns {', '.join(header)}",
            fix="set data.series.channel_columns in dlworkflow.yaml",
        )
    scan = SourceScan(kind=f"{layout} table", candidates=iter(()), location=str(path))
    checks = SeriesChecks(project.config.data)
    if layout == "long":
        scan.candidates = _long(path, frame, data, id_column, values, checks)
        scan.notes.append(f"long table: channels {', '.join(values)}; steps by {time_column!r}")
    else:
        has_id = id_column in header
        scan.candidates = _wide(path, frame, data, id_column if has_id else None, values, checks)
        scan.notes.append(f"wide table: {len(values):,} step columns ({values[0]}...)")
    if other:
        shown = ", ".join(repr(c) for c in other[:8]) + (" ..." if len(other) > 8 else "")
        what = "channels" if layout == "long" else "time steps"
        scan.notes.append(f"{path.name}: not read as {what} (mostly text, or empty): {shown}")
    scan.candidates = noted(scan.candidates, scan.notes, path.name)
    return scan


def _read(path: Path) -> pd.DataFrame:
    import pandas as pd

    suffix = path.suffix.lower()
    try:
        if suffix in (".csv", ".tsv"):
            return pd.read_csv(
                path,
                sep="\t" if suffix == ".tsv" else ",",
                dtype=str,
                keep_default_na=False,
                encoding="utf-8-sig",
            )
        return pd.read_parquet(path)
    except Exception as exc:  # noqa: BLE001 - any parser failure is the same bad table
        raise DataError(
            f"Cannot read the table {path.name}.",
            expected="a valid CSV, TSV or Parquet table",
            received=f"{type(exc).__name__}: {str(exc)[:300]}",
            fix="check that the file is a valid table of its type (UTF-8 for text tables)",
        ) from None


def _require(path: Path, header: list[str], needed: list[str], layout: str) -> None:
    missing = [c for c in dict.fromkeys(needed) if c not in header]
    if missing:
        raise DataError(
            f"{path.name} lacks the column{'s' if len(missing) > 1 else ''} "
            f"{', '.join(repr(c) for c in missing)} (a {layout} series table).",
            expected="long: id, time, channel columns..., label; wide: label and one numeric "
            "column per time step",
            received=f"columns {', '.join(header) or '(empty file)'}",
            fix="rename the columns, or set data.id_column, data.series.time_column, "
            "data.label_column, data.group_column or data.series.channel_columns / layout",
        )


def numbers(column: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(float64 values with NaN for missing cells, mask of cells that are not numbers)."""
    import pandas as pd

    if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
        values = column.to_numpy(dtype=np.float64, na_value=np.nan)
        return values, np.zeros(len(values), dtype=bool)
    text = column.astype("string").str.strip()
    missing = (text.isna() | text.str.lower().isin(_MISSING)).to_numpy(dtype=bool)
    parsed = pd.to_numeric(text.where(~missing), errors="coerce")
    values = parsed.to_numpy(dtype=np.float64, na_value=np.nan)
    return values, np.isnan(values) & ~missing


def _value_columns(
    frame: pd.DataFrame, keys: set[str], chosen: list[str] | None, *, layout: str
) -> tuple[list[str], list[str]]:
    """(the channel / step columns, the other columns: metadata). A column is numeric when
    more than NUMERIC_SHARE of its non-missing cells are numbers; a wide table's empty column
    between two numeric ones is a step (all missing)."""
    if chosen:
        return list(chosen), []
    kinds: dict[str, str] = {}
    for column in frame.columns:
        if column in keys:
            continue
        values, bad = numbers(frame[column])
        good = int((~np.isnan(values)).sum())
        present = good + int(bad.sum())
        kinds[column] = (
            "empty" if not present else "number" if good > NUMERIC_SHARE * present else "text"
        )
    numeric = [c for c, kind in kinds.items() if kind == "number"]
    if layout == "wide" and numeric:
        names = list(kinds)
        first, last = names.index(numeric[0]), names.index(numeric[-1])
        inner = {c for c in names[first:last] if kinds[c] == "empty"}
        numeric = [c for c in names if kinds[c] == "number" or c in inner]
    return numeric, [c for c in kinds if c not in numeric]


def _one(values: np.ndarray, what: str) -> tuple[str | None, str | None]:
    """(the one value of a series' cells, None), or (None, why not)."""
    found = list(dict.fromkeys(v for v in values if v is not None))
    if len(found) > 1:
        shown = ", ".join(repr(v) for v in found[:4])
        return None, f"{what} changes within the series: {shown}"
    return (found[0] if found else None), None


class _Columns:
    """A long table's columns parsed once: texts of the label and group, numbers of the
    time and channel columns (with the cells that are not numbers)."""

    def __init__(self, frame: pd.DataFrame, data: Data, channels: list[str]) -> None:
        self.frame = frame
        self.channels = channels
        self.labels = frame[data.label_column].map(cell_text).to_numpy(dtype=object)
        group = data.group_column
        self.groups = frame[group].map(cell_text).to_numpy(dtype=object) if group else None
        self.time_text = frame[data.series.time_column].to_numpy(dtype=object)
        self.times = _times(frame[data.series.time_column])
        parsed = [numbers(frame[c]) for c in channels]
        self.values = np.stack([v for v, _ in parsed])  # (C, rows)
        self.bad = np.stack([b for _, b in parsed])

    def series(self, rows: np.ndarray) -> tuple[np.ndarray | None, str | None]:
        """(C, T) of one series' rows sorted by time, or the reason it cannot be read."""
        times = self.times[rows]
        if np.isnan(times).any():
            first = self.time_text[rows[int(np.argmax(np.isnan(times)))]]
            if cell_text(first) is None:
                return None, f"time column: {int(np.isnan(times).sum())} step(s) without a time"
            return None, f"time column: {str(first)[:30]!r} is neither a number nor a date"
        if len(np.unique(times)) != len(times):
            return None, "time column: the same time appears twice in the series"
        bad = self.bad[:, rows]
        if bad.any():
            c, r = np.unravel_index(int(np.argmax(bad)), bad.shape)
            column = self.channels[int(c)]
            cell = self.cell(column, int(rows[int(r)]))
            return None, f"non-numeric value {cell!r} in channel column {column!r}"
        return self.values[:, rows[np.argsort(times, kind="stable")]], None

    def cell(self, column: str, row: int) -> str:
        return str(self.frame[column].iloc[row])[:30]


def _times(column: pd.Series) -> np.ndarray:
    """float64 times (NaN where missing or unreadable): numbers when most present cells are
    numbers, else dates and times in the one format most cells parse with (inferred from the
    cells, ISO 8601 tried too; an explicit format, so pandas warns about nothing)."""
    values, bad = numbers(column)
    good = int((~np.isnan(values)).sum())
    if good > NUMERIC_SHARE * (good + int(bad.sum())):
        return values
    text = column.map(cell_text)
    present = text.notna().to_numpy(dtype=bool)
    best = np.full(len(column), np.nan)
    for fmt in _date_formats(text[present]):
        parsed = _dates(text, fmt)
        if np.isfinite(parsed).sum() > np.isfinite(best).sum():
            best = parsed
    if np.isfinite(best).sum() > NUMERIC_SHARE * max(int(present.sum()), 1):
        return best
    return values  # neither numbers nor dates: each series' first unreadable time is named


def _date_formats(texts: pd.Series, tries: int = 20) -> list[str]:
    """The formats pandas infers from up to `tries` distinct cells, then ISO 8601."""
    from pandas.tseries.api import guess_datetime_format

    found: list[str] = []
    for value in list(dict.fromkeys(texts.tolist()))[:tries]:
        fmt = guess_datetime_format(str(value))
        if fmt and fmt not in found:
            found.append(fmt)
    return [*found, "ISO8601"]


def _dates(text: pd.Series, fmt: str) -> np.ndarray:
    """float64 nanoseconds since the epoch (UTC) of the cells in `fmt`, NaN where not."""
    import pandas as pd

    try:
        parsed = pd.to_datetime(text, format=fmt, errors="coerce", utc=True)
    except (ValueError, TypeError):
        return np.full(len(text), np.nan)
    out = parsed.astype("int64").to_numpy(dtype=np.float64)
    out[parsed.isna().to_numpy()] = np.nan
    return out


def _long(
    path: Path,
    frame: pd.DataFrame,
    data: Data,
    id_column: str,
    channels: list[str],
    checks: SeriesChecks,
) -> Iterator[Candidate]:
    import pandas as pd

    ids = frame[id_column].map(cell_text)
    codes, names = pd.factorize(ids, use_na_sentinel=True)  # first appearance order, -1: none
    if (codes < 0).any():
        n = int((codes < 0).sum())
        yield Candidate(
            f"{path.name}:no id", None, path=path, problem=f"{n} row(s) with no {id_column!r}"
        )
    columns = _Columns(frame, data, channels)
    order = np.argsort(codes, kind="stable")
    order = order[codes[order] >= 0]
    bounds = np.flatnonzero(np.diff(codes[order])) + 1
    for rows in np.split(order, bounds) if len(order) else []:
        sample_id = unicodedata.normalize("NFC", str(names[codes[rows[0]]]))
        cand = Candidate(sample_id, None, path=path, origin=path)
        cand.label, problem = _one(columns.labels[rows], "label")
        if columns.groups is not None:
            cand.group, bad_group = _one(columns.groups[rows], "group")
            problem = problem or bad_group
        if problem is None and cand.label is None:
            problem = f"no label: empty {data.label_column!r} in every row"
        series, problem = (None, problem) if problem else columns.series(rows)
        if problem is not None:
            cand.problem = problem
            yield cand
            continue
        yield checked(cand, series, checks)


def _wide(
    path: Path,
    frame: pd.DataFrame,
    data: Data,
    id_column: str | None,
    steps: list[str],
    checks: SeriesChecks,
) -> Iterator[Candidate]:
    parsed = [numbers(frame[c]) for c in steps]
    values = np.stack([v for v, _ in parsed], axis=0)  # (steps, rows)
    bad = np.stack([b for _, b in parsed], axis=0)
    seen: set[str] = set()
    for row in range(len(frame)):
        where = f"row {row + 1}"
        given = cell_text(frame[id_column].iloc[row]) if id_column else None
        sample_id = unicodedata.normalize("NFC", given or f"{path.name}:{where}")
        cand = Candidate(sample_id, cell_text(frame[data.label_column].iloc[row]), path=path)
        cand.origin = path
        if data.group_column:
            cand.group = cell_text(frame[data.group_column].iloc[row])
        if sample_id in seen:
            cand.sample_id = f"{sample_id}#{where}"
            cand.problem = f"{where}: duplicate id {sample_id!r} (first occurrence kept)"
        seen.add(sample_id)
        if cand.problem is None and cand.label is None:
            cand.problem = f"{where}: no label: empty {data.label_column!r}"
        if cand.problem is None and bad[:, row].any():
            column = steps[int(np.argmax(bad[:, row]))]
            cell = frame[column].iloc[row]
            cand.problem = f"{where}: non-numeric value {str(cell)[:30]!r} in column {column!r}"
        if cand.problem is not None:
            yield cand
            continue
        series = values[:, row]
        present = np.flatnonzero(~np.isnan(series))
        series = series[: present[-1] + 1] if len(present) else series[:0]  # trailing: shorter
        yield checked(cand, series[None, :], checks)
