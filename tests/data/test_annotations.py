"""Object-detection ingest: the four annotation formats on real crops of a NEON image, each
quarantine reason, and malformed annotation files (one DataError naming the file)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from detection_data import (
    SIDE,
    boxes_csv,
    coco_json,
    crop,
    voc_folder,
    voc_xml,
    write_image,
    yolo_txt,
)
from dlworkflow.errors import DataError
from dlworkflow.project import Project
from dlworkflow.tasks.detection import dump_boxes, load_boxes


def _project(root: Path, **config) -> Project:
    project = Project.init(root / "proj", task="object-detection")
    if config:
        project.update_config(config)
    return project


def _labels(project: Project) -> dict[str, str]:
    manifest = pd.read_parquet(project.paths.manifest)
    return dict(zip(manifest["sample_id"], manifest["label"]))


def _quarantine(project: Project) -> dict[str, str]:
    frame = pd.read_parquet(project.paths.quarantine)
    return dict(zip(frame["sample_id"], frame["reason"]))


# --- the four formats -------------------------------------------------------------------------


def test_voc_files_beside_the_images_give_the_real_boxes(tmp_path):
    folder = voc_folder(tmp_path / "images", n=5)
    project = _project(tmp_path)
    result = project.ingest(str(folder), progress=False)
    labels = _labels(project)
    assert result.n_samples == 5 and result.n_quarantined == 0
    for k in range(5):
        assert labels[f"crop{k}.png"] == dump_boxes((SIDE, SIDE), crop(k)[1])
    assert load_boxes(labels["crop4.png"])[1] == []  # no boxes: a valid negative
    assert result.class_counts == {"Tree": 6}
    assert result.source_notes == ["6 boxes in 5 images (1 without boxes)"]
    assert ("  read", "6 boxes in 5 images (1 without boxes)") in result.rows()


def test_coco_json_with_an_image_without_annotations(tmp_path):
    folder = tmp_path / "images"
    images = {}
    for k in range(5):
        pixels, boxes = crop(k)
        write_image(folder / f"c{k}.png", pixels)
        images[f"c{k}.png"] = boxes
    coco = coco_json(tmp_path / "instances.json", images)
    project = _project(tmp_path, **{"data.annotations": str(coco)})
    result = project.ingest(str(folder), progress=False)
    labels = _labels(project)
    assert result.n_samples == 5
    for name, boxes in images.items():
        assert labels[name] == dump_boxes((SIDE, SIDE), boxes)
    assert json.loads(labels["c4.png"])["boxes"] == []


def test_coco_json_as_the_source_lists_images_beside_it(tmp_path):
    images = {}
    for k in range(3):
        pixels, boxes = crop(k)
        write_image(tmp_path / "data" / "img" / f"c{k}.png", pixels)
        images[f"img/c{k}.png"] = boxes
    coco = coco_json(tmp_path / "data" / "coco.json", images)
    project = _project(tmp_path)
    project.ingest(str(coco), progress=False)
    assert set(_labels(project)) == set(images)


def test_yolo_txt_with_classes_txt_back_to_pixels(tmp_path):
    folder = tmp_path / "images"
    labels_dir = tmp_path / "labels"
    labels_dir.mkdir()
    (labels_dir / "classes.txt").write_text("Shrub\nTree\n")
    for k in range(4):
        pixels, boxes = crop(k)
        write_image(folder / f"c{k}.png", pixels)
        (labels_dir / f"c{k}.txt").write_text(yolo_txt(boxes, ["Shrub", "Tree"]))
    project = _project(tmp_path, **{"data.annotations": str(labels_dir)})
    result = project.ingest(str(folder), progress=False)
    assert result.n_samples == 4
    for k in range(4):
        _, got = load_boxes(_labels(project)[f"c{k}.png"])
        want = sorted(crop(k)[1])
        assert len(got) == len(want)
        for g, w in zip(got, want):
            assert g[4] == w[4] and max(abs(a - b) for a, b in zip(g[:4], w[:4])) <= 0.01


def test_csv_one_row_per_box_and_an_empty_row_for_a_negative(tmp_path):
    folder = tmp_path / "data"
    images = {}
    for k in range(5):
        pixels, boxes = crop(k)
        write_image(folder / f"c{k}.png", pixels)
        images[f"c{k}.png"] = boxes
    source = boxes_csv(folder / "boxes.csv", images)
    project = _project(tmp_path)
    result = project.ingest(str(source), progress=False)
    labels = _labels(project)
    assert result.n_samples == 5
    assert labels["c4.png"] == dump_boxes((SIDE, SIDE), [])
    assert labels["c1.png"] == dump_boxes((SIDE, SIDE), images["c1.png"])


# --- quarantine reasons ------------------------------------------------------------------------


def test_each_bad_image_is_quarantined_with_its_reason(tmp_path):
    real = crop(1)[1]
    bad = {
        0: [*real, (50.0, 60.0, 110.0, 90.0, "Tree")],  # 14 px beyond the right edge
        1: [(10.0, 10.0, 10.0, 30.0, "Tree")],  # zero width
        2: [(5.0, 5.0, 40.0, 40.0, "Cat")],  # not in data.classes
        3: [(-0.6, 2.0, 96.8, 40.0, "Tree")],  # within the 1 px tolerance: clipped, kept
    }
    folder = voc_folder(tmp_path / "images", n=5, boxes=bad)
    write_image(folder / "lonely.png", crop(4)[0])  # no lonely.xml
    project = _project(tmp_path, **{"data.classes": ["Tree"]})
    result = project.ingest(str(folder), progress=False)
    reasons = _quarantine(project)
    assert set(reasons) == {"crop0.png", "crop1.png", "crop2.png", "lonely.png"}
    assert reasons["crop0.png"].startswith("box outside the image:")
    assert "[50, 60, 110, 90] 'Tree'" in reasons["crop0.png"] and "96x96" in reasons["crop0.png"]
    assert reasons["crop1.png"].startswith("degenerate box: box 1 [10, 10, 10, 30]")
    assert (
        reasons["crop2.png"].startswith("unknown label: box 1") and "'Cat'" in reasons["crop2.png"]
    )
    assert reasons["lonely.png"] == f"annotation file missing: no lonely.xml in {folder}"
    assert result.quarantine_reasons == {
        "box outside the image": 1,
        "degenerate box": 1,
        "unknown label": 1,
        "annotation file missing": 1,
    }
    assert load_boxes(_labels(project)["crop3.png"])[1] == [(0.0, 2.0, 96.0, 40.0, "Tree")]


def test_undecodable_image_and_a_box_that_is_not_a_number_are_quarantined(tmp_path):
    folder = voc_folder(tmp_path / "images", n=4)
    (folder / "crop0.png").write_bytes(b"not a png at all")
    text = (folder / "crop1.xml").read_text()
    (folder / "crop1.xml").write_text(text.replace("<xmin>", "<xmin>abc", 1))
    project = _project(tmp_path)
    result = project.ingest(str(folder), progress=False)
    reasons = _quarantine(project)
    assert reasons["crop0.png"] == "not an image Pillow can identify"
    assert reasons["crop1.png"].startswith("box not a number: box 1 has xmin 'abc")
    assert result.n_samples == 2


def test_yolo_class_index_beyond_the_names_is_an_unknown_label(tmp_path):
    folder = tmp_path / "images"
    for k in range(3):
        write_image(folder / f"c{k}.png", crop(k)[0])
        (folder / f"c{k}.txt").write_text(yolo_txt(crop(k)[1], ["Tree"]))
    (folder / "c2.txt").write_text("3 0.5 0.5 0.2 0.2\n")
    project = _project(tmp_path, **{"data.classes": ["Tree"]})
    project.ingest(str(folder), progress=False)
    assert _quarantine(project)["c2.png"].startswith("unknown label: box 1 (line 1) has class")


# --- malformed annotation files: one DataError naming the file -----------------------------------


@pytest.mark.parametrize(
    ("name", "content", "problem"),
    [
        ("coco.json", '{"images": [', "not valid JSON"),
        ("coco.json", '{"images": []}', "no images, annotations and categories"),
        ("boxes.csv", "path,x1,y1,x2,y2,label\nc0.png,1,2,3,4,Tree\n", "the columns xmin"),
    ],
)
def test_a_malformed_listing_is_one_clear_error(tmp_path, name, content, problem):
    folder = tmp_path / "data"
    write_image(folder / "c0.png", crop(0)[0])
    (folder / name).write_text(content)
    project = _project(tmp_path)
    with pytest.raises(DataError) as info:
        project.ingest(str(folder / name), progress=False)
    assert str(folder / name) in str(info.value) and problem in str(info.value)


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("<annotation><object>", "not well-formed XML"),
        (
            '<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x "xx">]><annotation>&x;</annotation>',
            "DOCTYPE or ENTITY",
        ),
        ("<boxes/>", "the root element is <boxes>"),
    ],
)
def test_a_malformed_voc_file_is_one_clear_error(tmp_path, content, problem):
    folder = voc_folder(tmp_path / "images", n=2)
    (folder / "crop1.xml").write_text(content)
    project = _project(tmp_path)
    with pytest.raises(DataError) as info:
        project.ingest(str(folder), progress=False)
    assert str(folder / "crop1.xml") in str(info.value) and problem in str(info.value)
    assert not project.paths.manifest.exists()


def test_an_oversized_voc_file_is_refused_before_parsing(tmp_path, monkeypatch):
    from dlworkflow.data import annotations

    folder = voc_folder(tmp_path / "images", n=2)
    monkeypatch.setattr(annotations, "MAX_PER_IMAGE_BYTES", 100)
    with pytest.raises(DataError, match="more than the 100 an annotation file may have"):
        _project(tmp_path).ingest(str(folder), progress=False)


def test_cli_prints_the_malformed_file_without_a_traceback(tmp_path):
    from typer.testing import CliRunner

    from dlworkflow.cli import app

    folder = voc_folder(tmp_path / "images", n=2)
    (folder / "crop0.xml").write_text("<annotation><object>")
    project = _project(tmp_path)
    out = CliRunner().invoke(app, ["ingest", str(folder), "-p", str(project.root)])
    assert out.exit_code == 2
    assert "crop0.xml" in out.output and "Traceback" not in out.output


def test_the_voc_xml_fixture_round_trips():
    assert "<xmin>1.5</xmin>" in voc_xml("a.png", (4, 4), [(1.5, 1, 3, 3, "Tree")])


# --- more layouts: data.yaml names, a CSV beside a folder, EXIF rotation -------------------------


def test_yolo_names_from_data_yaml_and_a_bad_line_is_one_error(tmp_path):
    folder = tmp_path / "images"
    for k in range(3):
        write_image(folder / f"c{k}.png", crop(k)[0])
        (folder / f"c{k}.txt").write_text(yolo_txt(crop(k)[1], ["Shrub", "Tree"]))
    (folder / "data.yaml").write_text("names:\n  0: Shrub\n  1: Tree\n")
    project = _project(tmp_path)
    result = project.ingest(str(folder), progress=False)
    assert result.class_counts == {"Tree": 5}
    (folder / "c1.txt").write_text("1 0.5 0.5\n")
    with pytest.raises(DataError, match="line 1 has 3 values, not 5") as info:
        project.ingest(str(folder), progress=False)
    assert str(folder / "c1.txt") in str(info.value)


def test_csv_annotations_for_a_folder_source_and_an_unlisted_coco_category(tmp_path):
    folder = tmp_path / "images"
    images = {}
    for k in range(3):
        write_image(folder / f"c{k}.png", crop(k)[0])
        images[f"c{k}.png"] = crop(k)[1]
    listing = boxes_csv(tmp_path / "boxes.csv", images)
    project = _project(tmp_path, **{"data.annotations": str(listing)})
    assert project.ingest(str(folder), progress=False).n_samples == 3
    coco = coco_json(tmp_path / "coco.json", images)
    doc = json.loads(coco.read_text())
    doc["annotations"][0]["category_id"] = 77
    coco.write_text(json.dumps(doc))
    project.update_config({"data.annotations": str(coco)})
    project.ingest(str(folder), progress=False)
    assert _quarantine(project)["c0.png"].startswith("unknown label: annotations[0] has")


def test_boxes_are_in_the_pixels_shown_after_the_exif_rotation(tmp_path):
    from PIL import Image

    folder = tmp_path / "images"
    voc_folder(folder, n=2)
    stored = Image.fromarray(crop(2)[0][:64, :96])  # 96 wide, 64 high as stored
    exif = Image.Exif()
    exif[0x0112] = 6  # shown turned a quarter: 64 wide, 96 high
    stored.save(folder / "turned.jpg", exif=exif.tobytes())
    (folder / "turned.xml").write_text(voc_xml("turned.jpg", (64, 96), [(5, 70, 60, 95, "Tree")]))
    project = _project(tmp_path)
    project.ingest(str(folder), progress=False)
    assert json.loads(_labels(project)["turned.jpg"])["size"] == [64, 96]
    (folder / "turned.xml").write_text(voc_xml("turned.jpg", (96, 64), [(5, 5, 90, 60, "Tree")]))
    project.ingest(str(folder), progress=False)
    assert "beyond the 64x96 image" in _quarantine(project)["turned.jpg"]
