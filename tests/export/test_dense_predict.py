"""`dlw predict` with dense models: object detection writes one row per box (path, box index,
x1..y2 in the image's pixels, label, score at or above the tuned threshold), an image with no
box keeps one row with empty box fields, a broken file one row with its error; semantic
segmentation writes one row per image with its class shares and the path of its mask PNG
(class indices at the image's size) in a folder beside the CSV."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from dense_exports import (
    DETECTION_CLASSES,
    SEGMENTATION_CLASSES,
    detector,
    digit_mosaics,
    png,
    torch_outputs,
    tree_images,
    unet,
    write_export,
)
from dlworkflow.cli import app
from dlworkflow.deploy.export.predict import predict_files
from dlworkflow.project import Project
from dlworkflow.runtime.bundle import load_bundle


def test_detection_predict_writes_one_row_per_box(tmp_path: Path):
    root = Project.init(tmp_path / "project", task="object-detection").root
    write_export(root, "detection")
    images = tmp_path / "images"
    images.mkdir()
    (images / "a_osbs.png").write_bytes(tree_images()[0])
    (images / "b_soap.png").write_bytes(tree_images()[1])
    (images / "c_black.png").write_bytes(png(np.zeros((50, 70, 3), dtype=np.uint8)))
    (images / "d_broken.png").write_bytes(b"\x89PNG not really")
    out = tmp_path / "boxes.csv"
    done = CliRunner().invoke(
        app, ["predict", str(images), "-p", str(root), "--out", str(out)], env={"COLUMNS": "200"}
    )
    assert done.exit_code == 0, done.output
    rows = list(csv.DictReader(out.open()))
    assert list(rows[0]) == ["path", "box", "x1", "y1", "x2", "y2", "label", "score", "error"]
    bundle = load_bundle(root / "models" / "v1", threads=1)
    x, sizes = bundle.prepare_images_sized(tree_images())
    torch_out = torch_outputs(detector(), bundle.task, x, bundle.target)
    for name, out_row, (width, height) in zip(("a_osbs", "b_soap"), torch_out, sizes):
        mine = [r for r in rows if Path(r["path"]).stem == name]
        kept = out_row[(out_row[:, 5] >= 0) & (out_row[:, 4] >= 0.3)]
        kept = kept[np.argsort(-kept[:, 4], kind="stable")]
        assert len(mine) == len(kept) > 5
        assert [int(r["box"]) for r in mine] == list(range(len(kept)))
        scale = np.array([width, height, width, height])
        got = np.array([[float(r[k]) for k in ("x1", "y1", "x2", "y2")] for r in mine])
        np.testing.assert_allclose(got, np.clip(kept[:, :4] * scale, 0, scale), atol=0.011)
        assert [r["label"] for r in mine] == [DETECTION_CLASSES[int(k)] for k in kept[:, 5]]
        assert [float(r["score"]) for r in mine] == pytest.approx(list(kept[:, 4]), abs=1e-4)
        assert all(r["error"] == "" for r in mine)
    black = [r for r in rows if Path(r["path"]).stem == "c_black"]
    assert len(black) == 1 and all(black[0][k] == "" for k in ("box", "x1", "label", "error"))
    broken = [r for r in rows if Path(r["path"]).stem == "d_broken"]
    assert len(broken) == 1 and broken[0]["box"] == "" and broken[0]["error"]
    assert "errors" in done.output and "Tree" in done.output


def test_segmentation_predict_writes_class_shares_and_mask_files(tmp_path: Path):
    root = tmp_path / "project"
    write_export(root, "segmentation")
    mosaics = digit_mosaics(2)
    first = tmp_path / "one.png"
    first.write_bytes(png(mosaics[0]))
    wide = tmp_path / "two.png"
    wide.write_bytes(png(np.asarray(Image.fromarray(mosaics[1]).resize((90, 60)))))
    missing = tmp_path / "absent.png"
    out = tmp_path / "out" / "masks.csv"
    out.parent.mkdir()
    result = predict_files(root, [first, wide, missing], out=out)
    assert result.n_predicted == 2 and result.n_errors == 1
    rows = list(csv.DictReader(out.open()))
    shares = [f"share_{n}" for n in SEGMENTATION_CLASSES]
    assert list(rows[0]) == ["path", "mask", *shares, "error"]
    assert len(rows) == 3 and rows[2]["mask"] == "" and "No such file" in rows[2]["error"]
    bundle = load_bundle(root / "models" / "v1", threads=1)
    for row, source, size in zip(rows, (first, wide), ((56, 56), (90, 60))):
        mask_path = out.parent / row["mask"]
        assert mask_path.parent.name == "masks_masks" and mask_path.is_file()
        with Image.open(mask_path) as img:
            assert img.size == size and img.mode == "L"
            mask = np.asarray(img)
        assert mask.max() < len(SEGMENTATION_CLASSES)
        counts = np.bincount(mask.ravel(), minlength=11) / mask.size
        assert [float(row[s]) for s in shares] == pytest.approx(list(counts), abs=1e-6)
        x = bundle.prepare_images([source.read_bytes()])
        network = torch_outputs(unet(), bundle.task, x, bundle.target)[0].argmax(axis=0)
        if size == (56, 56):
            assert (mask == network).mean() >= 0.999
