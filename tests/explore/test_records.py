"""The explore records (reports/explore/records/*.csv) on a real project: digit images with
flipped labels and a copy filed under another class, split, then explored on a stratified
subsample (explore.max_embed), so a label-issue candidate's position in the subsample differs
from its manifest row and a wrong mapping would name the wrong samples."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest

from conftest import make_digits_folder
from dlworkflow.explore import explore
from dlworkflow.explore.records import (
    DUPLICATE_PAIRS,
    LABEL_ISSUE_COLUMNS,
    LABEL_ISSUES,
    MAP,
    MAP_COLUMNS,
    PAIR_COLUMNS,
    records_dir,
)
from dlworkflow.project import Project
from dlworkflow.store import read_assignments, read_manifest

N_PER_CLASS = 30
MAX_EMBED = 220  # of ~240 train/val rows: a real subsample


@pytest.fixture(scope="module")
def explored(tmp_path_factory) -> tuple[Project, set[str]]:
    root = tmp_path_factory.mktemp("records")
    folder = make_digits_folder(root / "images", n_per_class=N_PER_CLASS, classes=range(10))
    shutil.copy(folder / "3" / "d3-001.png", folder / "8" / "copy-of-d3-001.png")
    rng = np.random.default_rng(1)
    flipped = set()
    for path in rng.choice(sorted(folder.rglob("d*.png")), size=12, replace=False):
        label = int(path.parent.name)
        target = folder / str((label + 1 + int(rng.integers(0, 9))) % 10) / path.name
        path.rename(target)
        flipped.add(target.relative_to(folder).as_posix())
    project = Project.init(root / "proj")
    project.update_config(
        {
            "explore.backbone": "pixels",
            "explore.max_embed": MAX_EMBED,
            "split.duplicates": "accept",
            "split.duplicates_reason": "planted for a test of the explore records",
        }
    )
    project.ingest(str(folder), progress=False)
    project.split()
    explore(project, progress=False)
    return project, flipped


def _read(project: Project, name: str) -> pd.DataFrame:
    return pd.read_csv(records_dir(project.paths.reports) / name, dtype={"sample_id": str})


def _labels(project: Project) -> dict[str, str]:
    m = read_manifest(project)
    return dict(zip(m["sample_id"].astype(str), m["label"].astype(str)))


def _test_ids(project: Project) -> set[str]:
    table = read_assignments(project)
    return set(table.loc[table["split"] == "test", "sample_id"].astype(str))


def test_label_issues_name_the_flipped_samples_with_their_given_labels(explored):
    project, flipped = explored
    issues = _read(project, LABEL_ISSUES)
    assert list(issues.columns) == LABEL_ISSUE_COLUMNS
    assert len(issues) >= 3
    labels = _labels(project)
    # the mapping: each candidate's given label is its own sample's label in the manifest
    assert [labels[s] for s in issues["sample_id"]] == issues["given"].astype(str).tolist()
    by_path = dict(zip(read_manifest(project)["sample_id"], read_manifest(project)["path"]))
    found = {s for s in issues["sample_id"] if any(by_path[s].endswith(f) for f in flipped)}
    assert len(found) >= 3, (found, flipped)
    assert issues["confidence"].is_monotonic_decreasing
    assert (issues["suggested"].astype(str) != issues["given"].astype(str)).all()
    assert not set(issues["sample_id"]) & _test_ids(project)


def test_map_has_every_subsampled_point_and_marks_the_candidates(explored):
    project, _ = explored
    points = _read(project, MAP)
    assert list(points.columns) == MAP_COLUMNS
    assert MAX_EMBED - 10 <= len(points) <= MAX_EMBED  # a stratified draw rounds per class
    labels = _labels(project)
    assert [labels[s] for s in points["sample_id"]] == points["label"].astype(str).tolist()
    marked = set(points.loc[points["candidate"].astype(bool), "sample_id"])
    assert marked == set(_read(project, LABEL_ISSUES)["sample_id"])
    assert np.isfinite(points[["x", "y"]].to_numpy()).all()
    assert not set(points["sample_id"]) & _test_ids(project)


def test_duplicate_pairs_hold_the_cross_class_copy_and_no_test_sample(explored):
    project, _ = explored
    pairs = _read(project, DUPLICATE_PAIRS)
    assert list(pairs.columns) == PAIR_COLUMNS
    ids = set(read_manifest(project)["sample_id"].astype(str))
    assert set(pairs["sample_id_a"]) | set(pairs["sample_id_b"]) <= ids
    exact = pairs[pairs["kind"] == "exact"]
    copy = next(s for s in ids if s.endswith("copy-of-d3-001.png"))
    row = exact[(exact["sample_id_a"] == copy) | (exact["sample_id_b"] == copy)]
    if copy in _test_ids(project):  # the split keeps copies together: both sealed, no pair
        assert row.empty
    else:
        assert len(row) == 1 and bool(row["conflicting"].iloc[0])
        assert {*row[["label_a", "label_b"]].astype(str).iloc[0]} == {"3", "8"}
    test = _test_ids(project)
    assert not (set(pairs["sample_id_a"]) | set(pairs["sample_id_b"])) & test


def test_a_later_explore_without_the_evidence_removes_its_stale_table_and_test_stays_out(
    explored, tmp_path
):
    project, _ = explored
    copy = Project.load(shutil.copytree(project.root, tmp_path / "proj"))
    copy.update_config({"explore.label_issues": False})
    folder = records_dir(copy.paths.reports)
    assert (folder / LABEL_ISSUES).is_file()
    explore(copy, include_test=True, progress=False)  # the test set read: still never listed
    assert not (folder / LABEL_ISSUES).exists()
    assert (folder / MAP).is_file() and (folder / DUPLICATE_PAIRS).is_file()
    assert not _read(copy, MAP)["candidate"].astype(bool).any()
    test = _test_ids(copy)
    pairs = _read(copy, DUPLICATE_PAIRS)
    assert (
        not (
            set(pairs["sample_id_a"])
            | set(pairs["sample_id_b"])
            | set(_read(copy, MAP)["sample_id"])
        )
        & test
    )
