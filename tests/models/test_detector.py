"""efficientnet_lite0_detector: the registered CenterNet detector on the pretrained
EfficientNet-Lite0, its torch NMS against the numpy one, its ONNX export, and a short
training on real tree crowns (deepforest's OSBS_029.png) that beats the box prior."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch

from dlworkflow.datasets.data_packages import find_file, install_hint
from dlworkflow.models import MODELS, create_model
from dlworkflow.models.detector import predict
from dlworkflow.models.efficientnet_lite import pretrained_state
from dlworkflow.models.nms import batched_nms
from dlworkflow.tasks import task_of
from dlworkflow.tasks.boxes import box_prior_fit, box_prior_outputs, nms
from dlworkflow.tasks.detection import dump_boxes

TASK = task_of("object-detection")


def _detector(classes: int = 2, size: int = 64, **params: object) -> torch.nn.Module:
    torch.manual_seed(0)
    return create_model(
        "efficientnet_lite0_detector",
        num_classes=classes,
        in_channels=3,
        image_size=(size, size),
        task="object-detection",
        **params,
    )


def test_the_detector_serves_detection_only_and_outputs_centernet_maps_at_stride_4():
    entry = MODELS.get("efficientnet_lite0_detector")
    assert entry.kinds == ("detection",) and entry.tasks == ("object-detection",)
    assert entry.pretrained
    model = _detector(2, 96).eval()
    with torch.no_grad():
        logits = model(torch.randn(2, 3, 96, 96))
    assert logits.shape == (2, 2 + 4, 24, 24)
    # heatmap bias -2.19: every class starts near probability 0.1 (the focal loss's prior)
    assert model.head.heat[-1].bias.detach().numpy() == pytest.approx(-2.1972, abs=1e-3)
    assert 0.03 < float(torch.sigmoid(logits[:, :2]).mean()) < 0.3
    grey = _detector(1, 64)
    grey.eval()
    assert grey(torch.randn(1, 1, 64, 64)).shape == (1, 5, 16, 16)  # grey -> RGB inside


def test_param_groups_split_the_pretrained_backbone_from_the_fpn_and_head():
    model = _detector()
    groups = model.param_groups()
    ids = [id(p) for g in groups.values() for p in g]
    assert len(ids) == len(set(ids)) == len(list(model.parameters()))
    state = pretrained_state()
    stem = model.backbone.conv_stem.weight
    assert any(p is stem for p in groups["backbone"])
    assert torch.equal(stem.detach(), state["conv_stem.weight"])  # ImageNet weights loaded
    head_ids = {id(p) for p in model.head.parameters()}
    assert {id(p) for p in groups["head"]} == head_ids  # FPN + CenterNet head
    assert model.features(torch.randn(2, 3, 64, 64)).shape == (2, 320)


@pytest.mark.parametrize("seed", range(4))
def test_batched_torch_nms_keeps_what_the_numpy_nms_keeps(seed):
    rng = np.random.default_rng(seed)
    centres = rng.uniform(0, 100, (60, 2))
    sides = rng.uniform(5, 40, (60, 2))
    boxes = np.concatenate([centres - sides / 2, centres + sides / 2], axis=1)
    scores = rng.random(60)
    classes = rng.integers(0, 3, 60)
    expected = nms(boxes, scores, classes, iou=0.4)
    kept = batched_nms(torch.tensor(boxes), torch.tensor(scores), torch.tensor(classes), iou=0.4)
    assert kept.tolist() == expected.tolist()
    assert 5 < len(expected) < 60  # some suppressed, some kept


def test_torch_predict_gives_the_tasks_numpy_outputs():
    model = _detector(2, 64).eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        logits = model(x).numpy()
    target = {"max_detections": 50, "nms_iou": 0.5}
    np.testing.assert_allclose(
        predict(model, x, target).numpy(), TASK.outputs(logits, target), atol=1e-5
    )


def test_the_detector_exports_to_onnx_with_the_same_maps(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    from dlworkflow.models.onnx_export import to_onnx

    model = _detector(2, 64).eval()
    x = torch.randn(1, 3, 64, 64)
    path = to_onnx(model, tmp_path / "model.onnx", example=x)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (logits,) = session.run(["logits"], {"input": x.numpy()})[:1]
    with torch.no_grad():
        expected = model(x).numpy()
    assert logits.shape == expected.shape == (1, 6, 16, 16)
    np.testing.assert_allclose(logits, expected, atol=1e-4)


# ---------------------------------------------------------------- real crowns


def _tree_crops(size: int = 128) -> tuple[torch.Tensor, list[str]]:
    """Three size x size crops of OSBS_029.png (deepforest 2.1.0's 400x400 NEON image, 61
    crowns) with the crowns at least half inside each crop, clipped to it."""
    from PIL import Image

    png = find_file("deepforest", "data/OSBS_029.png")
    if png is None:
        pytest.skip("deepforest's data is not installed: " + install_hint("deepforest==2.1.0"))
    with png.with_suffix(".csv").open() as f:
        rows = list(csv.DictReader(f))
    boxes = np.array([[float(r[k]) for k in ("xmin", "ymin", "xmax", "ymax")] for r in rows])
    image = np.asarray(Image.open(png).convert("RGB"))
    pixels, labels = [], []
    for x0, y0 in ((0, 0), (136, 136), (272, 272)):
        shifted = boxes - [x0, y0, x0, y0]
        clipped = np.clip(shifted, 0, size)
        area = np.prod(shifted[:, 2:] - shifted[:, :2], axis=1)
        inside = np.prod(np.clip(clipped[:, 2:] - clipped[:, :2], 0, None), axis=1)
        labels.append(dump_boxes((size, size), [(*b, "Tree") for b in clipped[inside >= area / 2]]))
        pixels.append(image[y0 : y0 + size, x0 : x0 + size])
    x = torch.tensor(np.stack(pixels)).permute(0, 3, 1, 2).float() / 255
    return (x - 127 / 255) / (128 / 255), labels  # the backbone's normalisation


def test_a_few_steps_on_real_crowns_lower_the_loss_and_beat_the_box_prior():
    """30 steps of the FPN and head on the pretrained backbone's maps (the backbone frozen,
    as the gradual strategy's first phase: its maps computed once, which keeps this to
    seconds on a CPU)."""
    x, labels = _tree_crops()
    y = TASK.encode(labels, ["Tree"])
    assert (y[:, :, 4] >= 0).sum() >= 12  # crowns in every crop
    model = _detector(1, 128)
    model.backbone.eval()
    with torch.no_grad():
        maps = model.backbone(x)
    optimizer = torch.optim.AdamW(model.head.parameters(), lr=2e-3)
    y_t, losses = torch.from_numpy(y), []
    model.head.train()
    for _ in range(30):
        optimizer.zero_grad()
        loss = TASK.loss(model.head(maps), y_t, {})
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    assert np.mean(losses[-3:]) < 0.25 * losses[0], losses
    model.eval()
    with torch.no_grad():
        out = TASK.outputs(model(x).numpy(), {})
    target = {"input_size": [128, 128]}
    network = TASK.scores(y, out, np.ones((1, 3)), target)["map50"][0]
    prior_out = box_prior_outputs(box_prior_fit(y), len(y))
    prior = TASK.scores(y, prior_out, np.ones((1, 3)), target)["map50"][0]
    assert network > max(0.15, 10 * prior), (network, prior)
