"""Table sources (CSV, TSV, JSONL, JSON, Parquet), read in chunks: image paths, texts or
feature rows, with a label column and optional id and group columns."""

from __future__ import annotations

import math
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

CHUNK_ROWS = 4096


def read_chunks(path: Path, *, string_columns: list[str]) -> Iterator[pd.DataFrame]:
    import pandas as pd

    suffix = path.suffix.lower()
    dtypes = dict.fromkeys(string_columns, "string")
    try:
        if suffix in (".csv", ".tsv"):
            yield from pd.read_csv(
                path,
                sep="\t" if suffix == ".tsv" else ",",
                dtype=dtypes,
                chunksize=CHUNK_ROWS,
                encoding="utf-8-sig",
            )
        elif suffix == ".jsonl":
            yield from pd.read_json(path, lines=True, chunksize=CHUNK_ROWS, dtype=False)
        elif suffix == ".json":
            yield pd.read_json(path, dtype=False)
        else:
            import pyarrow.parquet as pq

            for batch in pq.ParquetFile(path).iter_batches(batch_size=CHUNK_ROWS):
                yield batch.to_pandas()
    except (ValueError, OSError, UnicodeDecodeError) as exc:
        raise DataError(
            f"Cannot read the table {path.name}.",
            received=str(exc)[:300],
            fix="check that the file is a valid table of its type",
        ) from exc


def scan_table(path: Path, config: ProjectConfig) -> SourceScan:
    data, task = config.data, config.task
    first = next(read_chunks(path, string_columns=[]), None)
    header = [str(c) for c in first.columns] if first is not None else []
    main = {"image": data.path_column, "text": data.text_column, "tabular": None}[
        task_of(task).modality
    ]
    targets = task_of(task).target_columns(data)
    keys = [c for c in (main, *targets, data.group_column, data.id_column) if c]
    features = _feature_columns(header, keys, data.feature_columns) if main is None else []
    _require_columns(path, header, keys + features, task)
    kinds = _feature_kinds(first, features) if first is not None else {}
    scan = SourceScan(kind="table", candidates=iter(()), columns=kinds, location=str(path))
    scan.candidates = _table_candidates(path, config, main, kinds, targets)
    return scan


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


def _require_columns(path: Path, header: list[str], required: list[str], task: str) -> None:
    missing = [c for c in required if c not in header]
    if missing:
        raise DataError(
            f"{path.name} lacks the column{'s' if len(missing) > 1 else ''} "
            f"{', '.join(repr(c) for c in missing)} (task {task}).",
            expected=f"columns {', '.join(required)}",
            received=f"columns {', '.join(header) or '(empty file)'}",
            fix="rename the columns, or set data.path_column, data.text_column, "
            "data.label_column, data.group_column, data.id_column or data.feature_columns "
            "in dlworkflow.yaml",
        )
    if not required or (task_of(task).modality == "tabular" and len(required) < 2):
        raise DataError(
            f"{path.name} has no feature columns.",
            received=", ".join(header),
            fix="a tabular table needs feature columns beside the label column",
        )


def _table_candidates(
    path: Path, config: ProjectConfig, main: str | None, kinds: dict[str, str], targets: list[str]
) -> Iterator[Candidate]:
    data = config.data
    strings = [c for c in (main, *targets, data.group_column, data.id_column) if c]
    strings += [c for c, kind in kinds.items() if kind == "string"]
    seen: set[str] = set()
    row = 0
    for chunk in read_chunks(path, string_columns=strings):
        for record in chunk.to_dict("records"):
            row += 1
            yield _candidate(path, record, row, seen, config, main, kinds)


def _candidate(
    path: Path,
    record: dict[Hashable, Any],
    row: int,
    seen: set[str],
    config: ProjectConfig,
    main: str | None,
    kinds: dict[str, str],
) -> Candidate:
    data, task = config.data, task_of(config.task)
    where = f"row {row}"
    group = cell_text(record.get(data.group_column)) if data.group_column else None
    value = cell_text(record.get(main)) if main else None
    if data.id_column:
        sample_id = cell_text(record.get(data.id_column)) or f"{path.name}:{where}"
    else:
        sample_id = value if task.modality == "image" and value else f"{path.name}:{where}"
    try:
        label, no_label = task.read_target(record, data), None
    except TargetError as exc:
        label, no_label = None, exc.reason
    cand = Candidate(sample_id, label, group)
    if sample_id in seen:
        cand.sample_id = f"{sample_id}#{where}"
        cand.problem = f"{where}: duplicate id {sample_id!r} (first occurrence kept)"
    seen.add(sample_id)
    if task.modality == "image":
        cand.path = (path.parent / value).resolve() if value else None
        cand.problem = cand.problem or (None if value else f"{where}: empty {main}")
    elif task.modality == "text":
        cand.text = value
        cand.problem = cand.problem or (None if value else f"{where}: empty text")
    else:
        cand.features, bad = _features(record, kinds)
        cand.problem = cand.problem or bad and f"{where}: {bad}"
    if cand.problem is None and no_label is not None:
        cand.problem = f"{where}: {no_label}"
    return cand


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
