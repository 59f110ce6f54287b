"""All nine steps through the CLI for the dense tasks, on small real data.

semantic-segmentation: the first 120 mosaics of builtin:digit-masks (real MNIST digits, masks
DERIVED by a threshold) at 32x32; step 9's data is the demo's: mosaics of scikit-learn's 8x8
digits (another scanner), monitored with their labels, then retrained on.
object-detection: builtin:trees (deepforest's four NEON images, tiled to 400 px and grouped by
image) at 128x128; step 9's data is the demo's: every other tile in evening light, with boxes.

Each test drives `dlw` (typer's CliRunner, `-p ROOT`) from init to a retrained project: init,
define, ingest, explore, split, train (1 epoch), test, export (with its parity check), one
served request, predict, report, monitor, retrain; and checks what each step leaves behind
in the task's own terms (boxes, masks)."""

from __future__ import annotations

import base64
import io
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from cli_flow import predict_and_report as _predict_and_report
from cli_flow import served, steps_1_to_7
from cli_flow import step9 as _step9
from dlworkflow.project import Project

FAST = {
    "evaluate.bootstrap_samples": 200,
    "explore.backbone": "pixels",  # no ImageNet embedding of every image in explore
    "train.batch_size": 8,
}


def _served(root: Path, images: list[bytes]) -> list[dict[str, Any]]:
    return served(root, {"images": [base64.b64encode(i).decode() for i in images]})


def _steps_1_to_7(tmp_path: Path, *, config: dict[str, Any], **flow: Any) -> dict[str, Any]:
    done = steps_1_to_7(tmp_path, config={**FAST, **config}, **flow)
    assert done["project"].config.data.image.size is not None  # the dense template sets one
    return done


def test_semantic_segmentation_through_all_nine_steps(tmp_path: Path):
    from dlworkflow.datasets.digit_masks import CLASSES, write_digit_masks
    from dlworkflow.demo_plans import demo_plan

    full = write_digit_masks(tmp_path / "digit-masks")
    source = tmp_path / "mosaics"
    for sub in ("images", "masks"):
        (source / sub).mkdir(parents=True)
        for file in sorted((full / sub).glob("*.png"))[:120]:
            shutil.copy(file, source / sub / file.name)
    shutil.copy(full / "classes.txt", source / "classes.txt")

    flow = _steps_1_to_7(
        tmp_path,
        task="semantic-segmentation",
        source=str(source),
        metric="miou",
        target=0.01,
        config={"data.image.size": [32, 32], "train.learning_rate": 3e-3},
    )
    meta = flow["meta"]
    assert meta["classes"][0] == "background" and sorted(meta["classes"]) == sorted(CLASSES)
    metrics = flow["verdict"]["report"]["metrics"]
    assert {"miou", "dice", "pixel_accuracy"} <= set(metrics)
    assert metrics["miou"]["low"] <= metrics["miou"]["value"] <= metrics["miou"]["high"]
    assert metrics["pixel_accuracy"]["value"] > 0.5  # background alone is most pixels

    images = sorted((source / "images").glob("*.png"))[:4]
    served = _served(flow["root"], [f.read_bytes() for f in images])
    for answer in served:
        mask = np.asarray(Image.open(io.BytesIO(base64.b64decode(answer["mask_png"]))))
        assert mask.shape == (56, 56)  # the request image's size
        assert set(np.unique(mask).tolist()) <= set(range(len(CLASSES)))
        assert sum(answer["class_share"].values()) == pytest.approx(1.0, abs=1e-3)
    predicted = _predict_and_report(flow, images, tmp_path)
    assert len(predicted) == len(images)

    plan = demo_plan("semantic-segmentation")
    incoming = plan.write_incoming(tmp_path)
    assert plan.monitor_inputs is not None and plan.write_labels is not None
    _step9(
        flow,
        inputs=plan.monitor_inputs(incoming),
        labels=plan.write_labels(incoming),
        fresh=incoming,
    )


def test_object_detection_through_all_nine_steps(tmp_path: Path):
    from dlworkflow.demo_plans import demo_plan

    flow = _steps_1_to_7(
        tmp_path,
        task="object-detection",
        source="builtin:trees",
        metric="map50",
        target=0.0,
        config={
            "data.tiles": {"size": 400, "overlap": 0},
            "data.image.size": [128, 128],
            "augment.mosaic": 0.5,
            "monitor.min_samples": 20,  # the demo's: an evening flight is 28 tiles
        },
    )
    root = flow["root"]
    # tiles of one image never straddle the split
    project = Project.load(root)
    from dlworkflow.store import read_assignments, read_manifest

    frame = read_manifest(project).merge(read_assignments(project), on="sample_id")
    assert frame.groupby("group")["split"].nunique().max() == 1, frame[["group", "split"]]
    assert frame["group"].nunique() == 4
    meta = flow["meta"]
    assert meta["classes"] == ["Tree"] and meta["target"]["input_size"] == [128, 128]
    assert 0.0 < meta["target"]["score_threshold"] <= 1.0
    metrics = flow["verdict"]["report"]["metrics"]
    assert {"map", "map50", "map75"} <= set(metrics)
    assert 0.0 <= metrics["map"]["value"] <= metrics["map50"]["value"] <= 1.0

    plan = demo_plan("object-detection")
    incoming = plan.write_incoming(tmp_path)
    tiles = sorted(incoming.glob("*.png"))[:3]
    served = _served(root, [f.read_bytes() for f in tiles])
    for answer, tile in zip(served, tiles):
        width, height = Image.open(tile).size
        assert answer["count"] == len(answer["boxes"])
        for box in answer["boxes"]:
            x1, y1, x2, y2 = box["box"]
            assert 0 <= x1 < x2 <= width + 0.5 and 0 <= y1 < y2 <= height + 0.5
            assert box["label"] == "Tree" and 0 < box["score"] <= 1
    predicted = _predict_and_report(flow, tiles, tmp_path)
    assert len(predicted) >= len(tiles) - 1  # one row per box (an image without any: one)
    assert plan.write_labels is not None and plan.retrain_source is not None
    _step9(
        flow,
        inputs=incoming,
        labels=plan.write_labels(incoming),
        fresh=plan.retrain_source(incoming),
    )
