"""Ingest for semantic segmentation: image/mask pairs (index and palette PNG, by name or a CSV),
COCO polygons and RLE, each quarantine reason, and malformed files that give one DataError.

Data: real MNIST digits laid out as 2x2 mosaics, masks derived by thresholding
(tests/segmentation_data.py), a few per test."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dlworkflow.errors import DataError
from dlworkflow.project import Project
from dlworkflow.store import read_manifest, read_quarantine
from dlworkflow.tasks.masks import label_to_mask
from segmentation_data import CLASSES, mnist_mosaics

N = 6


def _png(path: Path, array: np.ndarray, mode: str = "L") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if mode == "P":
        img = Image.frombytes("P", (array.shape[1], array.shape[0]), array.tobytes())
        rng = np.random.default_rng(0)  # colours that say nothing about the class order
        img.putpalette(rng.integers(0, 256, 768).astype(np.uint8).tolist())
    elif mode == "I;16":
        img = Image.frombytes(
            "I;16", (array.shape[1], array.shape[0]), array.astype("<u2").tobytes()
        )
    else:
        img = Image.fromarray(array.astype(np.uint8))
    img.save(path)
    return path


def _pairs_folder(root: Path, n: int = N, *, mode: str = "L") -> tuple[np.ndarray, np.ndarray]:
    images, masks = mnist_mosaics(n)
    for i in range(n):
        _png(root / "images" / f"m{i}.png", images[i])
        _png(root / "masks" / f"m{i}.png", masks[i], mode)
    return images, masks


def _project(tmp_path: Path, **config: object) -> Project:
    project = Project.init(tmp_path / "proj", task="semantic-segmentation")
    if config:
        project.update_config(config)
    return project


def _masks_by_id(project: Project) -> dict[str, np.ndarray]:
    manifest = read_manifest(project)
    return {
        sid: label_to_mask(label, CLASSES)
        for sid, label in zip(manifest["sample_id"], manifest["label"])
    }


def _reasons(project: Project) -> dict[str, str]:
    q = read_quarantine(project)
    return dict(zip(q["sample_id"].astype(str), q["reason"].astype(str)))


# --- pairs by name --------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["L", "P", "I;16"])
def test_index_palette_and_16_bit_masks_give_the_same_labels(tmp_path, mode):
    _, masks = _pairs_folder(tmp_path / "data", mode=mode)
    project = _project(tmp_path, **{"data.classes": CLASSES})
    result = project.ingest(str(tmp_path / "data"), progress=False)
    assert result.n_samples == N and result.n_quarantined == 0
    got = _masks_by_id(project)
    for i in range(N):
        np.testing.assert_array_equal(got[f"m{i}.png"], masks[i])


def test_classes_txt_names_the_values_and_without_it_the_values_are_the_names(tmp_path):
    _, masks = _pairs_folder(tmp_path / "data")
    project = _project(tmp_path)
    project.ingest(str(tmp_path / "data"), progress=False)
    label = json.loads(read_manifest(project)["label"].iloc[0])
    assert label["classes"][0] == "0" and "background" not in label["classes"]

    (tmp_path / "data" / "classes.txt").write_text("\n".join(CLASSES) + "\n")
    named = Project.init(tmp_path / "named", task="semantic-segmentation")
    named.ingest(str(tmp_path / "data"), progress=False)
    got = _masks_by_id(named)
    np.testing.assert_array_equal(got["m0.png"], masks[0])
    assert "background" in json.loads(read_manifest(named)["label"].iloc[0])["classes"]


def test_data_masks_folder_matched_by_stem_whatever_the_image_extension(tmp_path):
    images, masks = mnist_mosaics(3)
    for i in range(3):
        Image.fromarray(images[i]).save(tmp_path / f"img{i}.jpg", quality=95)
        _png(tmp_path / "labels" / f"img{i}.png", masks[i])
    project = _project(
        tmp_path, **{"data.masks": str(tmp_path / "labels"), "data.classes": CLASSES}
    )
    result = project.ingest(str(tmp_path), progress=False)
    assert result.n_samples == 3
    np.testing.assert_array_equal(_masks_by_id(project)["img2.jpg"], masks[2])


# --- quarantine -------------------------------------------------------------------------------


def test_each_bad_pair_is_quarantined_with_its_reason(tmp_path):
    data = tmp_path / "data"
    images, masks = _pairs_folder(data, 7)
    (data / "masks" / "m0.png").unlink()  # missing mask
    _png(data / "masks" / "m1.png", masks[1][:50, :])  # size differs
    bad = masks[2].copy()
    bad[0, :3] = 12  # 11 classes: indices 0-10
    _png(data / "masks" / "m2.png", bad)
    Image.fromarray(np.stack([masks[3]] * 3, axis=-1)).save(data / "masks" / "m3.png")  # RGB
    (data / "masks" / "m4.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage, not a PNG")
    project = _project(tmp_path, **{"data.classes": CLASSES})
    result = project.ingest(str(data), progress=False)
    reasons = _reasons(project)
    assert result.n_samples == 2 and set(reasons) == {f"m{i}.png" for i in range(5)}
    assert reasons["m0.png"] == "no mask: expected masks/m0.png"
    assert reasons["m1.png"] == "mask size 56x50 differs from the image's 56x56"
    assert reasons["m2.png"].startswith("class index 12 out of range (3 pixels")
    assert "allows 0-10" in reasons["m2.png"]
    assert reasons["m3.png"].startswith("mask mode RGB")
    assert reasons["m4.png"].startswith("mask")


def test_ignore_index_is_kept_as_ignore_and_out_of_range_otherwise(tmp_path):
    data = tmp_path / "data"
    _, masks = _pairs_folder(data, 3)
    edge = masks[0].copy()
    edge[:, :2] = 255
    _png(data / "masks" / "m0.png", edge)
    project = _project(tmp_path, **{"data.classes": CLASSES})
    assert project.ingest(str(data), progress=False).n_quarantined == 0
    label = read_manifest(project).set_index("sample_id")["label"]["m0.png"]
    assert -1 in json.loads(label)["rle"][::2]
    mask = label_to_mask(label, CLASSES)
    assert (mask[:, :2] == 255).all() and (mask[:, 2:] == masks[0][:, 2:]).all()

    project.update_config({"data.ignore_index": None})
    result = project.ingest(str(data), progress=False)
    assert result.n_quarantined == 1
    assert _reasons(project)["m0.png"].startswith("class index 255 out of range (112 pixels")


def test_a_folder_without_masks_is_one_clear_error(tmp_path):
    images, _ = mnist_mosaics(2)
    for i in range(2):
        _png(tmp_path / "data" / "images" / f"m{i}.png", images[i])
    project = _project(tmp_path)
    with pytest.raises(DataError, match="No masks folder"):
        project.ingest(str(tmp_path / "data"), progress=False)


# --- a CSV of pairs ---------------------------------------------------------------------------


def test_csv_of_pairs_as_source_and_as_data_masks(tmp_path):
    data = tmp_path / "data"
    _, masks = _pairs_folder(data, 4)
    lines = ["image,mask"] + [f"images/m{i}.png,masks/m{i}.png" for i in range(3)]
    lines += ["images/m3.png,masks/none.png", "../outside.png,masks/m0.png"]
    (data / "pairs.csv").write_text("\n".join(lines) + "\n")
    project = _project(tmp_path, **{"data.classes": CLASSES})
    result = project.ingest(str(data / "pairs.csv"), progress=False)
    assert result.n_samples == 3
    np.testing.assert_array_equal(_masks_by_id(project)["images/m1.png"], masks[1])
    reasons = _reasons(project)
    assert reasons["images/m3.png"] == "no mask: expected masks/none.png"
    assert "outside the data root" in reasons["../outside.png"]

    other = Project.init(tmp_path / "other", task="semantic-segmentation")
    other.update_config({"data.classes": CLASSES, "data.masks": str(data / "pairs.csv")})
    assert other.ingest(str(data), progress=False).n_samples == 3


def test_csv_without_a_mask_column_is_one_clear_error(tmp_path):
    _pairs_folder(tmp_path / "data", 2)
    (tmp_path / "data" / "pairs.csv").write_text("image,label\nimages/m0.png,x\n")
    project = _project(tmp_path)
    with pytest.raises(DataError, match="no image and mask columns") as err:
        project.ingest(str(tmp_path / "data" / "pairs.csv"), progress=False)
    assert "image,label" in str(err.value) or "label" in (err.value.received or "")


# --- COCO -------------------------------------------------------------------------------------


def _coco_folder(tmp_path: Path, annotations: list[dict], n: int = 3) -> Path:
    images, _ = mnist_mosaics(n)
    data = tmp_path / "data"
    for i in range(n):
        _png(data / "images" / f"m{i}.png", images[i])
    doc = {
        "images": [
            {"id": i + 1, "file_name": f"m{i}.png", "width": 56, "height": 56} for i in range(n)
        ],
        "annotations": annotations,
        "categories": [{"id": 1, "name": "ring"}, {"id": 7, "name": "blob"}],
    }
    (data / "coco.json").write_text(json.dumps(doc))
    return data


def test_coco_polygons_match_pycocotools(tmp_path):
    from pycocotools import mask as mask_utils

    square = [[10.0, 10.0, 40.0, 10.0, 40.0, 30.0, 10.0, 30.0]]
    triangle = [[5.0, 50.0, 50.0, 50.0, 27.0, 35.0]]
    anns = [
        {"id": 1, "image_id": 1, "category_id": 1, "segmentation": square, "area": 600},
        {"id": 2, "image_id": 1, "category_id": 7, "segmentation": triangle, "area": 300},
    ]
    data = _coco_folder(tmp_path, anns)
    project = _project(tmp_path, **{"data.masks": str(data / "coco.json")})
    result = project.ingest(str(data), progress=False)
    assert result.n_samples == 3 and result.n_quarantined == 0  # m1, m2: all background
    names = ["background", "ring", "blob"]
    manifest = read_manifest(project).set_index("sample_id")["label"]
    got = label_to_mask(manifest["m0.png"], names)
    for ann, index in ((anns[0], 1), (anns[1], 2)):
        rle = mask_utils.frPyObjects(ann["segmentation"], 56, 56)
        ref = mask_utils.decode(mask_utils.merge(rle)).astype(bool)
        ours = got == index
        iou = (ref & ours).sum() / (ref | ours).sum()
        assert iou > 0.98, (index, iou)  # pixel centres inside: pycocotools' convention
    square = label_to_mask(manifest["m0.png"], names)[10:30, 10:40]
    assert (square == 1).sum() == 600 - (square == 2).sum()  # pixels 10-39 x 10-29 exactly
    assert (label_to_mask(manifest["m1.png"], names) == 0).all()


def test_coco_rle_compressed_and_uncompressed_decode_exactly(tmp_path):
    from pycocotools import mask as mask_utils

    _, masks = mnist_mosaics(2)
    region = np.asfortranarray((masks[0] > 0).astype(np.uint8))
    compressed = mask_utils.encode(region)
    compressed["counts"] = compressed["counts"].decode("ascii")
    other = np.asfortranarray((masks[1] > 0).astype(np.uint8))
    runs, flat, value, n = [], other.T.reshape(-1), 0, 0
    for v in flat:  # uncompressed COCO RLE: column-major runs, starting with 0s
        if v != value:
            runs.append(n)
            value, n = v, 0
        n += 1
    runs.append(n)
    anns = [
        {"id": 1, "image_id": 1, "category_id": 7, "segmentation": compressed, "iscrowd": 1},
        {
            "id": 2,
            "image_id": 2,
            "category_id": 1,
            "iscrowd": 1,
            "segmentation": {"size": [56, 56], "counts": runs},
        },
    ]
    data = _coco_folder(tmp_path, anns, n=2)
    project = _project(tmp_path, **{"data.annotations": str(data / "coco.json")})
    assert project.ingest(str(data), progress=False).n_samples == 2
    labels = read_manifest(project).set_index("sample_id")["label"]
    names = ["background", "ring", "blob"]
    np.testing.assert_array_equal(label_to_mask(labels["m0.png"], names), region * 2)
    np.testing.assert_array_equal(label_to_mask(labels["m1.png"], names), other * 1)


def test_bad_coco_annotations_quarantine_their_image(tmp_path):
    good = [[1, 1, 20, 1, 20, 20]]
    anns = [
        {"id": 1, "image_id": 1, "category_id": 1, "segmentation": [[1, 2, 3, 4]]},
        {"id": 2, "image_id": 2, "category_id": 99, "segmentation": good},
        {
            "id": 3,
            "image_id": 3,
            "category_id": 1,
            "segmentation": {"size": [56, 56], "counts": [10, 5]},
        },
        {"id": 4, "image_id": 4, "category_id": 1, "segmentation": good},
    ]
    data = _coco_folder(tmp_path, anns, n=5)  # m4: no annotation, all background
    project = _project(tmp_path, **{"data.masks": str(data / "coco.json")})
    result = project.ingest(str(data), progress=False)
    reasons = _reasons(project)
    assert result.n_samples == 2 and set(reasons) == {"m0.png", "m1.png", "m2.png"}
    assert reasons["m0.png"] == (
        "COCO annotation 1: a polygon needs an even number (>= 6) of coordinates"
    )
    assert reasons["m1.png"] == "COCO annotation 2: unknown category_id 99"
    assert reasons["m2.png"].startswith("COCO annotation 3: RLE runs cover 15 pixels")


@pytest.mark.parametrize(
    ("text", "received"),
    [
        ("{not json", "not readable as JSON"),
        (json.dumps({"images": [], "annotations": []}), "no 'categories' list"),
        (json.dumps([1, 2]), "a JSON list"),
        (
            json.dumps({"images": [{"id": 1}], "annotations": [], "categories": []}),
            "without a file_name",
        ),
    ],
)
def test_a_malformed_coco_file_is_one_clear_error(tmp_path, text, received):
    data = _coco_folder(tmp_path, [], n=2)
    (data / "coco.json").write_text(text)
    project = _project(tmp_path, **{"data.masks": str(data / "coco.json")})
    with pytest.raises(DataError, match="cannot be read as COCO") as err:
        project.ingest(str(data), progress=False)
    assert received in (err.value.received or "")
    assert err.value.fix


def test_cli_reports_a_malformed_coco_file_without_a_traceback(tmp_path):
    from typer.testing import CliRunner

    from dlworkflow.cli import app

    data = _coco_folder(tmp_path, [], n=2)
    (data / "coco.json").write_text("{broken")
    project = _project(tmp_path, **{"data.masks": str(data / "coco.json")})
    out = CliRunner().invoke(app, ["ingest", str(data), "-p", str(project.root)])
    assert out.exit_code == 2
    assert "cannot be read as COCO" in out.output and "Traceback" not in out.output
