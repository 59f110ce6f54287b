"""dlw explore for object detection: the boxes section on builtin:trees (boxes per image, sizes
and aspect ratios by class, class balance by box, samples drawn with their boxes), duplicate
boxes within an image, and captions in words instead of the label's JSON."""

from __future__ import annotations

import base64
import io
import re
from html import unescape

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from dlworkflow.explore.boxes import box_caption, box_target, drawn, duplicate_boxes
from dlworkflow.project import Project
from dlworkflow.style import SERIES
from dlworkflow.tasks import task_of
from dlworkflow.tasks.detection import dump_boxes


@pytest.fixture(scope="module")
def trees_explored(tmp_path_factory):
    root = tmp_path_factory.mktemp("trees")
    project = Project.init(root, task="object-detection")
    project.update_config({"explore.backbone": "pixels"})
    project.ingest("builtin:trees", progress=False)
    result = project.explore(progress=False)
    return project, result, (project.paths.reports / "eda.html").read_text(encoding="utf-8")


def _text(html: str) -> str:
    text = re.sub(r"<[^>]+>", " ", re.sub(r"<img[^>]*>", "[IMG]", html))
    return unescape(re.sub(r"\s+", " ", text))


def test_trees_report_has_the_boxes_section(trees_explored):
    project, result, html = trees_explored
    manifest = pd.read_parquet(project.paths.manifest)
    n_boxes = sum(len(eval_boxes(label)) for label in manifest["label"])
    text = _text(html)
    assert f"{n_boxes:,} boxes of 1 class in 56 images" in text
    assert "Class balance, by box" in text and f"Tree {n_boxes:,} 100.0%" in text
    for alt in (
        "class balance by box",
        "boxes per image distribution",  # explore/distributions.py: 3+ distinct counts
        "box size by class",
        "aspect ratio by class",
    ):
        assert f"alt='{alt}'" in html
    assert "Duplicate boxes within an image (same class, IoU > 0.95): 0" in text
    assert dict(result.target_rows)["classes"] == "1"
    assert "distinct targets" not in text  # every boxes label is distinct: not a count
    assert '{"size"' not in text  # captions say the boxes in words, never the JSON
    assert "classes with fewer than" not in text  # no per-label-string class warnings
    assert "not applicable to object-detection" in text  # label issues: one class per sample


def test_trees_grid_draws_the_boxes_on_the_images(trees_explored):
    _, _, html = trees_explored
    start = html.index("Samples with their boxes drawn")
    block = html[start : html.index("</section>", start)]
    uris = re.findall(r"src='data:image/png;base64,([^']+)'", block)
    assert len(uris) == 8
    first = tuple(int(SERIES[0][i : i + 2], 16) for i in (1, 3, 5))  # the first class colour
    outline = 0
    for uri in uris:
        pixels = np.asarray(Image.open(io.BytesIO(base64.b64decode(uri))).convert("RGB"))
        outline += int((pixels == first).all(axis=-1).sum())
    assert outline > 500  # the boxes' outlines, in the first class colour


def eval_boxes(label: str) -> list:
    import json

    return json.loads(label)["boxes"]


def test_duplicate_boxes_within_an_image_are_found_per_class():
    boxes = [
        (10.0, 10.0, 50.0, 50.0, "Tree"),
        (10.0, 10.0, 50.5, 50.0, "Tree"),  # IoU 0.99 with the first: a copy
        (10.0, 10.0, 50.0, 50.0, "Shrub"),  # same place, another class: not a duplicate
        (60.0, 60.0, 90.0, 90.0, "Tree"),
    ]
    found = duplicate_boxes("a.png", boxes)
    assert [(s, i, j, c) for s, i, j, _, c in found] == [("a.png", 1, 2, "Tree")]
    assert found[0][3] == pytest.approx(40 * 40 / (40.5 * 40))
    manifest = pd.DataFrame(
        {
            "sample_id": ["a.png", "b.png"],
            "label": [dump_boxes((100, 100), boxes), dump_boxes((100, 100), [])],
        }
    )
    target = box_target(manifest, task_of("object-detection"))
    assert target.boxes_per_class == {"Tree": 3, "Shrub": 1}
    assert target.negatives == 1 and target.per_image.tolist() == [4, 0]
    assert len(target.duplicates) == 1
    from dlworkflow.explore.boxes import boxes_warnings

    class Ev:  # the warnings read the target only
        pass

    ev = Ev()
    ev.target = target
    lines = [w.text for w in boxes_warnings(ev)]
    assert any("1 duplicate box (same class, IoU > 0.95) in 1 image" in t for t in lines)
    assert any("imbalance 3.0:1 by box" in t for t in lines)


def test_captions_put_a_boxes_label_in_words():
    label = dump_boxes((10, 10), [(1, 1, 3, 3, "Tree"), (4, 4, 6, 6, "Tree"), (1, 1, 2, 2, "x")])
    assert box_caption(label) == "3 boxes (Tree 2, x 1)"
    assert box_caption(label + ": too dark") == "3 boxes (Tree 2, x 1): too dark"
    assert box_caption(dump_boxes((10, 10), [])) == "0 boxes"
    assert box_caption("cat") == "cat"
    assert box_caption("train: " + label) == "train: 3 boxes (Tree 2, x 1)"  # leakage pairs


def test_drawn_image_is_none_when_unreadable(tmp_path):
    path = tmp_path / "bad.png"
    path.write_bytes(b"nope")
    assert drawn(str(path), dump_boxes((4, 4), [])) is None


def test_near_duplicates_with_different_boxes_are_no_label_conflict():
    from dlworkflow.explore.duplicates import DuplicateGroup, Duplicates, summarise
    from dlworkflow.explore.trust import _duplicates

    a = dump_boxes((10, 10), [(1, 1, 5, 5, "Tree")])
    b = dump_boxes((10, 10), [(2, 1, 6, 5, "Tree")])
    near = summarise(
        Duplicates(kind="near"), [DuplicateGroup(sample_ids=["x", "y"], labels=[a, b])]
    )
    exact = summarise(
        Duplicates(kind="exact"), [DuplicateGroup(sample_ids=["u", "v"], labels=[a, b])]
    )

    class Ev:
        task = "object-detection"

    ev = Ev()
    ev.exact, ev.near = exact, near
    ev.overview = type("O", (), {"n_samples": 4})()
    lines = [w.text for w in _duplicates(ev)]
    assert lines == ["1 exact duplicate with conflicting labels across different annotations"]
