"""Table sources (CSV, TSV, JSONL, JSON, Parquet), read in chunks: image paths, texts or
feature rows, with a label column and optional id and group columns."""

from __future__ import annotations

import math
import stat
import unicodedata
from collections.abc import Hashable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dlworkflow.data.sources import Candidate, SourceScan
from dlworkflow.errors import DataError
from dlworkflow.tasks import TargetError, task_of
from dlworkflow.tasks.base import MISSING, cell_text

if TYPE_CHECKING:
    import pandas as pd

    from dlworkflow.config import ProjectConfig
    from dlworkflow.data.id_set import SeenIds

CHUNK_ROWS = 4096
FILE_MODALITIES = ("image", "audio")  # a table row names a file: data.path_column


def read_chunks(
    path: Path, *, string_columns: list[str], columns: list[str] | None = None
) -> Iterator[pd.DataFrame]:
    """The table in chunks of CHUNK_ROWS rows; with `columns`, only those columns are read
    (CSV, TSV and Parquet never hold the others in memory)."""
    import pandas as pd

    suffix = path.suffix.lower()
    dtypes = dict.fromkeys(string_columns, "string")
    wanted = list(dict.fromkeys(columns)) if columns is not None else None
    try:
        if suffix in (".csv", ".tsv"):
            yield from pd.read_csv(
                path,
                sep="\t" if suffix == ".tsv" else ",",
                dtype=dtypes,
                usecols=wanted,
                chunksize=CHUNK_ROWS,
                encoding="utf-8-sig",
            )
        elif suffix == ".jsonl":
            for chunk in pd.read_json(path, lines=True, chunksize=CHUNK_ROWS, dtype=False):
                yield _select(chunk, wanted)
        elif suffix == ".json":
            yield _select(pd.read_json(path, dtype=False), wanted)
        else:
            import pyarrow.parquet as pq

            parquet = pq.ParquetFile(path)
            if wanted is not None:
                wanted = [c for c in wanted if c in parquet.schema_arrow.names]
            for batch in parquet.iter_batches(batch_size=CHUNK_ROWS, columns=wanted):
                yield batch.to_pandas()
    except (ValueError, OSError, UnicodeDecodeError) as exc:
        raise _unreadable(path, exc) from exc


def _unreadable(path: Path, exc: Exception) -> DataError:
    return DataError(
        f"Cannot read the table {path.name}.",
        received=str(exc)[:300],
        fix="check that the file is a valid table of its type",
    )


def _select(chunk: pd.DataFrame, columns: list[str] | None) -> pd.DataFrame:
    return chunk if columns is None else chunk[[c for c in columns if c in chunk.columns]]


def read_header(path: Path) -> list[str]:
    """The table's column names, reading as little as the format allows."""
    import pandas as pd

    suffix = path.suffix.lower()
    try:
        if suffix in (".csv", ".tsv"):
            frame = pd.read_csv(
                path, sep="\t" if suffix == ".tsv" else ",", nrows=0, encoding="utf-8-sig"
            )
            return [str(c) for c in frame.columns]
        if suffix not in (".jsonl", ".json"):
            import pyarrow.parquet as pq

            return [str(c) for c in pq.read_schema(path).names]
    except (ValueError, OSError, UnicodeDecodeError) as exc:
        raise _unreadable(path, exc) from exc
    first = next(read_chunks(path, string_columns=[]), None)
    return [str(c) for c in first.columns] if first is not None else []


def scan_table(path: Path, config: ProjectConfig, *, root: Path | None = None) -> SourceScan:
    """Candidates of a table. Image paths must lie inside `root` (data.root, resolved by the
    caller), by default the table's own folder; paths outside are quarantined."""
    data, task = config.data, config.task
    header = read_header(path)
    main = {
        "image": data.path_column,
        "audio": data.path_column,
        "text": data.text_column,
        "tabular": None,
    }[task_of(task).modality]
    targets = task_of(task).target_columns(data)
    keys = [c for c in (main, *targets, data.group_column, data.id_column) if c]
    features = _feature_columns(header, keys, data.feature_columns) if main is None else []
    flags = {c: "--feature-columns" for c in features}
    flags.update({c: "--label-column" for c in targets})
    for column, flag in ((data.group_column, "--group-column"), (data.id_column, "--id-column")):
        if column:
            flags[column] = flag
    if main:
        flags[main] = "--text-column" if main == data.text_column else "--path-column"
    _require_columns(path, header, keys + features, task, flags)
    kinds: dict[str, str] = {}
    if features:
        first = next(read_chunks(path, string_columns=[], columns=keys + features), None)
        kinds = _feature_kinds(first, features) if first is not None else {}
    allowed = (root or path.parent).resolve()
    scan = SourceScan(
        kind="table", candidates=iter(()), columns=kinds, location=str(path), root=str(allowed)
    )
    scan.candidates = _table_candidates(path, config, main, kinds, targets, root=allowed)
    return scan


def data_root(config: ProjectConfig, project_root: Path, table: Path) -> Path:
    """The folder a table's paths must lie in: data.root (relative: to the project's root),
    or else the table's own folder."""
    if not config.data.root:
        return table.parent.resolve()
    root = Path(config.data.root).expanduser()
    return (root if root.is_absolute() else project_root / root).resolve()


def _feature_columns(header: list[str], keys: list[str], chosen: list[str] | None) -> list[str]:
    return list(chosen) if chosen else [c for c in header if c not in keys]


NUMERIC_SHARE = 0.95  # a column is numeric when this share of its values parse as numbers


def _feature_kinds(first: pd.DataFrame, features: list[str]) -> dict[str, str]:
    """number or string per feature, from the first chunk. A numeric column with a few typos
    stays numeric, so that the rows holding the typos are quarantined with a reason."""
    import pandas as pd

    kinds = {}
    for column in features:
        values = first[column].dropna()
        values = values[values.astype(str).str.strip().str.lower().map(lambda v: v not in MISSING)]
        parsed = pd.to_numeric(values, errors="coerce")
        numeric = len(values) > 0 and parsed.notna().mean() >= NUMERIC_SHARE
        kinds[column] = "number" if numeric else "string"
    return kinds


def _require_columns(
    path: Path,
    header: list[str],
    required: list[str],
    task: str,
    flags: dict[str, str] | None = None,
) -> None:
    """Every required column is in the header; else a DataError naming, per missing column,
    the closest columns the table has and the `dlw ingest` option that picks another."""
    from dlworkflow.registry import closest

    missing = [c for c in required if c not in header]
    if missing:
        flags = flags or {}
        fixes = []
        for column in missing:
            flag = flags.get(column, "--feature-columns")
            near = closest(column, header) if header else []
            kind = "closest"
            if not near and flag == "--label-column":
                near, kind = _label_like(path, header), "few distinct values"
            pick = near[0] if near else "COLUMN"
            guess = f"{kind}: {', '.join(near)}; " if near else ""
            key = "data." + flag.removeprefix("--").replace("-", "_")
            fixes.append(f"{guess}`dlw ingest SOURCE {flag} {pick}` (sets {key})")
        named = [c for c in required if flags.get(c) != "--feature-columns"]
        raise DataError(
            f"{path.name} lacks the column{'s' if len(missing) > 1 else ''} "
            f"{', '.join(repr(c) for c in missing)} (task {task}).",
            expected=f"columns {', '.join(named or required)}"
            + (" and feature columns" if len(named) < len(required) else ""),
            received=f"columns {', '.join(header) or '(empty file)'}",
            fix="; ".join(fixes),
        )
    if not required or (task_of(task).modality == "tabular" and len(required) < 2):
        raise DataError(
            f"{path.name} has no feature columns.",
            received=", ".join(header),
            fix="a tabular table needs feature columns beside the label column",
        )


#: A label column candidate has at most this many distinct values in the first rows read.
MAX_LABEL_VALUES = 50


def _label_like(path: Path, header: list[str]) -> list[str]:
    """Columns that could hold labels (2 to MAX_LABEL_VALUES distinct values, and fewer
    than half the rows) in the table's first chunk, fewest values first; at most 3."""
    try:
        first = next(read_chunks(path, string_columns=header), None)
    except DataError:
        return []
    if first is None or len(first) == 0:
        return []
    counts = {c: int(first[c].nunique(dropna=True)) for c in first.columns}
    limit = min(MAX_LABEL_VALUES, len(first) // 2)
    found = [c for c, n in counts.items() if 2 <= n <= limit]
    return sorted(found, key=lambda c: counts[c])[:3]


def _table_candidates(
    path: Path,
    config: ProjectConfig,
    main: str | None,
    kinds: dict[str, str],
    targets: list[str],
    *,
    root: Path | None = None,
) -> Iterator[Candidate]:
    """Only the columns a candidate needs are read: the path or text, the target(s), the
    group and id columns, and (tabular) the features."""
    data = config.data
    keys = [c for c in (main, *targets, data.group_column, data.id_column) if c]
    strings = keys + [c for c, kind in kinds.items() if kind == "string"]
    allowed = (root or path.parent).resolve()
    from dlworkflow.data.id_set import SeenIds

    seen = SeenIds()  # compact digests: flat memory for a table of millions of rows
    row = 0
    for chunk in read_chunks(path, string_columns=strings, columns=keys + list(kinds)):
        for record in chunk.to_dict("records"):
            row += 1
            yield _candidate(path, record, row, seen, config, main, kinds, allowed)


def _candidate(
    path: Path,
    record: dict[Hashable, Any],
    row: int,
    seen: SeenIds,
    config: ProjectConfig,
    main: str | None,
    kinds: dict[str, str],
    allowed: Path,
) -> Candidate:
    data, task = config.data, task_of(config.task)
    where = f"row {row}"
    group = cell_text(record.get(data.group_column)) if data.group_column else None
    value = cell_text(record.get(main)) if main else None
    if data.id_column:
        sample_id = cell_text(record.get(data.id_column)) or f"{path.name}:{where}"
    else:
        sample_id = value if task.modality in FILE_MODALITIES and value else f"{path.name}:{where}"
    # one id for one name, whichever Unicode form the file system or the table wrote
    sample_id = unicodedata.normalize("NFC", sample_id)
    try:
        label, no_label = task.read_target(record, data), None
    except TargetError as exc:
        label, no_label = None, exc.reason
    cand = Candidate(sample_id, label, group)
    if sample_id in seen:
        cand.sample_id = f"{sample_id}#{where}"
        cand.problem = f"{where}: duplicate id {sample_id!r} (first occurrence kept)"
    seen.add(sample_id)
    if task.modality in FILE_MODALITIES:
        cand.path = (path.parent / value).resolve() if value else None
        cand.problem = cand.problem or (None if value else f"{where}: empty {main}")
        if cand.path is not None and value is not None:
            cand.problem = cand.problem or _path_problem(cand.path, value, allowed, where)
    elif task.modality == "text":
        cand.text = value
        cand.problem = cand.problem or (None if value else f"{where}: empty text")
    else:
        cand.features, bad = _features(record, kinds)
        cand.problem = cand.problem or bad and f"{where}: {bad}"
    if cand.problem is None and no_label is not None:
        cand.problem = f"{where}: {no_label}"
    return cand


def _path_problem(resolved: Path, value: str, allowed: Path, where: str) -> str | None:
    """Why the (symlink-resolved) path of a table row may not be read, or None: it lies
    outside the allowed folder, or it is not a regular file (a named pipe, a device, a
    folder: never opened). A missing file is the reader's to report."""
    if not resolved.is_relative_to(allowed):
        return (
            f"{where}: outside the data folder: {value!r} is not inside {allowed} (the "
            "table's folder; set data.root in dlworkflow.yaml to allow another folder)"
        )
    try:
        mode = resolved.stat().st_mode
    except OSError:
        return None
    if stat.S_ISREG(mode):
        return None
    return f"{where}: not a regular file: {value!r} is {file_kind(mode)}"


def file_kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a named pipe"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "a special file"


def _features(
    record: dict[Hashable, Any], kinds: dict[str, str]
) -> tuple[dict[str, Any], str | None]:
    values: dict[str, Any] = {}
    for column, kind in kinds.items():
        raw: Any = record.get(column)
        if kind == "string":
            values[column] = cell_text(raw)
            continue
        try:
            values[column] = float("nan") if cell_text(raw) is None else float(raw)
        except (TypeError, ValueError):
            return values, f"non-numeric value {str(raw)[:30]!r} in numeric column {column!r}"
    if all(v is None or (isinstance(v, float) and math.isnan(v)) for v in values.values()):
        return values, "every feature is missing"
    return values, None
