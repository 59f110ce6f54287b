"""Batched augmentation (train/augment.py): kornia ops, mixup / cutmix, determinism, preview."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dlworkflow.config import Augment
from dlworkflow.errors import ConfigError
from dlworkflow.fileio import sha256_file
from dlworkflow.project import Project
from dlworkflow.train import augment

EVERYTHING = Augment(
    flip=0.5,
    rotation=15,
    resized_crop=0.2,
    translate=0.1,
    color_jitter=0.3,
    erasing=0.5,
    mixup=0.4,
    cutmix=1.0,
)


def digit_batch(n: int = 32) -> tuple[torch.Tensor, torch.Tensor, list[float], list[float]]:
    """Real 8x8 digits upscaled to 16x16, normalised as the trainer passes them."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = torch.from_numpy(digits.images[:n] / 16.0).float().repeat_interleave(2, 1)
    x = x.repeat_interleave(2, 2)[:, None]
    mean, std = [float(x.mean())], [float(x.std())]
    return (x - mean[0]) / std[0], torch.from_numpy(digits.target[:n]).long(), mean, std


def make(
    cfg: Augment = EVERYTHING,
    *,
    seed: int = 7,
    channels: int = 1,
    size=(16, 16),
    mean=None,
    std=None,
):
    return augment.build(
        cfg, channels=channels, size=size, num_classes=10, seed=seed, mean=mean, std=std
    )


def test_nothing_configured_means_no_transform():
    assert make(Augment()) is None
    assert augment.enabled(Augment(flip=0.5, cutmix=1.0)) == ["flip", "cutmix"]


def test_the_same_seed_gives_the_same_batches_and_leaves_torch_rng_alone():
    x, y, mean, std = digit_batch()
    a, b, other = (
        make(seed=7, mean=mean, std=std),
        make(seed=7, mean=mean, std=std),
        make(seed=8, mean=mean, std=std),
    )
    torch.manual_seed(123)
    expected_next = torch.rand(4)
    torch.manual_seed(123)
    first = [a(x, y) for _ in range(3)]
    assert torch.equal(torch.rand(4), expected_next)  # the training RNG stream is untouched
    second = [b(x, y) for _ in range(3)]
    for (xa, ya), (xb, yb) in zip(first, second):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
    assert not torch.equal(first[0][0], first[1][0])  # each batch is augmented afresh
    assert not torch.equal(other(x, y)[0], first[0][0])
    # batches are numbered within an epoch: epoch 2's batches are the same on a resumed run
    a.start_epoch(2)
    b.start_epoch(2)
    assert torch.equal(a(x, y)[0], b(x, y)[0])
    assert all(torch.isfinite(out).all() for out, _ in first)


def test_geometric_and_colour_ops_keep_the_shape_for_grey_and_rgb():
    x, y, mean, std = digit_batch(8)
    geometric = Augment(
        flip=1.0, rotation=30, resized_crop=0.3, translate=0.2, color_jitter=0.5, erasing=1.0
    )
    out, labels = make(geometric, mean=mean, std=std)(x, y)
    assert out.shape == x.shape and torch.equal(labels, y)  # no mixing: hard labels stay
    assert not torch.allclose(out, x)
    rgb = torch.rand(4, 3, 20, 24)
    out, _ = make(geometric, channels=3, size=(20, 24))(rgb, torch.arange(4))
    assert out.shape == rgb.shape and out.min() >= 0 and out.max() <= 1
    flip_only, _ = make(Augment(flip=1.0), mean=mean, std=std)(x, y)
    assert torch.allclose(flip_only, x.flip(-1), atol=1e-5)  # exact through de/renormalising


@pytest.mark.parametrize(
    "cfg", [Augment(mixup=0.4), Augment(cutmix=1.0), Augment(mixup=0.4, cutmix=1.0, flip=0.5)]
)
def test_mixup_and_cutmix_return_soft_targets_that_sum_to_one(cfg):
    x, y, mean, std = digit_batch()
    transform = make(cfg, mean=mean, std=std)
    for _ in range(4):
        out, soft = transform(x, y)
        assert out.shape == x.shape
        assert soft.shape == (32, 10) and soft.dtype == torch.float32
        assert torch.allclose(soft.sum(1), torch.ones(32))
        assert (soft >= 0).all() and (soft <= 1).all()


def test_cutmix_weights_are_the_share_of_pixels_kept():
    x = torch.randn(10, 1, 16, 16)  # noise: a pasted pixel never equals the original
    y = torch.arange(10)  # a different class per sample
    transform = make(Augment(cutmix=1.0))
    for _ in range(5):
        out, soft = transform(x, y)
        kept = (out == x).flatten(1).float().mean(1)
        assert torch.allclose(soft[torch.arange(10), y], kept, atol=1e-6)


def test_training_with_augmentation_is_reproducible(digits_project: Project):
    project = digits_project
    project.update_config(
        {"augment.flip": 0.5, "augment.rotation": 10, "augment.mixup": 0.2, "train.epochs": 1}
    )
    first = project.train(progress=False)
    second = project.train(progress=False)
    assert [r["train_loss"] for r in first.history] == [r["train_loss"] for r in second.history]
    assert sha256_file(first.weights) == sha256_file(second.weights)
    assert first.transfer.startswith("scratch: small_cnn has no pretrained weights")
    project.update_config({"augment.flip": 0.0, "augment.rotation": 0, "augment.mixup": 0.0})
    plain = project.train(progress=False)
    assert plain.history[0]["train_loss"] != first.history[0]["train_loss"]


def test_augment_preview_writes_a_png_of_train_samples_only(digits_project: Project, monkeypatch):
    from PIL import Image

    from dlworkflow import store

    project = digits_project
    with pytest.raises(ConfigError, match="nothing to preview"):
        augment.augment_preview(project)
    project.update_config({"augment.rotation": 20, "augment.cutmix": 1.0})
    asked = []
    real = store.load_split
    monkeypatch.setattr(store, "load_split", lambda p, name: asked.append(name) or real(p, name))
    path = augment.augment_preview(project, n=6, seed=1)
    assert path == project.paths.reports / "augment_preview.png"
    assert asked == ["train"]
    with Image.open(path) as img:
        assert img.format == "PNG"
        width, height = img.size
        pixels = np.asarray(img.convert("L"))
    assert (width, height) == (6 * (96 + 4) + 3 * 4, 6 * (96 + 4) + 4)  # 6 x (1 + 5)
    assert pixels.std() > 10  # not blank
    again = augment.augment_preview(project, n=6, seed=1)
    assert sha256_file(again) == sha256_file(path)  # seeded


def test_a_resumed_run_augments_exactly_as_an_uninterrupted_one():
    """start_epoch (an on_epoch_start callback) numbers batches per epoch, so a run resumed
    from its epoch-1 checkpoint sees the same augmented batches as one never interrupted."""
    import copy

    from sklearn.datasets import load_digits

    from dlworkflow.models import create_model
    from dlworkflow.train.callbacks import LambdaCallback
    from dlworkflow.train.data import TensorData
    from dlworkflow.train.trainer import FitOptions, LoopConfig, fit, seed_everything

    digits = load_digits()
    x = torch.from_numpy((digits.images * 255 / 16).round().astype(np.uint8)[:, None])
    y = torch.from_numpy(digits.target).long()
    train, val = (
        TensorData(x[:200], y[:200], [0.3], [0.4]),
        TensorData(x[200:260], y[200:260], [0.3], [0.4]),
    )
    loop = LoopConfig(epochs=3, batch_size=32, device="cpu", patience=10)

    def run(resume=None, interrupt_after=None):
        generator = seed_everything(0)
        model = create_model(
            "small_cnn",
            num_classes=10,
            in_channels=1,
            image_size=(8, 8),
            channels=[8],
            convs_per_block=1,
        )
        transform = make(
            Augment(flip=0.5, rotation=10, mixup=0.3), size=(8, 8), mean=[0.3], std=[0.4]
        )
        states = []

        def checkpoint(state):
            states.append(copy.deepcopy(state))
            if len(states) == interrupt_after:
                raise KeyboardInterrupt

        try:
            result = fit(
                model,
                train,
                val,
                loop,
                options=FitOptions(generator=generator, batch_transform=transform),
                callbacks=[
                    LambdaCallback(
                        on_epoch_start=lambda s: transform.start_epoch(s.epoch),
                        on_checkpoint=lambda s: checkpoint(s.checkpoint),
                    )
                ],
                resume=resume,
            )
        except KeyboardInterrupt:
            result = None
        return result, states

    whole, _ = run()
    _, states = run(interrupt_after=1)
    resumed, _ = run(resume=states[0])
    assert [r["train_loss"] for r in resumed.history] == [r["train_loss"] for r in whole.history]
