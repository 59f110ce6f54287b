"""Export of dense models (object detection, semantic segmentation): the ONNX graph (dynamic
batch, the model's fixed input size, the maps as "logits" and a pooled "features"
embedding), metadata.json (the output's shape, the target with stride, input size, score
threshold and max detections, the outputs' rule), the torch-free post-processing of the
runtime bundle, and the parity check: boxes after decode + NMS match (count, class, IoU >=
0.99, score within 1e-3), masks agree on >= 99.9% of the pixels with probabilities within
1e-3. Real images: NEON tree crops (deepforest 2.1.0's data) and MNIST digit mosaics."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from dense_exports import (
    DETECTION_SIZE,
    SEGMENTATION_CLASSES,
    detector,
    digit_mosaics,
    png,
    torch_outputs,
    tree_images,
    unet,
    write_export,
)
from dlworkflow.deploy.export.dense_parity import match_image
from dlworkflow.deploy.export.step import PARITY, parity_passed
from dlworkflow.runtime.bundle import Bundle, load_bundle


@pytest.fixture(scope="module")
def detection(tmp_path_factory: pytest.TempPathFactory) -> Bundle:
    return load_bundle(write_export(tmp_path_factory.mktemp("det"), "detection"), threads=1)


@pytest.fixture(scope="module")
def segmentation(tmp_path_factory: pytest.TempPathFactory) -> Bundle:
    return load_bundle(write_export(tmp_path_factory.mktemp("seg"), "segmentation"), threads=1)


def _parity(kind: str, bundle: Bundle, torch_out: np.ndarray, onnx_out: np.ndarray) -> dict:
    rule = PARITY[kind]
    same = rule.agree(bundle.task, torch_out, onnx_out, bundle.target)
    return {
        "max_abs_diff": rule.difference(bundle.task, torch_out, onnx_out, bundle.target),
        "agreement": float(np.mean(same)),
        "tolerance": rule.tolerance(bundle.target),
        "n": len(torch_out),
    }


def test_detector_exports_its_maps_with_a_dynamic_batch_and_a_fixed_size(detection):
    graph = onnx.load(str(detection.folder / "model.onnx")).graph
    dims = [d.dim_param or d.dim_value for d in graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["batch", 3, DETECTION_SIZE, DETECTION_SIZE]
    assert [o.name for o in graph.output] == ["logits", "features"]
    meta = detection.metadata
    assert meta["output"]["shape"] == ["batch", 6, 32, 32]  # 2 classes + 4, stride 4
    target = meta["target"]
    assert target["stride"] == 4 and target["input_size"] == [DETECTION_SIZE] * 2
    assert target["score_threshold"] == 0.3 and target["max_detections"] == 100
    assert meta["outputs"]["kind"] == "detection"
    assert meta["outputs"]["prediction"] == ["boxes", "count"]
    assert "NMS" in meta["outputs"]["rule"] and "score_threshold" in meta["outputs"]["rule"]
    x = detection.prepare_images(tree_images() * 2)  # batch 4: not the traced batch
    features = detection.session.run(["features"], {"input": x})[0]
    assert features.shape == (4, 32)  # the backbone's channels, pooled over its map


def test_detection_boxes_come_out_of_the_torch_free_runtime_as_torchs(detection):
    x, sizes = detection.prepare_images_sized(tree_images())
    assert sizes == [(400, 400), (300, 180)]
    onnx_out = detection.predict_outputs(x)
    assert onnx_out.shape == (2, 100, 6)  # (N, max_detections, 6)
    torch_out = torch_outputs(detector(), detection.task, x, detection.target)
    parity = _parity("detection", detection, torch_out, onnx_out)
    assert parity["agreement"] == 1.0 and parity["max_abs_diff"] <= 1e-3
    assert parity_passed(parity)
    served = (onnx_out[:, :, 4] >= 0.3).sum(axis=1)
    assert (served > 5).all()  # real boxes are compared, not empty lists
    assert detection.predict_outputs(x[:0]).shape == (0, 100, 6)


def test_detection_parity_fails_on_a_moved_or_missing_box_and_tolerates_the_cut(detection):
    x = detection.prepare_images(tree_images()[:1])
    out = detection.predict_outputs(x)[0]
    floor = 0.05
    best = int(np.argmax(out[:, 4]))
    moved = out.copy()
    moved[best, :4] += [0.02, 0.0, 0.02, 0.0]  # shifted by 2% of the width: IoU < 0.99
    assert match_image(out, moved, floor)[0] is False
    missing = np.delete(out, best, axis=0)
    assert match_image(out, missing, floor)[0] is False
    rescored = out.copy()
    rescored[best, 4] -= 0.01
    assert match_image(out, rescored, floor)[0] is False  # score off by 0.01 > 1e-3
    # the last of the K boxes kept sits at the top-k cut: the other runtime may keep another
    last = int(np.argmin(np.where(out[:, 5] >= 0, out[:, 4], np.inf)))
    swapped = out.copy()
    swapped[last, :4] = [0.0, 0.0, 0.01, 0.01]
    assert match_image(out, swapped, floor)[0] is True
    # the whole check: one image in two disagrees -> agreement 0.5, parity fails
    pair = np.stack([out, out]), np.stack([out, moved])
    parity = _parity("detection", detection, *pair)
    assert parity["agreement"] == 0.5 and not parity_passed(parity)


def test_unet_exports_per_pixel_probabilities_that_match_torch(segmentation):
    meta = segmentation.metadata
    assert meta["output"]["shape"] == ["batch", len(SEGMENTATION_CLASSES), 56, 56]
    assert meta["target"]["input_size"] == [56, 56] and "stride" not in meta["target"]
    assert meta["outputs"]["prediction"] == ["class_share", "classes", "mask_png"]
    assert "softmax" in meta["outputs"]["rule"]
    images = digit_mosaics(6)
    x = segmentation.prepare_images([png(m) for m in images])
    onnx_out = segmentation.predict_outputs(x)
    assert onnx_out.shape == (6, 11, 56, 56)
    np.testing.assert_allclose(onnx_out.sum(axis=1), 1.0, atol=1e-5)  # probabilities
    torch_out = torch_outputs(unet(), segmentation.task, x, segmentation.target)
    parity = _parity("segmentation", segmentation, torch_out, onnx_out)
    assert parity["max_abs_diff"] <= 1e-3 and parity["agreement"] >= 0.999
    assert parity_passed(parity)
    assert segmentation.session.run(["features"], {"input": x})[0].shape == (6, 16)


def test_segmentation_parity_counts_pixels_that_change_class(segmentation):
    x = segmentation.prepare_images([png(m) for m in digit_mosaics(2)])
    out = segmentation.predict_outputs(x).astype(np.float64)
    flipped = out.copy()
    best = out.argmax(axis=1)
    # 1% of the pixels of image 0 change their most probable class
    rows, cols = np.unravel_index(np.arange(0, 56 * 56, 100)[:31], (56, 56))
    for r, c in zip(rows, cols):
        flipped[0, :, r, c] = 0.0
        flipped[0, (best[0, r, c] + 1) % 11, r, c] = 1.0
    parity = _parity("segmentation", segmentation, out, flipped)
    assert parity["agreement"] == pytest.approx(1 - 31 / (2 * 56 * 56))
    assert not parity_passed(parity)


def test_a_dense_model_without_a_backbone_exports_its_maps_only(tmp_path: Path):
    from dlworkflow.models.onnx_export import to_onnx

    class Plain(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = torch.nn.Conv2d(1, 3, 3, padding=1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.conv(x)

    path = to_onnx(Plain().eval(), tmp_path / "m.onnx", example=np.zeros((2, 1, 8, 8), np.float32))
    assert [o.name for o in onnx.load(str(path)).graph.output] == ["logits"]
