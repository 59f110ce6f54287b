"""The manifest: one row per sample (Parquet), the quarantine, and the dataset version."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from dlworkflow.errors import StepOrderError
from dlworkflow.fileio import atomic_write_json, atomic_write_with, read_json, sha256_json

if TYPE_CHECKING:
    import pandas as pd

    from dlworkflow.project import Project

MANIFEST_COLUMNS = (
    "sample_id", "path", "label", "group", "content_hash", "width", "height", "mode", "bytes",
)
QUARANTINE_COLUMNS = ("sample_id", "path", "label", "reason")


@dataclass
class DatasetInfo:
    """What ingest learned about the dataset as a whole (`.dlw/dataset.json`)."""

    version: str
    source: str
    n_samples: int
    n_quarantined: int
    classes: list[str]
    class_counts: dict[str, int]
    channels: int
    size: tuple[int, int]
    extra: dict[str, Any] = field(default_factory=dict)


def dataset_version(manifest: pd.DataFrame) -> str:
    """Hash of the manifest's identity columns: same samples, labels and groups, same version."""
    cols = ["sample_id", "content_hash", "label", "group"]
    rows = manifest[cols].astype("string").fillna("").sort_values("sample_id").values.tolist()
    return sha256_json(rows)


def write_dataset(project: Project, manifest: pd.DataFrame, quarantine: pd.DataFrame,
                  info: DatasetInfo) -> None:
    atomic_write_with(project.paths.manifest, lambda p: manifest.to_parquet(p, index=False))
    atomic_write_with(project.paths.quarantine, lambda p: quarantine.to_parquet(p, index=False))
    atomic_write_json(project.paths.state / "dataset.json", asdict(info))


def read_manifest(project: Project) -> pd.DataFrame:
    import pandas as pd

    _require(project)
    return pd.read_parquet(project.paths.manifest)


def read_quarantine(project: Project) -> pd.DataFrame:
    import pandas as pd

    _require(project)
    return pd.read_parquet(project.paths.quarantine)


def read_dataset_info(project: Project) -> DatasetInfo:
    _require(project)
    raw = read_json(project.paths.state / "dataset.json")
    raw["size"] = tuple(raw["size"])
    return DatasetInfo(**raw)


def _require(project: Project) -> None:
    if not project.paths.manifest.is_file():
        raise StepOrderError(
            "There is no dataset in this project yet.",
            expected=f"a manifest at {project.paths.manifest}",
            received="none",
            fix="run `dlw ingest SOURCE` first (for example `dlw ingest builtin:mnist5k`)",
        )
