"""The train / val / test assignment and its seal. Train and validation rows only: the sealed
test set (and the sealed fresh slices of `dlw retrain`) is read through
`dlworkflow.store.sealed`, by `dlw test` and `dlw retrain` alone.

Samples of `data.additions[N-1]` (fresh labelled data of `dlw retrain`) carry sample ids
prefixed `add<N>/`. They never join the test set: the share the assignment would give to test
forms a separate sealed slice, split value `fresh<N>`, with its own seal (`SplitInfo.slices`).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from dlworkflow.errors import SealedTestSetError, SplitError, StepOrderError
from dlworkflow.fileio import atomic_write_json, atomic_write_with, read_json, sha256_json
from dlworkflow.store.manifest import manifest_version, read_manifest

if TYPE_CHECKING:
    import pandas as pd

    from dlworkflow.workspace import Workspace

SPLITS = ("train", "val", "test")
OPEN_SPLITS = ("train", "val")
FRESH = "fresh"  # fresh<N>: the sealed slice of data.additions[N-1]
_FRESH_NAME = re.compile(r"^fresh([1-9][0-9]*)$")
_ADDITION_ID = re.compile(r"^add([1-9][0-9]*)/")


def addition_prefix(number: int) -> str:
    """The sample-id prefix of data.additions[number - 1] ("add1/", "add2/", ...)."""
    return f"add{int(number)}/"


def addition_of(sample_id: str, n_additions: int) -> int | None:
    """The addition (1-based) a sample id belongs to, or None for the main source. Only the
    `n_additions` recorded by ingest count (an id "add7/..." of a main source whose class
    folder happens to be called "add7" stays a main-source id)."""
    match = _ADDITION_ID.match(str(sample_id))
    if match is None:
        return None
    number = int(match.group(1))
    return number if number <= n_additions else None


def fresh_name(number: int) -> str:
    return f"{FRESH}{int(number)}"


def fresh_number(split: str) -> int | None:
    match = _FRESH_NAME.match(str(split))
    return int(match.group(1)) if match else None


def is_sealed(split: str) -> bool:
    """The test set or a fresh slice: held out, read only by `dlw test` / `dlw retrain`."""
    return split == "test" or fresh_number(split) is not None


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
    # fresh<N> -> {"addition": N, "seal_hash", "n", "class_counts"}; {} in splits made
    # before `dlw retrain` existed (their split.json lacks the key)
    slices: dict[str, dict[str, Any]] = field(default_factory=dict)


def seal_hash(test_rows: pd.DataFrame) -> str:
    rows = test_rows[["sample_id", "content_hash"]].sort_values("sample_id").values.tolist()
    return sha256_json(rows)


def assignment_hash(assignments: pd.DataFrame) -> str:
    return sha256_json(assignments.sort_values("sample_id")[["sample_id", "split"]].values.tolist())


def write_split(project: Workspace, assignments: pd.DataFrame, info: SplitInfo) -> None:
    folder = project.paths.split_dir
    atomic_write_with(
        folder / "assignments.parquet",
        lambda p: assignments[["sample_id", "split"]].to_parquet(p, index=False),
    )
    atomic_write_json(folder / "split.json", asdict(info))


def read_split_info(project: Workspace) -> SplitInfo:
    path = project.paths.split_dir / "split.json"
    if not path.is_file():
        raise StepOrderError(
            "The data has not been split yet.",
            expected=f"{path}",
            received="none",
            fix="run `dlw split` first",
        )
    return SplitInfo(**read_json(path))


def read_assignments(project: Workspace) -> pd.DataFrame:
    """(sample_id, split) of every assigned sample: which samples are sealed, never a label."""
    import pandas as pd

    read_split_info(project)
    return pd.read_parquet(project.paths.split_dir / "assignments.parquet")


def _joined(project: Workspace, *, same_version: bool = False) -> pd.DataFrame:
    """Manifest rows with their split, checked against the dataset the split was made on:
    every split, labels included. Private to the store: `load_split` (train and val) and
    `dlworkflow.store.sealed` (the one reader of the sealed rows) filter it."""
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
    version = manifest_version(project, manifest) if same_version else info.dataset_version
    if version != info.dataset_version:  # train / val: only the dataset the split was made on
        raise SplitError(
            "The manifest changed since the split was made: the split does not describe it.",
            expected=f"the dataset version the split was made on ({info.dataset_version[:12]})",
            received=f"dataset version {version[:12]}",
            fix="run `dlw split` again (existing samples keep their split)",
        )
    return merged


def load_split(project: Workspace, name: str) -> pd.DataFrame:
    """Rows (sample_id, path, label, group, ...) of the train or val split."""
    if name == "test":
        raise SealedTestSetError(
            "The test set is sealed: training and validation code cannot read it.",
            expected="split 'train' or 'val'",
            received="'test'",
            fix="evaluate on 'val' during development; `dlw test` is the one reader of the "
            "test set, and every read is logged in the ledger",
        )
    if fresh_number(name) is not None:
        raise SealedTestSetError(
            f"The fresh slice {name!r} is sealed like the test set: training and validation "
            "code cannot read it.",
            expected="split 'train' or 'val'",
            received=repr(name),
            fix="`dlw retrain` compares champion and challenger on it; every read is logged "
            "in the ledger",
        )
    if name not in OPEN_SPLITS:
        raise SplitError(
            f"Unknown split {name!r}.",
            expected="'train' or 'val'",
            received=repr(name),
            fix="use 'train' or 'val'",
        )
    rows = _joined(project, same_version=True)
    return rows[rows["split"] == name].drop(columns="split").reset_index(drop=True)


def describe(info: SplitInfo) -> dict[str, Any]:
    out: dict[str, Any] = {"hash": info.hash, "seal": info.seal_hash, "counts": info.counts}
    if info.slices:
        out["slices"] = {
            name: {"seal": s["seal_hash"], "n": s["n"]} for name, s in info.slices.items()
        }
    return out
