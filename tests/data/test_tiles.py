"""data.tiles: the tile grid, boxes clipped by their visible share, and tiled ingest of a real
400x400 NEON image (tiles under .dlw/tiles, grouped by source image, originals untouched)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from detection_data import osbs, voc_xml, write_image
from dlworkflow.data.tiles import clip_boxes, plan_tiles, starts
from dlworkflow.errors import ConfigError
from dlworkflow.project import Project


def test_the_last_tile_is_shifted_inward_to_stay_inside():
    assert starts(400, 160, 32) == [0, 128, 240]
    assert starts(1035, 400, 0) == [0, 400, 635]
    assert starts(100, 400, 0) == [0]  # smaller than a tile: one tile, the whole image
    assert starts(800, 400, 0) == [0, 400]


def test_a_cut_box_is_kept_clipped_when_enough_of_it_shows():
    box = (90.0, 10.0, 110.0, 20.0, "Tree")  # half of it left of x = 100
    assert clip_boxes([box], (0, 0, 100, 100), 0.5) == ((90.0, 10.0, 100.0, 20.0, "Tree"),)
    assert clip_boxes([box], (0, 0, 100, 100), 0.6) == ()
    assert clip_boxes([box], (100, 0, 200, 100), 0.5) == ((0.0, 10.0, 10.0, 20.0, "Tree"),)
    assert clip_boxes([box], (0, 50, 100, 150), 0.1) == ()  # not in the window at all


def test_plan_covers_the_image_and_keeps_every_whole_box():
    tiles = plan_tiles(
        400,
        300,
        [(10, 10, 50, 50, "a"), (370, 270, 395, 299, "b")],
        size=160,
        overlap=0,
        min_visible=0.5,
    )
    assert [(t.x1, t.y1) for t in tiles][:3] == [(0, 0), (160, 0), (240, 0)]
    assert all(t.size == (160, 160) for t in tiles)
    assert max(t.x2 for t in tiles) == 400 and max(t.y2 for t in tiles) == 300
    last = tiles[-1]
    assert (last.x1, last.y1) == (240, 140)
    assert last.boxes == ((130, 130, 155, 159, "b"),)
    with pytest.raises(ConfigError, match="overlap"):
        plan_tiles(400, 300, [], size=100, overlap=100, min_visible=0.5)


def test_tiled_ingest_writes_tiles_grouped_by_image_and_leaves_originals(tmp_path, snapshot):
    pixels, boxes = osbs()
    folder = tmp_path / "images"
    for name, (x0, y0) in {"a.png": (0, 0), "b.png": (100, 80)}.items():
        part = pixels[y0 : y0 + 300, x0 : x0 + 300]
        inside = [
            (x1 - x0, y1 - y0, x2 - x0, y2 - y0, c)
            for x1, y1, x2, y2, c in boxes
            if x1 >= x0 and y1 >= y0 and x2 <= x0 + 300 and y2 <= y0 + 300
        ]
        write_image(folder / name, part)
        (folder / name.replace(".png", ".xml")).write_text(voc_xml(name, (300, 300), inside))
    before = snapshot(folder)
    project = Project.init(tmp_path / "proj", task="object-detection")
    project.update_config({"data.tiles": {"size": 160, "overlap": 32, "min_visible": 0.5}})
    result = project.ingest(str(folder), progress=False)
    assert snapshot(folder) == before
    manifest = pd.read_parquet(project.paths.manifest)
    # starts 0, 128 (a step of 160 - 32) and 140 (the last shifted inward): 3 x 3 tiles each
    assert result.n_samples == 18 == len(manifest)
    assert sorted(manifest["sample_id"])[:3] == ["a.png@0_0", "a.png@0_128", "a.png@0_140"]
    assert manifest.groupby("group").size().to_dict() == {"a.png": 9, "b.png": 9}
    assert {Path(p).name for p in manifest["origin_path"]} == {"a.png", "b.png"}
    tiles_dir = project.paths.state / "tiles"
    for row in manifest.itertuples():
        assert Path(row.path).parent == tiles_dir and Path(row.path).stat().st_size > 0
        label = json.loads(row.label)
        assert label["size"] == [160, 160] == list(Image.open(row.path).size)
        x0, y0 = (int(v) for v in row.sample_id.split("@")[1].split("_"))
        original = Image.open(folder / row.group).crop((x0, y0, x0 + 160, y0 + 160))
        tile = np.asarray(Image.open(row.path).convert("RGB"))
        assert np.array_equal(np.asarray(original.convert("RGB")), tile)
    again = project.ingest(str(folder), progress=False)  # content-addressed: the same files
    assert again.dataset_version == result.dataset_version
    assert len(list(tiles_dir.iterdir())) == 18
