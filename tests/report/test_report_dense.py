"""Step 8 (report, model card, audit) and step 9 (monitor with labels) for the dense image tasks,
on real data: semantic segmentation on 200 builtin:digit-masks mosaics (real MNIST digits,
masks derived by a threshold) at 32x32, and object detection on builtin:trees (deepforest's
four NEON images, 400 px tiles) at 64x64; each trained one epoch, tested and exported. The
models are weak (one epoch): the tests check what the report says about them, not how good
they are."""

from __future__ import annotations

import csv
import html as html_lib
import re
from pathlib import Path

import pytest

from dlworkflow.fileio import read_json
from dlworkflow.project import Project
from dlworkflow.report.audit import audit
from dlworkflow.report.findings import builtin_note
from dlworkflow.report.step import report

MOSAICS = 200
FAST = {
    "evaluate.bootstrap_samples": 100,
    "explore.backbone": "pixels",
    "train.batch_size": 8,
    "monitor.min_samples": 10,
}


def _words(fragment: str) -> str:
    return html_lib.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", fragment)))


def _section(text: str, key: str) -> str:
    start = text.index(f"id='{key}'")
    end = text.find("<section", start)
    return text[start : end if end > 0 else len(text)]


def _mosaic_folder(folder: Path, start: int, n: int) -> Path:
    """images/ + masks/ (palette PNGs) + classes.txt of digit-masks mosaics start..start+n."""
    from PIL import Image

    from dlworkflow.datasets.digit_masks import CLASSES, PALETTE, _mnist, mosaics

    images, masks, _ = mosaics(*_mnist())
    (folder / "images").mkdir(parents=True)
    (folder / "masks").mkdir()
    palette = [v for rgb in PALETTE for v in rgb]
    for i in range(start, start + n):
        Image.fromarray(images[i]).save(folder / "images" / f"m{i:04d}.png")
        mask = Image.frombytes("P", (56, 56), masks[i].tobytes())
        mask.putpalette(palette)
        mask.save(folder / "masks" / f"m{i:04d}.png")
    (folder / "classes.txt").write_text("\n".join(CLASSES) + "\n", encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def seg(tmp_path_factory):
    root = tmp_path_factory.mktemp("seg")
    source = _mosaic_folder(root / "src", 0, MOSAICS)
    project = Project.init(root / "proj", task="semantic-segmentation")
    project.update_config({**FAST, "data.image.size": [32, 32]})
    project.define(metric="miou", target=0.01, objective="segment digits")
    project.ingest(str(source), progress=False)
    project.explore(progress=False)
    project.split()
    project.train(epochs=1, progress=False)
    project.test()
    project.export()
    return project, report(project, pdf=False), audit(project)


@pytest.fixture(scope="module")
def det(tmp_path_factory):
    root = tmp_path_factory.mktemp("det")
    project = Project.init(root / "proj", task="object-detection")
    project.update_config({**FAST, "data.image.size": [64, 64]})
    project.define(metric="map50", target=0.0, objective="find tree crowns")
    project.ingest("builtin:trees", progress=False)
    project.explore(progress=False)
    project.split()
    project.train(epochs=1, progress=False)
    project.test()
    project.export()
    return project, report(project, pdf=False), audit(project)


# ---- segmentation ---------------------------------------------------------------------------
def test_segmentation_report_shows_per_class_iou_overlays_and_pixel_shares(seg):
    project, result, _ = seg
    page = result.html.read_text(encoding="utf-8")
    results = _words(_section(page, "results"))
    assert "Per-class IoU" in results
    metrics = read_json(project.paths.reports / "evaluate" / "test" / "metrics.json")
    for entry in metrics["per_class"]:
        assert f" {entry['class']} " in results
    iou = metrics["per_class"][0]["iou"]["value"]
    assert f"{iou:.3f}" in results  # background's IoU, as recorded
    assert "Overlays: the test images with the lowest IoU" in results
    assert "Calibration: not applicable to semantic-segmentation" in results
    assert "confusion" not in results.lower()
    assert "per-pixel majority class of the training masks" in results  # the baseline
    assert _section(page, "results").count("data:image/png;base64,") >= 2  # per class, overlays
    data = _words(_section(page, "data"))
    assert "Pixel share per class (explore)" in data and "background" in data
    assert "Images per class" in data and "once for every class its mask shows" in data


def test_segmentation_model_card_states_outputs_and_weakest_classes(seg):
    _, result, _ = seg
    card = result.model_card.read_text(encoding="utf-8")
    assert "a class for every pixel (a mask, returned as a PNG) out of 11" in card
    assert "- Weakest classes: " in card and "IoU" in card
    assert "- IoU per image: median" in card
    assert "- Images per class: " in card


def test_segmentation_monitor_with_labels_scores_the_live_miou(seg, tmp_path):
    """--inputs of 60 mosaics the project never saw, --labels their masks as the manifest
    writes them: the records keep the predicted masks, so the live mIoU is scored."""
    from dlworkflow.datasets.digit_masks import CLASSES, _mnist, mosaics
    from dlworkflow.tasks.masks import mask_to_label

    project, _, _ = seg
    folder = _mosaic_folder(tmp_path / "live", MOSAICS, 60)
    _, masks, _ = mosaics(*_mnist())
    with open(tmp_path / "labels.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "label"])
        for i in range(MOSAICS, MOSAICS + 60):
            writer.writerow([f"m{i:04d}.png", mask_to_label(masks[i], CLASSES)])
    result = project.monitor(inputs=folder / "images", labels=tmp_path / "labels.csv")
    checks = {c.name: c for c in result.checks_objects}
    assert "predicted class shares" in checks
    live = checks["live miou"]
    assert live.details["n"] == 60 and 0.0 <= live.live <= 1.0
    page = (project.paths.reports / "monitor.html").read_text(encoding="utf-8")
    assert "Class shares: live against the reference" in page


def test_segmentation_audit_runs_with_every_test_scored(seg):
    _, _, result = seg
    assert len(result.tests) == 28
    by_id = {t.test.id: t for t in result.tests}
    debug = by_id["model_debuggable"].evidence
    assert "IoU and Dice of 11 classes" in debug
    assert "not applicable to semantic-segmentation" in debug


# ---- detection ------------------------------------------------------------------------------
def test_detection_report_shows_ap_by_class_and_size_and_drawn_predictions(det):
    project, result, _ = det
    page = result.html.read_text(encoding="utf-8")
    results = _words(_section(page, "results"))
    assert "AP per class and by box size" in results
    assert " Tree " in results
    for size in ("small", "medium", "large"):
        assert f" {size} " in results
    assert "Predictions on test images" in results
    assert re.search(r"Of [\d,]+ true boxes, [\d,]+ were found", results)
    assert "box prior" in results
    assert "Calibration: not applicable to object-detection" in results
    data = _words(_section(page, "data"))
    assert "SMALL: 4 airborne RGB images" in data  # the built-in data set says it is small
    metrics = read_json(project.paths.reports / "evaluate" / "test" / "metrics.json")
    boxes = sum(read_json(project.paths.state / "dataset.json")["class_counts"].values())
    assert f"boxes {boxes:,}" in data and "Boxes per class" in data
    assert "Boxes (explore)" in data
    assert metrics["per_class"][0]["class"] == "Tree"


def test_detection_model_card_says_outputs_data_limits_and_few_test_images(det):
    project, result, _ = det
    card = result.model_card.read_text(encoding="utf-8")
    assert "boxes: for each object found, its box (x1, y1, x2, y2 in the request image's" in card
    assert "- AP by box size: small" in card
    assert "- Boxes per class: Tree: " in card
    assert "too few images to judge a model" in card  # the caveat from the data set's card
    # 56 tiles in all: the test split holds fewer than 50 images, which the card says
    assert re.search(r"Only \d+ test images?: the intervals resample these images", card)


def test_detection_audit_runs_and_names_the_box_prior(det):
    _, _, result = det
    assert len(result.tests) == 28
    by_id = {t.test.id: t for t in result.tests}
    simple = by_id["simpler_model_not_better"].evidence
    assert "box prior" in simple and "constant predictions" not in simple
    assert (
        "not applicable to object-detection (it predicts boxes)"
        in by_id["model_debuggable"].evidence
    )


def test_builtin_notes_say_derived_and_small():
    assert "DERIVED" in builtin_note("builtin:digit-masks")
    assert "SMALL" in builtin_note("builtin:trees")
    assert builtin_note("/data/folder") is None
    assert builtin_note("builtin:no-such-set") is None
