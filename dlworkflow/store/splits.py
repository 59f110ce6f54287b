"""The train / val / test assignment and its seal. Train and validation rows only: the sealed
test set is read through `dlworkflow.store.sealed`, by `dlw test` alone."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from dlworkflow.errors import SealedTestSetError, SplitError, StepOrderError
from dlworkflow.fileio import atomic_write_json, atomic_write_with, read_json, sha256_json
from dlworkflow.store.manifest import read_manifest

if TYPE_CHECKING:
    import pandas as pd

    from dlworkflow.project import Project

SPLITS = ("train", "val", "test")
OPEN_SPLITS = ("train", "val")


@dataclass
class SplitInfo:
    hash: str  # hash of the whole assignment
    seal_hash: str  # hash of the test membership (sample ids and their content)
    dataset_version: str
    classes: list[str]
    counts: dict[str, int]
    class_counts: dict[str, dict[str, int]]  # split -> class -> count
    seed: int
    fractions: dict[str, float]
    grouped: bool
    n_groups: dict[str, int]


def seal_hash(test_rows: pd.DataFrame) -> str:
    rows = test_rows[["sample_id", "content_hash"]].sort_values("sample_id").values.tolist()
    return sha256_json(rows)


def assignment_hash(assignments: pd.DataFrame) -> str:
    return sha256_json(assignments.sort_values("sample_id")[["sample_id", "split"]].values.tolist())


def write_split(project: Project, assignments: pd.DataFrame, info: SplitInfo) -> None:
    folder = project.paths.split_dir
    atomic_write_with(folder / "assignments.parquet",
                      lambda p: assignments[["sample_id", "split"]].to_parquet(p, index=False))
    atomic_write_json(folder / "split.json", asdict(info))


def read_split_info(project: Project) -> SplitInfo:
    path = project.paths.split_dir / "split.json"
    if not path.is_file():
        raise StepOrderError(
            "The data has not been split yet.", expected=f"{path}", received="none",
            fix="run `dlw split` first",
        )
    return SplitInfo(**read_json(path))


def read_assignments(project: Project) -> pd.DataFrame:
    import pandas as pd

    read_split_info(project)
    return pd.read_parquet(project.paths.split_dir / "assignments.parquet")


def joined(project: Project) -> pd.DataFrame:
    """Manifest rows with their split, checked against the dataset the split was made on."""
    info = read_split_info(project)
    manifest = read_manifest(project)
    assignments = read_assignments(project)
    merged = manifest.merge(assignments, on="sample_id", how="inner", validate="one_to_one")
    if len(merged) != len(assignments):
        raise SplitError(
            "The split names samples that are no longer in the manifest.",
            expected=f"the dataset version the split was made on ({info.dataset_version[:12]})",
            received=f"{len(assignments) - len(merged)} missing samples",
            fix="run `dlw split` again after `dlw ingest` (existing samples keep their split)",
        )
    return merged


def load_split(project: Project, name: str) -> pd.DataFrame:
    """Rows (sample_id, path, label, group, ...) of the train or val split."""
    if name == "test":
        raise SealedTestSetError(
            "The test set is sealed: training and validation code cannot read it.",
            expected="split 'train' or 'val'",
            received="'test'",
            fix="evaluate on 'val' during development; `dlw test` is the one reader of the "
            "test set, and every read is logged in the ledger",
        )
    if name not in OPEN_SPLITS:
        raise SplitError(f"Unknown split {name!r}.", expected="'train' or 'val'",
                         received=repr(name), fix="use 'train' or 'val'")
    rows = joined(project)
    return rows[rows["split"] == name].drop(columns="split").reset_index(drop=True)


def describe(info: SplitInfo) -> dict[str, Any]:
    return {"hash": info.hash, "seal": info.seal_hash, "counts": info.counts}
