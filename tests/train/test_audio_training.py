"""Steps 5 and 6 on audio (audio-classification): 20 real sonic-pi clips (10 bass drums, 10
electronic sounds) in class folders, ingested at 8 kHz as 0.5 s clips, split, then loaded and
trained through the train step's own path (train/step.py `_build`,
strategies.train_model) and through `Project.train`, with the waveform augmentation in the
trainer and SpecAugment inside the network."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from dlworkflow import store
from dlworkflow.config import Augment
from dlworkflow.datasets import sonic_pi
from dlworkflow.errors import DataError
from dlworkflow.project import Project
from dlworkflow.train import augment_signals, strategies
from dlworkflow.train.augment_audio import SpecAugment
from dlworkflow.train.augment_signals import AudioTransform
from dlworkflow.train.step import _build
from dlworkflow.train.trainer import LoopConfig
from dlworkflow.train.tune.space import check_space, resolve
from system_deps import missing_system_package

CLASSES = ("bd", "elec")
PER_CLASS = 10
RATE, SECONDS = 8000, 0.5
AUDIO = {"data.audio.sample_rate": RATE, "data.audio.duration": SECONDS}
FAST = {"train.batch_size": 8, "train.learning_rate": 0.003, "train.threads": 2, "seed": 5}
SMALL = {
    "audio_cnn": {"channels": [16, 32, 64], "n_mels": 32},
    "audio_efficientnet_lite0": {"scale": 1.0, "n_mels": 32},
}
WAVE_AUGMENT = {
    "augment.gain_db": 6.0,
    "augment.time_shift": 0.1,
    "augment.noise_snr_db": 10.0,
    "augment.freq_mask": 4,
    "augment.time_mask": 3,
}


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> Path:
    try:
        found = sonic_pi.sonic_pi_clips()
    except DataError:
        missing_system_package(sonic_pi.PACKAGE)
    root = tmp_path_factory.mktemp("audio") / "clips"
    for label in CLASSES:
        (root / label).mkdir(parents=True)
        for path in [p for p, c in found if c == label][:PER_CLASS]:
            shutil.copy(path, root / label / path.name)
    return root


def audio_project(root: Path, folder: Path, **config: object) -> Project:
    project = Project.init(root / "p", task="audio-classification")
    # audio_cnn unless the test names another (the task's default is the pretrained Lite0)
    project.update_config({**AUDIO, **FAST, "model.name": "audio_cnn", **config})
    project.ingest(str(folder), progress=False)
    project.split()
    return project


def fitted(project: Project, epochs: int, monkeypatch: pytest.MonkeyPatch | None = None):  # noqa: ANN201
    """Train as the train step does; also returns the SpecAugment modules it built."""
    built_specs: list[SpecAugment] = []
    if monkeypatch is not None:
        real = augment_signals.spec_augment

        def recording(*args: object, **kwargs: object) -> SpecAugment | None:
            spec = real(*args, **kwargs)  # type: ignore[arg-type]
            if spec is not None:
                built_specs.append(spec)
            return spec

        monkeypatch.setattr(augment_signals, "spec_augment", recording)
    generator, strategy, model, data = _build(
        project, store.read_split_info(project), None, progress=False
    )
    cfg = project.config
    loop = LoopConfig.from_train_config(
        cfg.train, metric="accuracy", seed=cfg.seed, epochs=epochs, task=cfg.task
    )
    result = strategies.train_model(strategy, project, model, data, loop, generator=generator)
    return strategy, model, data, result, built_specs


@pytest.mark.parametrize(
    ("name", "transfer"),
    [("audio_cnn", "auto"), ("audio_efficientnet_lite0", "gradual")],
)
def test_each_audio_model_trains_with_waveform_and_spec_augmentation(
    tmp_path, clips, monkeypatch, name, transfer
):
    project = audio_project(
        tmp_path,
        clips,
        **{
            "model.name": name,
            "model.params": SMALL[name],
            "model.transfer": transfer,
            "model.head_epochs": 1,
            "augment.mixup": 0.3,
            **WAVE_AUGMENT,
        },
    )
    strategy, model, data, result, specs = fitted(project, epochs=2, monkeypatch=monkeypatch)
    assert strategy.name == ("scratch" if name == "audio_cnn" else "gradual")
    n_train = len(store.load_split(project, "train"))
    assert data.x_train.dtype == torch.float32 and data.x_train.shape == (n_train, 4000)
    assert torch.isfinite(data.x_train).all()
    # what `dlw test` and the server need: the clip settings and the front end
    prep = model.preprocessing
    assert prep["modality"] == "audio" and prep["sample_rate"] == RATE
    assert (prep["duration"], prep["policy"]) == (SECONDS, "fixed")
    assert prep["front_end"]["sample_rate"] == RATE and prep["front_end"]["n_mels"] == 32
    assert data.describe()["data.samples"] == 4000
    # SpecAugment was inside the network for the run's training batches, and is gone
    assert len(specs) == 1 and specs[0].calls > 0 and specs[0].epoch == 2
    assert model.augment is None
    assert len(result.history) == 2
    for row in result.history:
        assert np.isfinite(row["train_loss"]) and np.isfinite(row["val_loss"])
    if name == "audio_efficientnet_lite0":  # gradual: the backbone trainable again
        assert all(p.requires_grad for p in model.param_groups()["backbone"])


def test_frozen_lite0_trains_a_head_on_cached_features(tmp_path, clips):
    project = audio_project(
        tmp_path,
        clips,
        **{
            "model.name": "audio_efficientnet_lite0",
            "model.params": SMALL["audio_efficientnet_lite0"],
            "augment.gain_db": 6.0,
        },
    )
    strategy, model, _data, result, _ = fitted(project, epochs=3)
    assert strategy.name == "frozen" and "auto" in strategy.reason
    assert "features are computed once" in strategy.reason
    assert any("frozen: features computed" in note for note in result.notes)
    assert np.isfinite(result.history[-1]["train_loss"])
    assert model.augment is None


def test_audio_cnn_learns_the_clips_through_project_train(tmp_path, clips):
    project = audio_project(
        tmp_path,
        clips,
        **{
            "model.params": SMALL["audio_cnn"],
            "train.early_stopping_patience": 10,
            "augment.time_mask": 3,
        },
    )
    result = project.train(epochs=5, progress=False)
    losses = [h["train_loss"] for h in result.history]
    assert min(losses[-2:]) < 0.8 * losses[0], losses
    assert result.transfer.startswith("scratch")
    assert 0.0 <= result.best_metric <= 1.0


def test_waveform_augmentation_is_seeded():
    t = torch.arange(4000) / RATE
    x = torch.stack([0.3 * torch.sin(2 * torch.pi * f * t) for f in (220.0, 330.0, 440.0, 550.0)])
    y = torch.tensor([0, 1, 0, 1])
    cfg = Augment(gain_db=6.0, time_shift=0.1, noise_snr_db=10.0, mixup=0.3)

    def draw(seed: int, epoch: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
        transform = augment_signals.audio_transform(cfg, samples=4000, num_classes=2, seed=seed)
        assert isinstance(transform, AudioTransform) and transform.mixes
        transform.start_epoch(epoch)
        return transform(x.clone(), y)

    first, soft = draw(0)
    assert first.shape == x.shape and torch.isfinite(first).all()
    assert soft.shape == (4, 2) and torch.allclose(soft.sum(1), torch.ones(4))
    again, soft_again = draw(0)
    assert torch.equal(first, again) and torch.equal(soft, soft_again)
    assert not torch.equal(first, draw(1)[0]) and not torch.equal(first, draw(0, epoch=2)[0])
    assert augment_signals.audio_transform(Augment(), samples=4000, num_classes=2, seed=0) is None
    assert augment_signals.spec_augment(Augment(flip=0.5), seed=0) is None


def test_default_tune_space_of_audio_models(tmp_path, clips):
    project = audio_project(tmp_path, clips, **{"model.params": SMALL["audio_cnn"]})
    space = resolve(project)
    assert space.strategy == "scratch"
    assert {"augment.gain_db", "augment.freq_mask", "model.params.dropout"} <= set(space.space)
    check_space(project.config, space.space)
    project.update_config(
        {
            "model.name": "audio_efficientnet_lite0",
            "model.params": SMALL["audio_efficientnet_lite0"],
        }
    )
    frozen = resolve(project)
    assert frozen.strategy == "frozen"
    assert not any(k.startswith("augment.") for k in frozen.space)
    check_space(project.config, frozen.space)
