"""`dlw split` on dense labels: strata from the task (segmentation: each mosaic's largest
non-background class) kept in proportion, and detection tiles grouped by their source image
so that no image straddles the split (real data: digit-masks, trees)."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import pytest

from dlworkflow.errors import ConfigError
from dlworkflow.project import Project
from dlworkflow.store import read_assignments, read_manifest, read_split_info
from dlworkflow.tasks import task_of


def test_digit_mask_mosaics_are_split_in_proportion_of_their_largest_digit(tmp_path: Path):
    from dlworkflow.datasets.digit_masks import write_digit_masks

    full = write_digit_masks(tmp_path / "digit-masks")
    source = tmp_path / "mosaics"
    for sub in ("images", "masks"):
        (source / sub).mkdir(parents=True)
        for file in sorted((full / sub).glob("*.png"))[:300]:
            shutil.copy(file, source / sub / file.name)
    shutil.copy(full / "classes.txt", source)
    project = Project.init(tmp_path / "p", task="semantic-segmentation")
    project.ingest(str(source), progress=False)
    project.split()
    frame = read_manifest(project).merge(read_assignments(project), on="sample_id")
    frame["stratum"] = task_of("semantic-segmentation").strata(frame["label"].tolist())
    assert set(frame["stratum"]) <= {str(d) for d in range(10)}  # never "background"
    for stratum, rows in frame.groupby("stratum"):
        share = Counter(rows["split"])
        assert abs(share["train"] / len(rows) - 0.7) <= 1.5 / len(rows) + 0.05, (stratum, share)
    info = read_split_info(project)
    assert info.classes[0] == "background" and len(info.classes) == 11
    # counted as the task counts: images in which each class appears, not label strings
    assert set(info.class_counts["train"]) <= set(info.classes)


def test_tiles_of_one_tree_image_never_straddle_the_split(tmp_path: Path):
    project = Project.init(tmp_path / "p", task="object-detection")
    project.update_config({"data.tiles": {"size": 400, "overlap": 0}})
    project.ingest("builtin:trees", progress=False)
    result = project.split()
    frame = read_manifest(project).merge(read_assignments(project), on="sample_id")
    assert len(frame) > 40 and frame["group"].nunique() == 4  # tiles of four images
    assert frame.groupby("group")["split"].nunique().max() == 1
    assert {"train", "val", "test"} <= set(frame["split"])  # four groups fill three splits
    assert result.n_groups and sum(result.n_groups.values()) == 4
    info = read_split_info(project)
    assert info.classes == ["Tree"] and set(info.class_counts["train"]) == {"Tree"}


def test_tiles_grouped_in_spatial_blocks_give_the_test_set_a_block(tmp_path: Path):
    """data.tiles.block: the 3x3-tile blocks of each tree image are the groups: the two YELL
    crops give 4 + 1 blocks, the two single tiles 1 each; no block straddles the split, and the
    test set holds a whole block, not the one tile that grouping by image left it."""
    project = Project.init(tmp_path / "p", task="object-detection")
    project.update_config({"data.tiles": {"size": 400, "overlap": 0, "block": 1200}})
    project.ingest("builtin:trees", progress=False)
    project.split()
    frame = read_manifest(project).merge(read_assignments(project), on="sample_id")
    assert frame["group"].nunique() == 7
    assert frame.groupby("group")["split"].nunique().max() == 1
    sizes = frame.groupby("group").size()
    assert sorted(sizes.tolist()) == [1, 1, 9, 9, 12, 12, 12]
    for _, row in frame.iterrows():  # a tile's block holds its top-left corner
        x1, y1 = (int(v) for v in row["sample_id"].rsplit("@", 1)[1].split("_"))
        assert row["group"].endswith(f"#block{x1 // 1200}_{y1 // 1200}")
    counts = frame["split"].value_counts()
    assert counts["test"] >= 9 and counts["val"] >= 9
    for bad in ({"size": 400, "overlap": 20, "block": 1200}, {"size": 400, "block": 1000}):
        with pytest.raises((ConfigError, ValueError)):
            project.update_config({"data.tiles": bad})
