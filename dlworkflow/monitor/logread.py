"""The live side of `dlw monitor`: the server's prediction log, or recent inputs run through the
champion here (no server needed), as a `Sample` of columns.

The log is `.dlw/serve/predictions.jsonl` with its rotations (`.1` newest ... `.N` oldest), and
one such chain per further server process (`predictions.w<n>.jsonl`, serve.workers). Each
chain's files are read newest first and stop as soon as the window is full or the rest is older than
`since`; lines that are not a valid record (a torn last line, hand edits) are skipped and
counted, never fatal. Records of other model versions are counted, not used: the reference
belongs to one version.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from dlworkflow.errors import DlwError

if TYPE_CHECKING:
    import pandas as pd

    from dlworkflow.runtime.bundle import Bundle
    from dlworkflow.workspace import Workspace

BATCH = 256
TABLE_SUFFIXES = (".csv", ".tsv", ".jsonl", ".json", ".parquet")
_NOT_IMAGES = {".csv", ".tsv", ".json", ".jsonl", ".txt", ".md", ".parquet", ".yaml", ".yml"}
SUMMARY_FIELDS = {
    "image": ("width", "height", "mean", "std"),
    "text": ("chars", "words", "tokens", "unk"),
    "row": ("fields", "missing"),
    "series": ("length",),
    "audio": ("duration_s", "rms_dbfs", "centroid_hz", "silence_share"),
}
# series summaries: per-channel lists -> features series_mean_<c>, series_std_<c>; pooled
# (more channels than observe.SERIES_CHANNELS) -> series_mean, series_std
SERIES_LISTS = (("channel_means", "mean", "series_mean"), ("channel_stds", "std", "series_std"))
# the prediction fields of a detection record (count, boxes [[x1, y1, x2, y2, label, score]]
# normalised, scores; detections: every output box [x1, y1, x2, y2, score, class index], kept
# by --inputs for the live mAP) and of a segmentation record (class_share {name: share};
# mask: the predicted mask as a manifest label, kept by --inputs for the live mIoU)
DENSE_FIELDS = ("count", "boxes", "scores", "detections", "class_share", "mask")


@dataclass
class Sample:
    """Prediction records as columns: the reference's or the live ones."""

    ids: list[str]
    ts: np.ndarray  # float64 seconds since the epoch
    labels: np.ndarray  # predicted class, str (regression: the value; multi-label: "a|b")
    confidence: np.ndarray  # float64 (NaN where a record has none: regression, multi-label)
    probs: np.ndarray | None  # (N, K) when every record has them (class or label probs)
    emb: np.ndarray | None  # (N, D) when every record has one
    kind: str | None  # image | text | row (from the input summaries)
    features: dict[str, np.ndarray]  # summary statistic -> float64 (N,)
    values: dict[str, list[Any]] = field(default_factory=dict)  # raw tabular features
    value: np.ndarray | None = None  # regression: predicted values (N,) when every record has one
    # detection and segmentation: each record's prediction fields (DENSE_FIELDS: count,
    # boxes, scores, detections; class_share, mask); empty for the other tasks
    dense: list[dict[str, Any]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.ids)


@dataclass
class LogRead:
    records: list[dict[str, Any]]
    files: list[Path]
    lines: int = 0
    skipped: int = 0  # malformed lines
    other_versions: dict[int, int] = field(default_factory=dict)  # version -> records not used
    before_since: int = 0
    non_finite: int = 0  # records of this version whose outputs are NaN or infinite (not used)


class InputsError(DlwError):
    """`--inputs` names nothing the champion can predict."""


# ---- records -> columns -------------------------------------------------------------------
def parse_ts(value: Any) -> float:
    """ISO 8601 (naive = UTC) or epoch seconds -> epoch seconds; NaN if unreadable."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, datetime):
        stamp = value
    else:
        try:
            stamp = datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
        except ValueError:
            return math.nan
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    return stamp.timestamp()


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def non_finite_outputs(record: Any) -> bool:
    """A prediction record whose outputs (confidence, value, class or label probabilities)
    hold a NaN or an infinite number: what a numerically broken model serves."""
    if not isinstance(record, dict):
        return False
    numbers = [record.get("confidence"), record.get("value")]
    for key in ("probs", "scores"):
        if isinstance(record.get(key), list):
            numbers += record[key]
    if isinstance(record.get("class_share"), dict):
        numbers += list(record["class_share"].values())
    return any(
        isinstance(v, float) and not math.isfinite(v) for v in numbers if not isinstance(v, bool)
    )


def valid_record(record: Any) -> bool:
    """The fields every check needs, with the right types: a prediction (a class with its
    confidence, a regression "value", a multi-label "labels" list, detection "boxes" or a
    segmentation "class_share"; the dense ones need no "label" text)."""
    if not isinstance(record, dict):
        return False
    version = record.get("model_version")
    dense = _dense_prediction(record)
    prediction = (
        _finite(record.get("confidence"))
        or _finite(record.get("value"))
        or (isinstance(record.get("labels"), list) and "confidence" not in record)
        or dense
    )
    return (
        (isinstance(record.get("label"), str) or dense)
        and isinstance(record.get("input"), dict)
        and isinstance(version, int)
        and not isinstance(version, bool)
        and prediction
        and math.isfinite(parse_ts(record.get("ts")))
    )


def _dense_prediction(record: dict[str, Any]) -> bool:
    """A detection record (a "boxes" list) or a segmentation one (a "class_share" dict)."""
    return isinstance(record.get("boxes"), list) or isinstance(record.get("class_share"), dict)


def _matrix(records: list[dict[str, Any]], key: str) -> np.ndarray | None:
    rows: list[Any] = [r.get(key) for r in records]
    if not rows or any(not isinstance(v, list) or not v for v in rows):
        return None
    width = len(rows[0])
    if any(len(v) != width for v in rows):
        return None
    try:
        array = np.asarray(rows, dtype=np.float64)
    except (TypeError, ValueError):
        return None
    return array if np.isfinite(array).all() else None


def to_sample(records: list[dict[str, Any]]) -> Sample:
    """Valid records (see `valid_record`) -> columns. Embeddings and probabilities are kept
    only when every record has them with one width (they come from one model version)."""
    inputs = [r["input"] for r in records]
    kinds = {i.get("kind") for i in inputs}
    kind = kinds.pop() if len(kinds) == 1 else None
    features: dict[str, np.ndarray] = {}
    for name in SUMMARY_FIELDS.get(kind or "", ()):
        features[name] = np.array([_number(i.get(name)) for i in inputs], dtype=np.float64)
    if kind == "image":
        channels = [i.get("channel_means") or [] for i in inputs]
        width = min((len(c) for c in channels), default=0)
        if width > 1:  # one channel: its mean is the image mean
            for c in range(width):
                features[f"channel_{c}"] = np.array([_number(v[c]) for v in channels])
    if kind == "series":
        features.update(series_features(inputs))
    values: dict[str, list[Any]] = {}
    if records and all(isinstance(r.get("values"), dict) for r in records):
        names = list(records[0]["values"])
        values = {name: [r["values"].get(name) for r in records] for name in names}
    return Sample(
        ids=[str(r.get("id") or f"#{i}") for i, r in enumerate(records)],
        ts=np.array([parse_ts(r["ts"]) for r in records], dtype=np.float64),
        labels=np.array([str(r.get("label", "")) for r in records], dtype=object),
        confidence=np.array([_number(r.get("confidence")) for r in records], dtype=np.float64),
        probs=_matrix(records, "probs"),
        emb=_matrix(records, "emb"),
        kind=kind,
        features=features,
        values=values,
        value=_values(records),
        dense=[{k: r[k] for k in DENSE_FIELDS if k in r} for r in records]
        if records and all(_dense_prediction(r) for r in records)
        else [],
    )


def series_features(inputs: list[dict[str, Any]]) -> dict[str, np.ndarray]:
    """Series summaries -> series_mean_<c> / series_std_<c> per channel (when every summary
    has the lists, of one width), else the pooled series_mean / series_std."""
    out: dict[str, np.ndarray] = {}
    for key, pooled, name in SERIES_LISTS:
        lists = [i.get(key) for i in inputs]
        widths = {len(v) for v in lists if isinstance(v, list)}
        if inputs and all(isinstance(v, list) for v in lists) and len(widths) == 1:
            for c in range(widths.pop()):
                out[f"{name}_{c}"] = np.array([_number(v[c]) for v in lists])  # type: ignore[index]
        elif inputs and all(pooled in i for i in inputs):
            out[name] = np.array([_number(i[pooled]) for i in inputs])
    return out


def _values(records: list[dict[str, Any]]) -> np.ndarray | None:
    """Regression's predicted values, when every record has one."""
    if not records or not all(_finite(r.get("value")) for r in records):
        return None
    return np.array([float(r["value"]) for r in records], dtype=np.float64)


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return math.nan
    return float(value)


# ---- the prediction log -------------------------------------------------------------------
def log_files(root: Path) -> list[Path]:
    """Every server process's log and rotations (`dlworkflow.runtime.prediction_logs`)."""
    from dlworkflow.runtime.prediction_logs import log_files as files

    return files(Path(root))


def _lines_newest_first(path: Path) -> Iterator[str]:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            lines = handle.read().splitlines()
    except OSError:
        return
    yield from reversed(lines)


def read_log(
    root: Path, *, version: int, since: float | None = None, window: int | None = None
) -> LogRead:
    """Records of model `version` (oldest first), newer than `since` (epoch seconds), at
    most the newest `window`. Each server process's chain of files is read newest first up
    to the window; the chains are merged by time."""
    from dlworkflow.runtime.prediction_logs import log_chains

    chains = log_chains(Path(root))
    read = LogRead(records=[], files=[p for chain in chains for p in chain])
    for chain in chains:
        read.records += _read_chain(chain, read, version=version, since=since, window=window)
    read.records.sort(key=lambda r: parse_ts(r["ts"]))
    if window is not None:
        read.records = read.records[-window:] if window > 0 else []
    return read


def _read_chain(
    files: list[Path], read: LogRead, *, version: int, since: float | None, window: int | None
) -> list[dict[str, Any]]:
    """One process's records of `version` newer than `since`, at most `window`, newest
    first; the counts go to `read`."""
    out: list[dict[str, Any]] = []
    for path in reversed(files):  # newest file first
        file_valid = file_newer = False
        for line in _lines_newest_first(path):
            if not line.strip():
                continue
            read.lines += 1
            try:
                record = json.loads(line)
            except (ValueError, RecursionError):
                read.skipped += 1
                continue
            if non_finite_outputs(record) and _counts_as(record, version, since):
                read.non_finite += 1
                continue
            if not valid_record(record):
                read.skipped += 1
                continue
            file_valid = True
            ts = parse_ts(record["ts"])
            if since is not None and ts < since:
                read.before_since += 1
                continue
            file_newer = True
            if record["model_version"] != version:
                other = record["model_version"]
                read.other_versions[other] = read.other_versions.get(other, 0) + 1
                continue
            out.append(record)
            if window is not None and len(out) >= window:
                break
        if (window is not None and len(out) >= window) or (
            since is not None and file_valid and not file_newer
        ):
            break  # full, or this whole file is older than `since` (so are older files)
    return out


def _counts_as(record: dict[str, Any], version: int, since: float | None) -> bool:
    """A record of model `version` inside the --since window (its outputs aside)."""
    ts = parse_ts(record.get("ts"))
    return record.get("model_version") == version and (since is None or ts >= since)


# ---- --inputs: recent inputs through the champion -----------------------------------------
@dataclass
class InputsRead:
    records: list[dict[str, Any]]
    files: list[Path]
    skipped: list[tuple[str, str]]  # (item, reason)
    non_finite: int = 0  # inputs whose outputs came out NaN or infinite (not used)


def read_inputs(project: Workspace, bundle: Bundle, path: str | Path) -> InputsRead:
    """A folder of images (image models), of clips (audio: WAV, FLAC, OGG) or of series
    (sequence: .npy or .json files, as `dlw predict` reads them), or CSV / TSV / JSONL / JSON
    / Parquet tables of texts or feature rows (a file, or a folder of them), as prediction
    records of the champion. ids: file paths relative to the folder; table rows:
    `data.id_column` (or an `id` column), else "<file>:row <n>" (1-based, as `dlw ingest`
    names them). Times: a `ts` or `timestamp` column, else the file's modification time."""
    path = Path(path)
    if not path.exists():
        raise InputsError(
            f"--inputs {path} does not exist.",
            expected="a folder or a file",
            received=str(path),
            fix="pass the folder of recent inputs",
        )
    if bundle.modality in ("image", "sequence", "audio"):
        files = _image_files(path) if bundle.modality == "image" else _signal_files(bundle, path)
        values = [(f.relative_to(path).as_posix() if path.is_dir() else f.name, f) for f in files]
        result = InputsRead([], files, [])
        for start in range(0, len(values), BATCH):
            _file_batch(bundle, values[start : start + BATCH], result)
    else:
        files = (
            sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in TABLE_SUFFIXES)
            if path.is_dir()
            else [path]
        )
        result = InputsRead([], files, [])
        for file in files:
            _table_records(project, bundle, file, result)
    if not result.records and not result.non_finite:
        raise InputsError(
            f"--inputs {path} holds nothing the model can predict.",
            expected=INPUT_FILES.get(bundle.modality)
            or "tables (CSV, TSV, JSONL, JSON, Parquet) of "
            + ("texts" if bundle.modality == "text" else "feature rows"),
            received=f"{len(files)} file(s), {len(result.skipped)} unusable"
            + (
                f" (first: {result.skipped[0][0]}: {result.skipped[0][1]})"
                if result.skipped
                else ""
            ),
            fix="point --inputs at recent inputs of the kind the model takes",
        )
    result.records.sort(key=lambda r: parse_ts(r["ts"]))
    return result


def _image_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    return sorted(
        p
        for p in path.rglob("*")
        if p.is_file() and not p.name.startswith(".") and p.suffix.lower() not in _NOT_IMAGES
    )


INPUT_FILES = {
    "image": "image files",
    "sequence": "series files (.npy arrays (channels, steps) or (steps,), or .json lists)",
    "audio": "audio files (WAV, FLAC, OGG)",
}


def _signal_files(bundle: Bundle, path: Path) -> list[Path]:
    """The series or clip files of a folder (by their extensions, as `dlw predict` reads
    them), searched recursively; a named file as it is."""
    from dlworkflow.deploy.export.predict import SIGNAL_FILES

    if path.is_file():
        return [path]
    suffixes = SIGNAL_FILES[bundle.modality]
    return sorted(
        p
        for p in path.rglob("*")
        if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in suffixes
    )


def _file_batch(bundle: Bundle, items: list[tuple[str, Path]], result: InputsRead) -> None:
    """Images and clips as their bytes, series as their arrays (a file that cannot be read
    is skipped with the reason)."""
    ids, values, stamps = [], [], []
    for name, file in items:
        try:
            values.append(_file_value(bundle, file))
            stamps.append(file.stat().st_mtime)
            ids.append(name)
        except OSError as exc:
            result.skipped.append((name, f"cannot read the file: {exc.strerror or exc}"))
        except ValueError as exc:
            result.skipped.append((name, f"not a series file: {str(exc)[:200]}"))
    _predict(bundle, ids, values, stamps, result)


def _file_value(bundle: Bundle, file: Path) -> Any:
    if bundle.modality != "sequence":
        return file.read_bytes()
    from dlworkflow.deploy.export.predict import _read_series_file

    return _read_series_file(file)


def _predict(
    bundle: Bundle,
    ids: list[str],
    values: list[Any],
    stamps: list[float],
    result: InputsRead,
    *,
    raw: list[dict[str, Any]] | None = None,
) -> None:
    """prepare + infer + records; an item the model cannot take is dropped with its reason
    (InputError names its index) and the rest predicted."""
    from dlworkflow.runtime.bundle import InputError
    from dlworkflow.runtime.observe import infer, prepare, records

    keep = list(range(len(values)))
    while keep:
        try:
            x, summaries = prepare(bundle, [values[i] for i in keep])
            break
        except InputError as exc:
            index = exc.context.get("index")
            if not isinstance(index, int) or not 0 <= index < len(keep):
                raise InputsError(
                    f"The inputs do not fit the model: {exc.what}",
                    expected=exc.expected,
                    received=exc.received,
                    fix=exc.fix or "pass inputs with the model's fields",
                ) from None
            bad = keep.pop(index)
            result.skipped.append((ids[bad], exc.context.get("reason") or exc.what))
    if not keep:
        return
    probs, emb = infer(bundle, x)
    made = records(bundle, summaries, probs, emb, ids=[ids[i] for i in keep])
    _full_outputs(bundle, probs, made)
    for i, record in zip(keep, made):
        if non_finite_outputs(record):
            result.non_finite += 1
            continue
        record["ts"] = datetime.fromtimestamp(stamps[i], UTC).isoformat(timespec="milliseconds")
        if raw is not None:
            record["values"] = raw[i]
        result.records.append(record)


def _full_outputs(bundle: Bundle, out: np.ndarray, made: list[dict[str, Any]]) -> None:
    """Dense tasks: what the live metric needs beyond the served fields (every output box;
    the predicted mask), from the outputs at hand (monitor/dense.py INPUT_FIELDS)."""
    from dlworkflow.monitor.dense import INPUT_FIELDS

    fields = INPUT_FIELDS.get(bundle.task.kind)
    if fields is not None:
        for record, extra in zip(made, fields(out, bundle)):
            record.update(extra)


def _table_records(project: Workspace, bundle: Bundle, file: Path, result: InputsRead) -> None:
    from dlworkflow.data.tables import read_chunks
    from dlworkflow.runtime.observe import rows_to_values

    data = project.config.data
    id_column = data.id_column or "id"
    mtime = file.stat().st_mtime
    row = 0
    strings = [id_column] + ([data.text_column] if bundle.modality == "text" else [])
    for chunk in read_chunks(file, string_columns=strings):
        ids = []
        for k in range(len(chunk)):
            given = chunk[id_column].iloc[k] if id_column in chunk else None
            ids.append(
                str(given)
                if given is not None and str(given) not in ("", "<NA>")
                else f"{file.name}:row {row + k + 1}"
            )
        row += len(chunk)
        stamps = _stamps(chunk, mtime)
        if bundle.modality == "text":
            if data.text_column not in chunk:
                raise InputsError(
                    f"{file.name} has no text column {data.text_column!r}.",
                    received=", ".join(map(str, chunk.columns[:10])),
                    fix="name the column as data.text_column says",
                )
            values = rows_to_values(bundle, chunk.rename(columns={data.text_column: "text"}))
            _predict(bundle, ids, values, stamps, result)
        else:
            values = rows_to_values(bundle, chunk)
            _predict(bundle, ids, values, stamps, result, raw=values)


def _stamps(chunk: pd.DataFrame, default: float) -> list[float]:
    for column in ("ts", "timestamp"):
        if column in chunk:
            parsed = [parse_ts(v) for v in chunk[column]]
            return [v if math.isfinite(v) else default for v in parsed]
    return [default] * len(chunk)


# ---- labels -------------------------------------------------------------------------------
def read_labels(path: str | Path) -> dict[str, str]:
    """A CSV with columns id,label -> {id: label} (the last row of a repeated id wins)."""
    import csv

    path = Path(path)
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            header = [h.strip() for h in reader.fieldnames or []]
            if "id" not in header or "label" not in header:
                raise DlwError(
                    f"{path.name} does not have the columns id and label.",
                    expected="a CSV with a header row: id,label",
                    received=", ".join(header) or "no header",
                    fix="write one row per prediction id (the `id` the server "
                    "returned, or the --inputs file name / row id)",
                )
            out = {}
            for row in reader:
                row = {(k or "").strip(): v for k, v in row.items()}
                key, label = (row.get("id") or "").strip(), (row.get("label") or "").strip()
                if key and label:
                    out[key] = label
            return out
    except OSError as exc:
        raise DlwError(
            f"Cannot read the labels file {path}.",
            received=exc.strerror or str(exc),
            fix="pass --labels FILE (CSV with id,label)",
        ) from None
    except (UnicodeDecodeError, csv.Error) as exc:
        raise DlwError(
            f"{path.name} is not a readable CSV.",
            received=str(exc)[:200],
            fix="save the labels as UTF-8 CSV with columns id,label",
        ) from None


def since_seconds(since: str | datetime | None) -> float | None:
    """--since (ISO 8601; a date or a time without zone reads as UTC) -> epoch seconds."""
    if since is None:
        return None
    value = parse_ts(since)
    if not math.isfinite(value):
        raise DlwError(
            f"--since {since!r} is not a date or time.",
            expected="ISO 8601, e.g. 2026-11-27 or 2026-11-27T03:50:00+00:00",
            received=repr(since),
            fix="pass an ISO date or time",
        )
    return value


def file_age_note(files: list[Path]) -> str:
    """ "3 files, 1.2 MB" for the result's rows."""
    size = sum(os.path.getsize(f) for f in files if f.exists())
    return f"{len(files)} file{'s' if len(files) != 1 else ''}, {size / 1e6:.1f} MB"
