"""The manifest: one row per sample (Parquet), the quarantine, and the dataset version."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dlworkflow.errors import StepOrderError
from dlworkflow.fileio import atomic_write_json, atomic_write_with, read_json, sha256_json
from dlworkflow.tasks import task_of

if TYPE_CHECKING:
    import pandas as pd

    from dlworkflow.workspace import Workspace

BASE_COLUMNS = {
    "sample_id": "string",
    "label": "string",
    "group": "string",
    "content_hash": "string",
    "bytes": "int64",
    "mtime_ns": "int64",
}
IMAGE_COLUMNS = {
    "path": "string",
    "origin_path": "string",
    "width": "int32",
    "height": "int32",
    "mode": "string",
    "phash": "int64",
    "brightness": "float32",
    "contrast": "float32",
    "dark": "float32",
    "bright": "float32",
}
TEXT_COLUMNS = {"text": "string"}
#: sequence tasks: `path` is the series as a content-addressed .npy under .dlw/series/
#: (store.series); `origin_path` the file it was read from (a .ts file, a table, an .npy)
SERIES_COLUMNS = {
    "path": "string",
    "origin_path": "string",
    "length": "int32",  # time steps
    "channels": "int32",
    "source_split": "string",  # the source's own division ("train" | "test"), else null
}
#: audio tasks: `path` is the original clip (read in place); the rest is store.audio's
#: AudioStats of its original samples
AUDIO_COLUMNS = {
    "path": "string",
    "origin_path": "string",
    "format": "string",
    "sample_rate": "int32",
    "channels": "int32",
    "duration_s": "float64",
    "rms_dbfs": "float64",
    "peak": "float64",
    "silence_share": "float64",
    "clipping_share": "float64",
}
FEATURE_PREFIX = "f:"  # tabular feature columns are stored as "f:<name>"
QUARANTINE_COLUMNS = ("sample_id", "path", "label", "reason")
VERSION_KEY = "dlw.dataset_version"  # Parquet footer key: the version ingest computed
ROWS_PER_WRITE = 2048


def manifest_schema(task: str, feature_kinds: dict[str, str] | None = None) -> Any:
    """The Parquet schema of the manifest for a task (tabular: one column per feature)."""
    import pyarrow as pa

    types = {
        "string": pa.string(),
        "int64": pa.int64(),
        "int32": pa.int32(),
        "float32": pa.float32(),
        "float64": pa.float64(),
    }
    columns = dict(BASE_COLUMNS)
    modality = task_of(task).modality
    if modality == "image":
        columns.update(IMAGE_COLUMNS)
    elif modality == "text":
        columns.update(TEXT_COLUMNS)
    elif modality == "sequence":
        columns.update(SERIES_COLUMNS)
    elif modality == "audio":
        columns.update(AUDIO_COLUMNS)
    else:
        columns.update(
            {
                FEATURE_PREFIX + name: "float64" if kind == "number" else "string"
                for name, kind in (feature_kinds or {}).items()
            }
        )
    return pa.schema([(name, types[kind]) for name, kind in columns.items()])


class ManifestWriter:
    """Streams manifest rows to Parquet in chunks (memory stays flat); the file appears
    atomically on `commit()`, and never if the ingest fails."""

    def __init__(self, project: Workspace, schema: Any) -> None:
        import pyarrow.parquet as pq

        self.schema = schema
        self.target = project.paths.manifest
        self.target.parent.mkdir(parents=True, exist_ok=True)
        import os
        import tempfile

        fd, tmp = tempfile.mkstemp(
            prefix=f".{self.target.name}.", suffix=".writing", dir=self.target.parent
        )
        os.close(fd)
        self.tmp = Path(tmp)
        self._writer = pq.ParquetWriter(self.tmp, schema)
        self._rows: list[dict[str, Any]] = []
        self.count = 0
        self.version_total = 0  # running dataset_version: memory stays flat
        self.labels: Counter[str] = Counter()
        self.sizes: Counter[tuple[int, int]] = Counter()  # images: (height, width)
        self.modes: Counter[str] = Counter()

    def add(self, row: dict[str, Any]) -> None:
        self._rows.append(row)
        self.count += 1
        self.version_total += row_digest(*(row.get(k) for k in IDENTITY))
        self.labels[str(row["label"])] += 1
        if "height" in row:
            self.sizes[(int(row["height"]), int(row["width"]))] += 1
            self.modes[str(row["mode"])] += 1
        if len(self._rows) >= ROWS_PER_WRITE:
            self._flush()

    def _flush(self) -> None:
        import pyarrow as pa

        if self._rows:
            self._writer.write_table(pa.Table.from_pylist(self._rows, schema=self.schema))
            self._rows = []

    def commit(self) -> None:
        import os

        self._flush()
        # the dataset version travels in the file's footer: readers check it without hashing
        self._writer.add_key_value_metadata({VERSION_KEY: version_of(self.version_total)})
        self._writer.close()
        os.replace(self.tmp, self.target)

    def abort(self) -> None:
        self._writer.close()
        self.tmp.unlink(missing_ok=True)


@dataclass
class DatasetInfo:
    """What ingest learned about the dataset as a whole (`.dlw/dataset.json`)."""

    version: str
    source: str
    n_samples: int
    n_quarantined: int
    classes: list[str]
    class_counts: dict[str, int]
    channels: int | None  # images: 1 or 3 (the most common mode); else None
    size: tuple[int, int] | None  # images: the most common (height, width); else None
    task: str = "image-classification"
    features: dict[str, str] = field(default_factory=dict)  # tabular: name -> number|string
    extra: dict[str, Any] = field(default_factory=dict)


IDENTITY = ("sample_id", "content_hash", "label", "group")
_MOD = 1 << 256


def row_digest(sample_id: Any, content_hash: Any, label: Any, group: Any) -> int:
    """One sample's identity (id, content, label, group) as a 256-bit number."""
    fields = [_field(v) for v in (sample_id, content_hash, label, group)]
    return int(sha256_json(fields), 16)


def _field(value: Any) -> str:
    """None, NaN and pandas' NA read as "" (NA has no truth value: its comparison raises)."""
    try:
        missing = value is None or bool(value != value)
    except TypeError:
        missing = True
    return "" if missing else str(value)


def version_of(total: int) -> str:
    return f"{total % _MOD:064x}"


def dataset_version(manifest: pd.DataFrame) -> str:
    """The dataset version: the sum (mod 2^256) of every row's identity digest. Same samples,
    contents, labels and groups give the same version, in any order; it can be computed while
    the manifest streams to disk, with constant memory."""
    total = 0
    for row in manifest[list(IDENTITY)].astype(object).itertuples(index=False, name=None):
        total += row_digest(*row)
    return version_of(total)


def manifest_version(project: Workspace, manifest: pd.DataFrame | None = None) -> str:
    """The dataset version of the manifest on disk: the one ingest wrote into its footer, or
    (a manifest written otherwise, or edited since) computed from `manifest`'s rows."""
    import pyarrow.parquet as pq

    footer = pq.read_metadata(project.paths.manifest).metadata or {}
    stamped = footer.get(VERSION_KEY.encode())
    if stamped:
        return str(stamped.decode("ascii"))
    return dataset_version(manifest if manifest is not None else read_manifest(project))


def check_manifest_version(
    project: Workspace, manifest: pd.DataFrame, recorded: str | None, *, step: str
) -> str:
    """The manifest's dataset version, checked against `recorded` (the ingest hash the step
    records as its input) and against .dlw/dataset.json: a manifest changed since that
    ingest (edited, or left by an ingest that failed late) is refused, not used."""
    version = dataset_version(manifest)
    info = read_dataset_info(project).version
    if recorded is not None and version == recorded and info == recorded:
        return version
    expected = recorded or info
    raise StepOrderError(
        f"The manifest changed since the last `dlw ingest` (dataset version {version[:12]}, "
        f"the ingest recorded {str(expected)[:12]}): `dlw {step}` will not use data no ingest "
        "vouches for.",
        expected=f"the manifest of dataset version {expected}",
        received=f"a manifest of dataset version {version}"
        + ("" if info == version else f"; dataset.json says {info[:12]}"),
        fix=f"run `dlw ingest` again, then `dlw {step}`",
        context={"manifest_version": version, "recorded": recorded, "dataset_info": info},
    )


def write_dataset(
    project: Workspace, manifest: pd.DataFrame | None, quarantine: pd.DataFrame, info: DatasetInfo
) -> None:
    """Write the quarantine and dataset info (and the manifest, unless a ManifestWriter did)."""
    if manifest is not None:
        atomic_write_with(project.paths.manifest, lambda p: manifest.to_parquet(p, index=False))
    atomic_write_with(project.paths.quarantine, lambda p: quarantine.to_parquet(p, index=False))
    atomic_write_json(project.paths.state / "dataset.json", asdict(info))


def read_manifest(project: Workspace) -> pd.DataFrame:
    import pandas as pd

    _require(project)
    return pd.read_parquet(project.paths.manifest)


def read_quarantine(project: Workspace) -> pd.DataFrame:
    import pandas as pd

    _require(project)
    return pd.read_parquet(project.paths.quarantine)


def read_dataset_info(project: Workspace) -> DatasetInfo:
    _require(project)
    raw = read_json(project.paths.state / "dataset.json")
    raw["size"] = tuple(raw["size"]) if raw.get("size") else None
    return DatasetInfo(**raw)


def _require(project: Workspace) -> None:
    if not project.paths.manifest.is_file():
        raise StepOrderError(
            "There is no dataset in this project yet.",
            expected=f"a manifest at {project.paths.manifest}",
            received="none",
            fix="run `dlw ingest SOURCE` first (`dlw datasets` lists the built-in datasets "
            "of each task)",
        )
