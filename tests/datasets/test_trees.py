"""builtin:trees: deepforest 2.1.0's four annotated NEON images, read in place, tiled to 400 px."""

from __future__ import annotations

import csv
import json
import sys
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest

from dlworkflow.datasets import get_builtin, trees
from dlworkflow.errors import DataError
from dlworkflow.project import Project


def test_trees_lists_951_boxes_of_one_class_over_the_installed_images(tmp_path):
    source = get_builtin("trees").materialise(tmp_path)
    rows = list(csv.DictReader(source.open(encoding="utf-8")))
    assert len(rows) == trees.N_BOXES == 951
    assert {r["label"] for r in rows} == {"Tree"}  # SOAP_061's Alive / Dead merged
    per_image = Counter(Path(r["path"]).name for r in rows)
    assert per_image == Counter(trees.IMAGES)
    folder = trees.data_folder()
    assert all(Path(r["path"]).parent == folder for r in rows)  # read in place, not copied
    assert not list(tmp_path.glob("*.png"))
    assert "deepforest" not in sys.modules  # found, never imported


def test_trees_description_says_small_and_its_licence():
    dataset = get_builtin("trees")
    assert "SMALL" in dataset.description and "4 " in dataset.description
    assert "3 NEON sites" in dataset.description and "merged" in dataset.description
    assert "MIT" in dataset.licence and "NEON" in dataset.licence
    assert dataset.settings == {"data.tiles": {"size": 400, "overlap": 0}}


def test_trees_without_deepforest_says_how_to_install(monkeypatch):
    monkeypatch.setattr(trees, "find_file", lambda package, relative: None)
    with pytest.raises(DataError, match="deepforest") as info:
        trees.materialise(Path("/nonexistent"))
    assert "--no-deps" in info.value.fix and "deepforest==2.1.0" in info.value.fix


def test_ingest_trees_gives_56_tiles_in_4_groups_that_never_straddle_the_split(tmp_path):
    project = Project.init(tmp_path, task="object-detection")
    result = project.ingest("builtin:trees", progress=False)
    assert project.config.data.tiles is not None and project.config.data.tiles.size == 400
    assert (result.n_samples, result.n_quarantined) == (56, 0)
    manifest = pd.read_parquet(project.paths.manifest)
    assert manifest["group"].nunique() == 4
    assert set(manifest["group"]) == set(trees.IMAGES)
    labels = [json.loads(label) for label in manifest["label"]]
    assert all(label["size"] == [400, 400] for label in labels)
    n_boxes = sum(len(label["boxes"]) for label in labels)
    # 951 boxes; the shifted last row and column of a large image overlap their neighbours,
    # so the boxes there are seen by two tiles
    assert 951 <= n_boxes <= 1250
    assert result.source_notes == [
        f"951 boxes in 4 images (0 without boxes) -> 56 tiles of 400 px (overlap 0) holding "
        f"{n_boxes:,} boxes (a box on two tiles counts twice); 3 boxes kept by no tile (less "
        "than 50% of each shows in any one: data.tiles.min_visible)"
    ]
    tiles_dir = project.paths.state / "tiles"
    assert all(Path(p).parent == tiles_dir for p in manifest["path"])
    assert {Path(p).name for p in manifest["origin_path"]} == set(trees.IMAGES)
    project.split()
    split = _split_of(project)
    assert set(manifest["sample_id"]) == set(split)
    spans = manifest.assign(split=manifest["sample_id"].map(split)).groupby("group")["split"]
    assert (spans.nunique() == 1).all(), spans.unique()
    assert len(set(split.values())) >= 2  # the groups went to more than one split


def _split_of(project: Project) -> dict[str, str]:
    from dlworkflow.store.splits import read_assignments

    frame = read_assignments(project)
    return dict(zip(frame["sample_id"], frame["split"]))
