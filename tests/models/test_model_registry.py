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
    ModelTaskError,
    create_model,
    list_models,
    load_trained,
    models_for,
    save_trained,
)
from dlworkflow.tasks import task_names

SHAPES = [(1, (28, 28)), (3, (32, 32))]
# Parameters that keep a model quick enough for these CPU contract tests.
QUICK = {
    "efficientnet_lite0": {"input_size": 32},
    "bilstm": {"embed_dim": 16, "hidden": 16},
    "transformer": {"d_model": 32, "heads": 2, "ff_dim": 32},
    "resnet_small": {"widths": [8, 8, 16], "blocks_per_stage": 1},
    "resnet1d": {"widths": [8, 16, 16]},
    "series_bilstm": {"hidden": 32, "dropout": 0.0},
    "series_transformer": {"d_model": 16, "heads": 2, "ff_dim": 16},
    "audio_cnn": {"channels": [8, 16, 32, 32], "n_mels": 32, "dropout": 0.0},
    "audio_efficientnet_lite0": {"scale": 1.0, "n_mels": 32},
}
SERIES_CHANNELS, SAMPLE_RATE = 2, 8000
# Every (model, modality) pair in the registry: mlp takes images and tables. Models of dense
# tasks (boxes, masks: one map out per image) have their own contract tests
# (tests/models/test_unet.py, test_detector.py).
CASES = [
    (name, modality)
    for name in MODELS.names()
    for modality in MODELS.get(name).modalities
    if "classification" in MODELS.get(name).kinds
]
N_FEATURES = 6


def build(
    name: str,
    modality: str,
    *,
    num_classes: int,
    channels: int = 1,
    size: tuple[int, int] = (8, 8),
    **params,
) -> torch.nn.Module:
    inputs = {
        "image": {"in_channels": channels, "image_size": size},
        "tabular": {"n_features": N_FEATURES},
        "text": {},
        "sequence": {"in_channels": SERIES_CHANNELS},
        "audio": {"sample_rate": SAMPLE_RATE},
    }[modality]
    return create_model(
        name, num_classes=num_classes, **inputs, **{**QUICK.get(name, {}), **params}
    )


def batch(
    modality: str, n: int, *, channels: int = 1, size: tuple[int, int] = (8, 8)
) -> torch.Tensor:
    """A tiny input batch; token ids are right-padded to different lengths (pad id 0), series
    NaN-padded after different lengths (the one-tensor form), clips 0.5 s of a tone of its
    own pitch with noise."""
    if modality == "sequence":
        x = torch.randn(n, SERIES_CHANNELS, 16)
        for i in range(n):
            x[i, :, 9 + i % 7 :] = float("nan")
        return x
    if modality == "audio":
        t = torch.arange(SAMPLE_RATE // 2) / SAMPLE_RATE
        pitch = 200.0 * 1.25 ** torch.arange(n).unsqueeze(1)
        return 0.3 * torch.sin(2 * torch.pi * pitch * t) + 0.01 * torch.randn(n, len(t))
    if modality == "image":
        return torch.randn(n, channels, *size)
    if modality == "tabular":
        return torch.randn(n, N_FEATURES)
    ids = torch.randint(1000, 2000, (n, 7))
    for i in range(n):
        ids[i, 2 + i % 5 :] = 0
    return ids


@pytest.mark.parametrize(("name", "modality"), CASES)
def test_every_model_satisfies_the_contract(name, modality):
    torch.manual_seed(0)
    model = build(name, modality, num_classes=7)
    assert isinstance(model, Classifier)
    assert isinstance(model.head, torch.nn.Linear)
    assert model.preprocessing["modality"] == modality
    x = batch(modality, 4)
    model.eval()
    feats = model.features(x)
    assert feats.shape == (4, model.head.in_features)
    out = model(x)
    assert out.shape == (4, 7) and torch.isfinite(out).all()
    assert torch.allclose(out, model.head(feats))

    groups = model.param_groups()
    assert {"backbone", "head"} <= set(groups)
    grouped = [id(p) for params in groups.values() for p in params]
    assert len(grouped) == len(set(grouped)), "a parameter is in two groups"
    assert set(grouped) == {id(p) for p in model.parameters()}

    model.reset_head(3)
    assert model(x).shape == (4, 3)
    assert model.param_groups()["head"] == list(model.head.parameters())


@pytest.mark.parametrize(("name", "modality"), CASES)
def test_backward_reaches_every_group_and_a_frozen_backbone_gets_no_gradient(name, modality):
    torch.manual_seed(0)
    model = build(name, modality, num_classes=3)
    model.train()
    x, y = batch(modality, 4), torch.tensor([0, 1, 2, 0])
    torch.nn.functional.cross_entropy(model(x), y).backward()
    groups = model.param_groups()
    assert all(p.grad is not None for p in groups["head"])
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in groups["backbone"])

    model.zero_grad(set_to_none=True)
    for p in groups["backbone"]:
        p.requires_grad_(False)
    torch.nn.functional.cross_entropy(model(x), y).backward()
    assert all(p.grad is None for p in groups["backbone"])
    assert all(p.grad is not None for p in groups["head"])


@pytest.mark.parametrize(("channels", "size"), SHAPES)
@pytest.mark.parametrize("name", [n for n, m in CASES if m == "image"])
def test_image_models_take_grey_and_rgb_at_their_size(name, channels, size):
    torch.manual_seed(0)
    model = build(name, "image", num_classes=7, channels=channels, size=size).eval()
    assert model(torch.randn(2, channels, *size)).shape == (2, 7)
    assert model.preprocessing["channels"] == channels
    assert tuple(model.preprocessing["size"]) == size
    assert len(model.preprocessing["mean"]) == len(model.preprocessing["std"]) == channels


@pytest.mark.parametrize(("name", "modality"), [c for c in CASES if c[0] != "minilm_classifier"])
def test_every_model_learns_on_a_tiny_batch(name, modality):
    """One contract test that gradients flow: the loss on a fixed batch goes down.
    (minilm_classifier, 22M parameters, is checked once in test_text_models.py.)"""
    torch.manual_seed(0)
    model = build(name, modality, num_classes=3)
    x, y = batch(modality, 12), torch.arange(12) % 3
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
    assert (
        set(cards)
        == set(MODELS.names())
        >= {
            "small_cnn",
            "mlp",
            "resnet_small",
            "efficientnet_lite0",
            "bilstm",
            "transformer",
            "minilm_classifier",
        }
    )
    for card in cards.values():
        assert card.parameters > 0 and card.description and card.input
        tasks = card.task.split(", ")  # every task whose input the model takes
        if "classification" not in MODELS.get(card.name).kinds:  # a dense task's model
            assert tasks == [t for t in tasks if t in task_names()] and tasks, card
            continue
        assert {f"{m}-classification" for m in card.modalities} <= set(tasks)
        assert all(t.split("-")[0] in card.modalities for t in tasks)
    assert cards["small_cnn"].task == "image-classification, image-multilabel, image-regression"
    assert cards["mlp"].modalities == ("image", "tabular")
    assert (
        cards["bilstm"].task
        == cards["minilm_classifier"].task
        == "text-classification, text-multilabel"
    )
    assert cards["small_cnn"].pretrained is False and cards["mlp"].pretrained is False
    assert cards["minilm_classifier"].pretrained is True
    assert cards["mlp"].defaults["hidden"] == [256, 128]
    assert 0.2e6 < cards["resnet_small"].parameters < 0.35e6  # ResNet-20: 0.27M
    assert 22e6 < cards["minilm_classifier"].parameters < 23e6


def test_models_for_a_task_and_a_model_of_the_wrong_kind():
    assert models_for("tabular-classification") == ["mlp"]
    assert set(models_for("text-classification")) == {"bilstm", "transformer", "minilm_classifier"}
    assert "resnet_small" in models_for("image-classification")
    with pytest.raises(ModelTaskError) as err:
        create_model("small_cnn", num_classes=2, task="text-classification")
    message = str(err.value)
    assert "text-classification" in message and "bilstm" in message
    assert "minilm_classifier" in message and "fix" in message
    with pytest.raises(ModelTaskError, match="mlp"):
        create_model("bilstm", num_classes=2, task="tabular-classification")
    with pytest.raises(ModelTaskError, match="in_channels"):
        create_model("bilstm", num_classes=2, in_channels=1, image_size=8)
    with pytest.raises(ModelParamError, match="n_features"):
        create_model("mlp", num_classes=2, task="tabular-classification")
    model = create_model("mlp", num_classes=2, task="tabular-classification", n_features=4)
    assert model.dlw_spec["modality"] == "tabular" and model(torch.randn(3, 4)).shape == (3, 2)


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


@pytest.mark.parametrize("name", [n for n, m in CASES if m == "image"])
def test_save_and_load_round_trip_gives_identical_outputs(tmp_path, name):
    torch.manual_seed(1)
    params = {
        "mlp": {"hidden": [64, 32]},
        "small_cnn": {"channels": [8, 16]},
        "resnet_small": {"widths": [4, 8, 8], "blocks_per_stage": 1},
    }.get(name, QUICK.get(name, {}))
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
    assert meta["weights_sha256"] == digest and meta["modality"] == "image"
    assert loaded.preprocessing["mean"] == [0.1, 0.2, 0.3]
    assert loaded.preprocessing["std"] == [0.5, 0.6, 0.7]
    assert not loaded.training


@pytest.mark.parametrize(("name", "modality"), [c for c in CASES if c[1] in ("text", "tabular")])
def test_text_and_tabular_models_round_trip_with_their_preprocessing(tmp_path, name, modality):
    torch.manual_seed(1)
    model = build(name, modality, num_classes=2)
    prep = (
        {
            "features": ["a", "b"],
            "numeric": ["a"],
            "mean": [1.5],
            "std": [2.0],
            "categories": {"b": ["x", "y"]},
        }
        if modality == "tabular"
        else {"max_len": 16}
    )
    model.preprocessing.update(prep)
    model.eval()
    save_trained(tmp_path / "m", model, {"classes": ["neg", "pos"]})
    loaded, meta = load_trained(tmp_path / "m")
    x = batch(modality, 5)
    with torch.inference_mode():
        assert torch.equal(model(x), loaded(x))
    assert meta["modality"] == modality and "in_channels" not in meta
    assert meta["preprocessing"] == {**model.preprocessing}
    assert loaded.preprocessing == model.preprocessing
    assert meta["params"] == QUICK.get(name, {})
    assert loaded.dlw_spec["params"] == meta["params"]


def test_an_old_image_model_json_without_modality_still_loads(tmp_path):
    import json

    model = create_model("mlp", num_classes=3, in_channels=1, image_size=8, hidden=[16])
    model.preprocessing.update(mean=[0.5], std=[0.25])
    save_trained(tmp_path, model, {"classes": ["a", "b", "c"]})
    meta = json.loads((tmp_path / "model.json").read_text())
    for key in ("modality", "preprocessing"):
        meta.pop(key)
    (tmp_path / "model.json").write_text(json.dumps(meta))
    loaded, _ = load_trained(tmp_path)
    assert loaded.preprocessing["mean"] == [0.5] and loaded.preprocessing["std"] == [0.25]
    x = torch.randn(2, 1, 8, 8)
    with torch.inference_mode():
        assert torch.equal(model.eval()(x), loaded(x))


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
