"""efficientnet_lite0_unet (models/unet.py): per-pixel logits at any input size, the model
contract for transfer learning (encoder = backbone, decoder = head), the ONNX export, and a
short real-data run on MNIST mosaics that learns more than the majority baseline."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dlworkflow.models import MODELS, create_model, load_trained, models_for, save_trained
from dlworkflow.models import efficientnet_lite as lite
from dlworkflow.tasks import task_of
from dlworkflow.tasks.segmentation import majority_fit, majority_outputs
from dlworkflow.train.strategies import backbone_norms
from segmentation_data import CLASSES, mnist_mosaics

NAME = "efficientnet_lite0_unet"
TASK = task_of("semantic-segmentation")


def unet(num_classes: int = 4, *, channels: int = 1, size=(56, 56), **params):
    return create_model(
        NAME,
        num_classes=num_classes,
        in_channels=channels,
        image_size=size,
        task="semantic-segmentation",
        **params,
    )


def normalised(images: np.ndarray) -> torch.Tensor:
    """uint8 (N, H, W) -> the encoder's input (pixel - 127) / 128, (N, 1, H, W)."""
    return torch.from_numpy((images[:, None].astype(np.float32) - 127.0) / 128.0)


def test_it_serves_segmentation_only_and_is_pretrained():
    entry = MODELS.get(NAME)
    assert entry.kinds == ("segmentation",) and entry.pretrained
    assert models_for("semantic-segmentation") == [NAME]
    assert NAME not in models_for("image-classification")
    assert TASK.default_model == NAME


@pytest.mark.parametrize(("channels", "size"), [(1, (56, 56)), (3, (45, 70)), (1, (28, 28))])
def test_logits_are_per_pixel_at_any_input_size(channels, size):
    torch.manual_seed(0)
    model = unet(5, channels=channels, size=size, pretrained=False).eval()
    out = model(torch.randn(2, channels, *size))
    assert out.shape == (2, 5, *size) and torch.isfinite(out).all()
    assert model.features(torch.randn(2, channels, *size)).shape == (2, 320)
    inner = unet(5, channels=channels, size=size, pretrained=False, input_size=64).eval()
    assert inner(torch.randn(1, channels, *size)).shape == (1, 5, *size)
    assert model.preprocessing["channels"] == channels
    assert model.preprocessing["mean"] == [127 / 255] * channels


def test_encoder_is_the_pretrained_backbone_and_the_decoder_the_head():
    model = unet(4)
    state = lite.pretrained_state()
    assert torch.equal(model.encoder.conv_stem.weight, state["conv_stem.weight"])
    assert torch.equal(
        model.encoder.blocks[15].project_conv.weight, state["blocks.15.project_conv.weight"]
    )
    groups = model.param_groups()
    ids = [id(p) for g in groups.values() for p in g]
    assert len(ids) == len(set(ids)) and set(ids) == {id(p) for p in model.parameters()}
    assert {id(p) for p in groups["backbone"]} == {id(p) for p in model.encoder.parameters()}
    norms = backbone_norms(model)  # what gradual unfreezing keeps in eval mode
    assert norms and all(any(n is m for m in model.encoder.modules()) for n in norms)

    x, y = torch.randn(2, 1, 40, 40), torch.randint(0, 4, (2, 40, 40))
    TASK.loss(model(x), y, {}).backward()
    assert all(p.grad is not None for p in groups["head"])
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in groups["backbone"])
    model.zero_grad(set_to_none=True)
    for p in groups["backbone"]:
        p.requires_grad_(False)
    TASK.loss(model(x), y, {}).backward()
    assert all(p.grad is None for p in groups["backbone"])

    model.reset_head(7)
    assert model(x).shape == (2, 7, 40, 40) and model.num_classes == 7
    with pytest.raises(Exception, match="decoder_channels"):
        unet(4, decoder_channels=[8, 8])


def test_save_load_and_onnx_export_compute_the_same_logits(tmp_path):
    import onnxruntime as ort

    from dlworkflow.models.onnx_export import to_onnx

    torch.manual_seed(0)
    images, _ = mnist_mosaics(3)
    model = unet(len(CLASSES), decoder_channels=[32, 24, 16, 16, 8])
    model.train()
    model(normalised(images))  # batch-norm statistics away from their initial values
    model.eval()
    path, _ = save_trained(tmp_path / "m", model, {"classes": CLASSES})
    loaded, _ = load_trained(tmp_path / "m")
    x = normalised(images[:1])
    with torch.inference_mode():
        expected = model(x).numpy()
        assert np.array_equal(loaded(x).numpy(), expected)
    onnx_path = to_onnx(model, tmp_path / "model.onnx", example=torch.zeros(1, 1, 56, 56))
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    got = session.run(["logits"], {"input": x.numpy()})[0]
    assert got.shape == (1, len(CLASSES), 56, 56)
    assert np.abs(got - expected).max() < 1e-3 * max(1.0, float(np.abs(expected).max()))
    assert (got.argmax(axis=1) == expected.argmax(axis=1)).mean() > 0.999


def test_a_short_run_on_mnist_mosaics_beats_the_majority_baseline():
    """64 real 2x2 MNIST mosaics at 56x56 (masks derived: ink >= 128 is the digit's class),
    60 steps of 8 (~14 s of one core): the loss falls and the mIoU on those mosaics passes
    the per-pixel majority class of the same masks (measured: 0.22 against 0.08)."""
    torch.manual_seed(0)
    images, masks = mnist_mosaics(64)
    x, y = normalised(images), torch.from_numpy(masks.astype(np.int64))
    model = unet(len(CLASSES))
    groups = model.param_groups()
    opt = torch.optim.AdamW(
        [{"params": groups["backbone"], "lr": 2e-3}, {"params": groups["head"], "lr": 5e-3}]
    )
    generator = torch.Generator().manual_seed(0)
    losses = []
    model.train()
    for _ in range(60):
        pick = torch.randint(0, len(x), (8,), generator=generator)
        loss = TASK.loss(model(x[pick]), y[pick], {})
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert np.mean(losses[-5:]) < 0.5 * np.mean(losses[:3])
    model.eval()
    with torch.inference_mode():
        out = TASK.outputs(model(x).numpy(), {})
    ones = np.ones((1, len(masks)))
    learned = TASK.scores(masks, out, ones, {})
    baseline = TASK.scores(
        masks, majority_outputs(majority_fit(masks, num_classes=11), 64), ones, {}
    )
    assert learned["miou"][0] > baseline["miou"][0] + 0.05, (learned, baseline)
    assert learned["pixel_accuracy"][0] > baseline["pixel_accuracy"][0]
