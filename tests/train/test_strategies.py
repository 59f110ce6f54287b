"""Transfer-learning strategies (train/strategies.py) on real digit images with the real
pretrained EfficientNet-Lite0 (input_size 32 to stay fast on a CPU; 128 for the one test
that measures what the pretrained features are worth)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from dlworkflow.models import create_model, load_trained, save_trained
from dlworkflow.models import efficientnet_lite as lite
from dlworkflow.project import Project
from dlworkflow.store import read_split_info
from dlworkflow.train import features_cache, strategies
from dlworkflow.train.callbacks import Callback
from dlworkflow.train.data import TensorData
from dlworkflow.train.strategies import AUTO_FROZEN_BELOW, HeadOnly, choose
from dlworkflow.train.tensors import TrainData
from dlworkflow.train.trainer import FitOptions, LoopConfig, fit, seed_everything
from modality_data import helpers


def _train_conftest():
    """tests/train/conftest.py as a module (its builder, beside its fixtures)."""
    return helpers("train/conftest.py")


_builders = _train_conftest()
build_digits_project, FAST_CONFIG = _builders.build_digits_project, _builders.FAST_CONFIG

LITE = {
    "model.name": "efficientnet_lite0",
    "model.params": {"input_size": 32},
    "train.epochs": 2,
    "train.batch_size": 32,
    "train.threads": 2,
}


def lite_project(tmp_path: Path, **config) -> Project:
    """200 real digits (~140 train, ~30 val, ~30 test) and EfficientNet-Lite0 at 32x32."""
    return build_digits_project(tmp_path, n=200, config={**LITE, **config})


def backbone_state(model) -> dict[str, torch.Tensor]:
    return {
        k: v.detach().clone() for k, v in model.state_dict().items() if not k.startswith("head.")
    }


def test_choose_states_the_strategy_and_why(tmp_path: Path):
    project = lite_project(tmp_path)
    n_train = read_split_info(project).counts["train"]  # ~140
    auto = choose(project)
    assert auto.name == "frozen" and f"auto, {n_train} training samples" in auto.reason
    assert choose(project, n_train=AUTO_FROZEN_BELOW).name == "gradual"
    assert auto.describe() == f"frozen: {auto.reason}"
    assert auto.summary() == {"strategy": "frozen", "reason": auto.reason}
    assert auto.params()["transfer.strategy"] == "frozen"

    project.update_config({"model.transfer": "finetune", "model.backbone_lr_factor": 0.2})
    finetune = choose(project)
    assert finetune.name == "finetune" and "x0.2" in finetune.reason
    assert finetune.model_params("efficientnet_lite0", {"input_size": 32}) == {"input_size": 32}

    project.update_config({"model.transfer": "frozen", "augment.flip": 0.5})
    assert "augment is not applied" in choose(project).reason

    project.update_config({"model.transfer": "scratch"})
    scratch = choose(project)
    assert scratch.name == "scratch"
    assert scratch.model_params("efficientnet_lite0", {"input_size": 32}) == {
        "input_size": 32,
        "pretrained": False,
    }

    project.update_config(
        {"model.transfer": "gradual", "model.params": {"input_size": 32, "pretrained": False}}
    )
    assert choose(project).name == "scratch"

    project.update_config(
        {
            "model.name": "small_cnn",
            **{k: v for k, v in FAST_CONFIG.items() if k.startswith("model.")},
        }
    )
    plain = choose(project)
    assert plain.name == "scratch" and plain.reason.startswith("small_cnn has no pretrained")
    assert "model.transfer: gradual needs them" in plain.reason
    assert plain.model_params("small_cnn", {"channels": [8]}) == {"channels": [8]}


def test_frozen_caches_features_trains_the_head_and_saves_the_whole_network(tmp_path: Path):
    project = lite_project(tmp_path, **{"model.transfer": "frozen", "train.epochs": 5})
    computed = features_cache.COMPUTED["count"]
    result = project.train(progress=False)

    assert dict(result.rows())["transfer"].startswith("frozen: model.transfer: frozen")
    record = project.ledger.latest("train")
    assert record.summary["transfer"]["strategy"] == "frozen"
    assert features_cache.COMPUTED["count"] == computed + 1
    files = list((project.paths.cache / "features").glob("efficientnet_lite0-*.safetensors"))
    assert len(files) == 1
    stamp = files[0].stat().st_mtime_ns
    # the head's 5 epochs train on the cached vectors: one feature pass in all (above), not a
    # timing (speed is benchmarked in bench/, never asserted in a test)
    assert [row["epoch"] for row in result.history if "epoch" in row] == [1, 2, 3, 4, 5]

    # the saved model is the complete network: the pretrained backbone + the trained head
    model, meta = load_trained(result.folder)
    pretrained = lite.pretrained_state()
    assert all(torch.equal(model.backbone.state_dict()[k], v) for k, v in pretrained.items())
    assert meta["transfer"]["strategy"] == "frozen"

    # again: the features come from the cache (not recomputed), the result is the same
    again = project.train(progress=False)
    assert features_cache.COMPUTED["count"] == computed + 1
    assert files[0].stat().st_mtime_ns == stamp
    assert again.history[-1]["val_accuracy"] == result.history[-1]["val_accuracy"]

    # `dlw test` evaluates the saved network on the test images
    project.define(metric="accuracy", target=0.3)
    verdict = dict(project.test().rows())
    n_test = 200 - sum(read_split_info(project).counts.get(s, 0) for s in ("train", "val"))
    assert verdict["test samples"].startswith(f"{n_test} ")


def tiny_data(n_train: int = 48, n_val: int = 16) -> TrainData:
    """Real 8x8 digits upscaled to 16x16, as uint8 tensors (the trainer normalises them)."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = (digits.images * (255 / 16)).round().astype(np.uint8).repeat(2, 1).repeat(2, 2)
    x = torch.from_numpy(images[:, None].copy())
    y = torch.from_numpy(digits.target.astype(np.int64))
    mean, std = lite.backbone_normalisation(1)
    return TrainData(
        x_train=x[:n_train],
        y_train=y[:n_train],
        x_val=x[n_train : n_train + n_val],
        y_val=y[n_train : n_train + n_val],
        classes=[str(d) for d in range(10)],
        channels=1,
        size=(16, 16),
        mean=mean,
        std=std,
    )


def lite_model():
    torch.manual_seed(0)
    return create_model(
        "efficientnet_lite0", num_classes=10, in_channels=1, image_size=(16, 16), input_size=32
    )


class Spy:
    """Wraps strategies.fit: what the optimizer and the model look like at each epoch."""

    def __init__(self, monkeypatch) -> None:
        self.starts: list[dict] = []
        self.ends: dict[int, dict[str, torch.Tensor]] = {}
        self.norm_modes: list[tuple[int, bool]] = []
        self.initial: dict[str, torch.Tensor] = {}
        real = strategies.fit

        spy_self = self

        class Watch(Callback):  # after the strategy's own callbacks (unfreezing)
            def on_epoch_start(self, state):
                m, optimizer = state.model, state.optimizer
                spy_self.starts.append(
                    {
                        "epoch": state.epoch,
                        "lr": {g.get("name"): g["lr"] for g in optimizer.param_groups},
                        "backbone_trainable": [
                            p.requires_grad for p in m.param_groups()["backbone"]
                        ],
                        "head_trainable": [p.requires_grad for p in m.param_groups()["head"]],
                    }
                )

            def on_epoch_end(self, state):
                spy_self.ends[state.epoch] = backbone_state(state.model)

        def spy(model, train, val, cfg, *, callbacks=(), **kwargs):
            norm = strategies.backbone_norms(model)[0]
            norm.register_forward_hook(
                lambda m, _i, _o: (
                    self.norm_modes.append((len(self.starts), m.training))
                    if torch.is_grad_enabled()
                    else None
                )
            )
            self.initial = backbone_state(model)
            return real(model, train, val, cfg, callbacks=[*callbacks, Watch()], **kwargs)

        monkeypatch.setattr(strategies, "fit", spy)


LOOP = LoopConfig(epochs=2, batch_size=16, learning_rate=2e-3, device="cpu", patience=5)


def test_finetune_trains_everything_with_discriminative_learning_rates(project, monkeypatch):
    project.update_config(
        {
            "model.name": "efficientnet_lite0",
            "model.transfer": "finetune",
            "model.backbone_lr_factor": 0.1,
        }
    )
    strategy = choose(project, n_train=48)
    assert strategy.name == "finetune"
    spy = Spy(monkeypatch)
    model = lite_model()
    strategies.train_model(strategy, project, model, tiny_data(), replace(LOOP, epochs=1))
    (start,) = spy.starts
    assert start["lr"]["head"] == pytest.approx(LOOP.learning_rate)
    assert start["lr"]["backbone"] == pytest.approx(0.1 * LOOP.learning_rate)
    assert all(start["backbone_trainable"]) and all(start["head_trainable"])
    assert spy.norm_modes and all(training for _, training in spy.norm_modes)
    changed = [k for k, v in spy.ends[1].items() if not torch.equal(v, spy.initial[k])]
    assert "backbone.conv_stem.weight" in changed and "backbone.bn0.running_mean" in changed


def test_gradual_freezes_the_backbone_first_then_unfreezes_it(project, monkeypatch):
    project.update_config(
        {"model.name": "efficientnet_lite0", "model.transfer": "gradual", "model.head_epochs": 1}
    )
    strategy = choose(project, n_train=48)
    assert strategy.name == "gradual"
    spy = Spy(monkeypatch)
    model = lite_model()
    strategies.train_model(strategy, project, model, tiny_data(), LOOP)
    first, second = spy.starts
    assert not any(first["backbone_trainable"]) and all(first["head_trainable"])
    assert all(second["backbone_trainable"])
    # the optimizer held the backbone group (with its own lr) from the start
    assert first["lr"]["backbone"] == pytest.approx(0.1 * first["lr"]["head"])
    # epoch 1: weights and batch-norm statistics untouched (eval mode); epoch 2: they train
    assert all(torch.equal(v, spy.initial[k]) for k, v in spy.ends[1].items())
    assert {mode for epoch, mode in spy.norm_modes if epoch == 1} == {False}
    assert {mode for epoch, mode in spy.norm_modes if epoch == 2} == {True}
    assert not torch.equal(
        spy.ends[2]["backbone.conv_stem.weight"], spy.initial["backbone.conv_stem.weight"]
    )
    # afterwards every parameter is trainable again and the eval-mode hook is gone
    assert all(p.requires_grad for p in model.parameters())
    assert not model._forward_pre_hooks


def test_scratch_starts_from_random_weights_and_records_it(project, tmp_path):
    project.update_config(
        {
            "model.name": "efficientnet_lite0",
            "model.transfer": "scratch",
            "model.params": {"input_size": 32},
        }
    )
    strategy = choose(project)
    params = strategy.model_params("efficientnet_lite0", {"input_size": 32})
    torch.manual_seed(0)
    model = create_model(
        "efficientnet_lite0", num_classes=10, in_channels=1, image_size=(16, 16), **params
    )
    stem = model.backbone.conv_stem.weight
    assert not torch.allclose(stem, lite.pretrained_state()["conv_stem.weight"], atol=1e-2)
    save_trained(tmp_path / "m", model, {"classes": [str(d) for d in range(10)]})
    again, meta = load_trained(tmp_path / "m")  # `dlw test` rebuilds it without the weights
    assert meta["params"] == {"input_size": 32, "pretrained": False}
    assert torch.equal(again.backbone.conv_stem.weight, stem)


def mnist_subset(per_class: int, offset: int) -> tuple[np.ndarray, torch.Tensor]:
    from dlworkflow.datasets.digits import _mnist5k_rows

    rows = list(_mnist5k_rows())
    labels = np.array([int(label) for label, _ in rows])
    index = np.concatenate(
        [np.flatnonzero(labels == c)[offset : offset + per_class] for c in range(10)]
    )
    images = np.stack([rows[i][1] for i in index])[:, None]
    return images, torch.from_numpy(labels[index])


def train_head(x_train, y_train, x_val, y_val) -> float:
    generator = seed_everything(0)
    head = HeadOnly(torch.nn.Linear(x_train.shape[1], 10))
    result = fit(
        head,
        TensorData(x_train, y_train),
        TensorData(x_val, y_val),
        LoopConfig(epochs=15, batch_size=32, device="cpu"),
        options=FitOptions(generator=generator),
    )
    return result.best_metric


def test_pretrained_features_beat_the_same_head_on_raw_pixels():
    """100 real MNIST digits to train on (10 per class), 200 to validate: the same linear
    head scores higher on frozen ImageNet features than on the pixels (measured: 0.81 vs
    0.74 here; 0.71 vs 0.69 and 0.82 vs 0.78 on two other disjoint subsets). At input_size
    64-96 the features of 28x28 digits are no better than the pixels (0.83 vs 0.84 with 30
    per class): the backbone needs ~128 px and up."""
    x_train, y_train = mnist_subset(10, 0)
    x_val, y_val = mnist_subset(20, 10)
    torch.manual_seed(0)
    model = create_model(
        "efficientnet_lite0", num_classes=10, in_channels=1, image_size=(28, 28), input_size=128
    )
    mean, std = model.preprocessing["mean"], model.preprocessing["std"]
    f_train = features_cache.extract(
        model, TensorData(torch.from_numpy(x_train), y_train, mean, std)
    )
    f_val = features_cache.extract(model, TensorData(torch.from_numpy(x_val), y_val, mean, std))
    assert f_train.shape == (100, lite.NUM_FEATURES)

    pixel_mean = float(x_train.mean() / 255)
    pixel_std = float(x_train.std() / 255)
    pixels = [
        ((torch.from_numpy(x).float() / 255 - pixel_mean) / pixel_std).flatten(1)
        for x in (x_train, x_val)
    ]
    on_features = train_head(f_train, y_train, f_val, y_val)
    on_pixels = train_head(pixels[0], y_train, pixels[1], y_val)
    assert on_features > on_pixels + 0.03, (on_features, on_pixels)
