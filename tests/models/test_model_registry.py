"""The model contract, run over every registered model (as scikit-learn's estimator checks)."""

from __future__ import annotations

import pytest
import torch

from dlworkflow.errors import DlwError, UnknownKeyError
from dlworkflow.models import (
    MODELS,
    Classifier,
    ModelFileError,
    ModelParamError,
    create_model,
    list_models,
    load_trained,
    save_trained,
)

SHAPES = [(1, (28, 28)), (3, (32, 32))]
# Parameters that keep a model quick enough for these CPU contract tests.
QUICK = {"efficientnet_lite0": {"input_size": 32}}


@pytest.mark.parametrize("name", MODELS.names())
@pytest.mark.parametrize(("channels", "size"), SHAPES)
def test_every_model_satisfies_the_contract(name, channels, size):
    torch.manual_seed(0)
    model = create_model(name, num_classes=7, in_channels=channels, image_size=size,
                         **QUICK.get(name, {}))
    assert isinstance(model, Classifier)
    assert isinstance(model.head, torch.nn.Linear)
    x = torch.randn(4, channels, *size)
    model.eval()
    feats = model.features(x)
    assert feats.shape == (4, model.head.in_features)
    out = model(x)
    assert out.shape == (4, 7)
    assert torch.allclose(out, model.head(feats))
    assert model.preprocessing["channels"] == channels
    assert tuple(model.preprocessing["size"]) == size
    assert len(model.preprocessing["mean"]) == len(model.preprocessing["std"]) == channels

    groups = model.param_groups()
    assert {"backbone", "head"} <= set(groups)
    grouped = [id(p) for params in groups.values() for p in params]
    assert len(grouped) == len(set(grouped)), "a parameter is in two groups"
    assert set(grouped) == {id(p) for p in model.parameters()}

    model.reset_head(3)
    assert model(x).shape == (4, 3)
    assert model.param_groups()["head"] == list(model.head.parameters())


@pytest.mark.parametrize("name", MODELS.names())
def test_every_model_learns_on_a_tiny_batch(name):
    """One contract test that gradients flow: the loss on a fixed batch goes down."""
    torch.manual_seed(0)
    model = create_model(name, num_classes=3, in_channels=1, image_size=(8, 8),
                         **QUICK.get(name, {}))
    x, y = torch.randn(12, 1, 8, 8), torch.arange(12) % 3
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(20):
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_list_models_describes_every_model():
    cards = {card.name: card for card in list_models()}
    assert set(cards) == set(MODELS.names()) >= {"small_cnn", "mlp"}
    for card in cards.values():
        assert card.task == "image-classification"
        assert card.parameters > 0 and card.description and card.input
    assert cards["small_cnn"].pretrained is False and cards["mlp"].pretrained is False
    assert cards["mlp"].defaults["hidden"] == [256, 128]


def test_unknown_model_names_the_closest_match():
    with pytest.raises(UnknownKeyError) as err:
        create_model("smal_cnn", num_classes=10, in_channels=1, image_size=28)
    assert "small_cnn" in str(err.value)


def test_unknown_param_names_the_valid_ones():
    with pytest.raises(ModelParamError) as err:
        create_model("mlp", num_classes=10, in_channels=1, image_size=28, hiden=[64])
    assert isinstance(err.value, DlwError)
    message = str(err.value)
    assert "'hiden'" in message and "hidden" in message and "dropout" in message


def test_bad_param_value_and_too_small_input_are_clear_errors():
    with pytest.raises(ModelParamError, match="at least 8x8"):
        create_model("small_cnn", num_classes=10, in_channels=1, image_size=(4, 4))
    with pytest.raises(ModelParamError, match="dropout"):
        create_model("mlp", num_classes=10, in_channels=1, image_size=28, dropout=1.5)


def test_yaml_lists_are_accepted_for_tuple_params():
    model = create_model("mlp", num_classes=4, in_channels=1, image_size=8, hidden=[32])
    assert model.head.in_features == 32


@pytest.mark.parametrize("name", MODELS.names())
def test_save_and_load_round_trip_gives_identical_outputs(tmp_path, name):
    torch.manual_seed(1)
    params = {"mlp": {"hidden": [64, 32]}, "small_cnn": {"channels": [8, 16]}}.get(
        name, QUICK.get(name, {}))
    model = create_model(name, num_classes=3, in_channels=3, image_size=(16, 12), **params)
    model.preprocessing.update(mean=[0.1, 0.2, 0.3], std=[0.5, 0.6, 0.7])
    # move batch-norm statistics away from their initial values, so they must be saved too
    model.train()
    model(torch.randn(8, 3, 16, 12) * 3 + 1)
    model.eval()
    path, digest = save_trained(tmp_path / "m", model, {"classes": ["a", "b", "c"], "note": 1})
    assert path.name == "model.safetensors" and len(digest) == 64

    loaded, meta = load_trained(tmp_path / "m")
    x = torch.randn(5, 3, 16, 12)
    with torch.inference_mode():
        assert torch.equal(model(x), loaded(x))
    assert meta["classes"] == ["a", "b", "c"] and meta["note"] == 1
    assert meta["name"] == name and meta["params"] == params
    assert meta["weights_sha256"] == digest
    assert loaded.preprocessing["mean"] == [0.1, 0.2, 0.3]
    assert loaded.preprocessing["std"] == [0.5, 0.6, 0.7]
    assert not loaded.training


def test_tampered_weights_are_refused(tmp_path):
    model = create_model("mlp", num_classes=3, in_channels=1, image_size=8, hidden=[16])
    path, _ = save_trained(tmp_path, model, {"classes": ["a", "b", "c"]})
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ModelFileError) as err:
        load_trained(tmp_path)
    assert "do not match" in str(err.value) and "fix" in str(err.value)


def test_missing_model_folder_says_to_train(tmp_path):
    with pytest.raises(ModelFileError, match="dlw train"):
        load_trained(tmp_path / "nothing")


def test_save_requires_classes(tmp_path):
    model = create_model("mlp", num_classes=3, in_channels=1, image_size=8)
    with pytest.raises(ModelFileError, match="classes"):
        save_trained(tmp_path, model, {})
