"""The trainer's options (train: in dlworkflow.yaml, FitOptions) and callbacks, on real 8x8
digits (sklearn).

The images stay uint8 (N, 1, 8, 8): the trainer normalises each batch on the device.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from dlworkflow.train.callbacks import LambdaCallback
from dlworkflow.train.data import TensorData
from dlworkflow.train.trainer import (
    FitOptions,
    LoopConfig,
    balanced_weights,
    fit,
    resolve_precision,
    seed_everything,
)

N_TRAIN = 640


@pytest.fixture(scope="module")
def digits():
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = torch.from_numpy((bunch.images * (255 / 16)).round().astype(np.uint8)[:, None])
    y = torch.from_numpy(bunch.target.astype(np.int64))
    mean, std = [float(x[:N_TRAIN].float().mean() / 255)], [float(x[:N_TRAIN].float().std() / 255)]
    train = TensorData(x[:N_TRAIN], y[:N_TRAIN], mean, std)
    val = TensorData(x[N_TRAIN : N_TRAIN + 300], y[N_TRAIN : N_TRAIN + 300], mean, std)
    return train, val


def mlp(dropout: float = 0.0) -> nn.Module:
    return nn.Sequential(
        nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Dropout(dropout), nn.Linear(32, 10)
    )


def cnn() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(2),
        nn.Flatten(),
        nn.Linear(32, 10),
    )


class Flat(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = mlp().requires_grad_(False)
        self.dummy = nn.Parameter(torch.zeros(()))

    def forward(self, x):
        return self.net(x) + 0 * self.dummy


def run(data, cfg: LoopConfig, *, model=None, callbacks=(), **options):
    """fit with a seeded generator; `options`: further FitOptions fields."""
    generator = seed_everything(cfg.seed, threads=2)
    model = model() if callable(model) and not isinstance(model, nn.Module) else model
    model = model if model is not None else mlp()
    return model, fit(
        model, *data, cfg, options=FitOptions(generator=generator, **options), callbacks=callbacks
    )


def base(**kw) -> LoopConfig:
    return LoopConfig(
        **{"epochs": 2, "batch_size": 32, "seed": 0, "learning_rate": 0.01, "device": "cpu", **kw}
    )


def test_uint8_batches_are_normalised_on_the_device(digits):
    train, _ = digits
    placed = train.place(torch.device("cpu"))
    xb, yb = next(placed.batches(None, 64))
    assert xb.dtype == torch.float32 and yb.dtype == torch.int64
    expected = (train.x[:64].float() / 255 - train.mean[0]) / train.std[0]
    assert torch.equal(xb, expected)
    tokens = TensorData(
        torch.arange(12).view(4, 3), torch.zeros(4, dtype=torch.int64), mean=[0.5], std=[0.1]
    )  # token ids: never converted or normalised
    xb, _ = next(tokens.place(torch.device("cpu")).batches(None, 4))
    assert xb.dtype == torch.int64 and torch.equal(xb, tokens.x)


def test_accumulating_k_batches_equals_one_k_times_larger_batch(digits):
    """SGD without momentum: 2 x 32 accumulated == 64 in one step (up to float rounding)."""

    def sgd(model):
        return [{"params": list(model.parameters()), "momentum": 0.0, "nesterov": False}]

    torch.manual_seed(1)
    first = mlp()
    second = mlp()
    second.load_state_dict(first.state_dict())
    cfg = base(optimizer="sgd", weight_decay=0.0, schedule="constant", learning_rate=0.1)
    fit(
        first,
        *digits,
        cfg.__class__(**{**cfg.__dict__, "accumulate": 2}),
        options=FitOptions(generator=torch.Generator().manual_seed(3), param_groups=sgd(first)),
    )
    fit(
        second,
        *digits,
        cfg.__class__(**{**cfg.__dict__, "batch_size": 64}),
        options=FitOptions(generator=torch.Generator().manual_seed(3), param_groups=sgd(second)),
    )
    for key, value in first.state_dict().items():
        torch.testing.assert_close(value, second.state_dict()[key], atol=1e-5, rtol=0)


def test_balanced_class_weights(digits):
    y = torch.tensor([0] * 90 + [1] * 10 + [3] * 5)
    weights = balanced_weights(y, 4)
    assert weights.tolist() == pytest.approx([105 / (3 * 90), 105 / (3 * 10), 0.0, 105 / 15])
    # imbalanced digits (class 0 kept, the others cut to a fifth): the weighted loss differs
    train, val = digits
    keep = (train.y == 0) | (torch.arange(len(train.y)) % 5 == 0)
    imbalanced = TensorData(train.x[keep], train.y[keep], train.mean, train.std)
    _, plain = run((imbalanced, val), base(epochs=1))
    _, weighted = run((imbalanced, val), base(epochs=1, class_weights="balanced"))
    assert weighted.history[0]["train_loss"] != pytest.approx(plain.history[0]["train_loss"])


def _lr_trace(digits, cfg: LoopConfig, *, model=mlp):
    trace: list[float] = []

    def watch(state):
        if state.epoch == 1:
            state.optimizer.register_step_pre_hook(
                lambda opt, *_: trace.append(opt.param_groups[0]["lr"])
            )

    _, result = run(digits, cfg, model=model, callbacks=[LambdaCallback(on_epoch_start=watch)])
    return trace, result


def test_lr_schedules(digits):
    steps = math.ceil(N_TRAIN / 32)
    trace, result = _lr_trace(digits, base(schedule="constant"))
    assert set(trace) == {0.01} and len(trace) == 2 * steps
    trace, result = _lr_trace(digits, base(schedule="onecycle", epochs=3))
    peak = int(np.argmax(trace))
    assert len(trace) == 3 * steps
    assert trace[0] == pytest.approx(0.01 / 25) and max(trace) == pytest.approx(0.01)
    assert abs(peak - 0.3 * len(trace)) <= 2  # warm up for 30% of the steps
    assert trace[-1] < 0.01 / 25 / 100 * 1.5  # annealed towards max_lr / 25 / 1e4
    _, result = run(digits, base(schedule="cosine", epochs=3))
    assert [r["lr"] for r in result.history] == pytest.approx(
        [0.01 * (1 + math.cos(math.pi * e / 3)) / 2 for e in range(3)]
    )
    # plateau: a network that cannot learn (frozen, a gradient-free dummy parameter): the
    # metric stays flat, so x0.1 after 2 epochs without improvement (patience 4 // 2)
    _, result = run(digits, base(schedule="plateau", epochs=5, patience=4), model=Flat)
    assert [r["lr"] for r in result.history] == pytest.approx([0.01] * 3 + [0.001] * 2)


def test_label_smoothing_raises_the_train_loss_floor(digits):
    _, plain = run(digits, base(epochs=3, learning_rate=0.02))
    _, smooth = run(digits, base(epochs=3, learning_rate=0.02, label_smoothing=0.2))
    floor = -(0.82 * math.log(0.82) + 9 * 0.02 * math.log(0.02))  # entropy of the targets
    assert smooth.history[-1]["train_loss"] > floor > plain.history[-1]["train_loss"]


def test_soft_targets_from_batch_transform_match_hard_labels(digits):
    """One-hot soft targets (what mixup returns with lambda 1) train exactly as labels do,
    label smoothing included."""

    def one_hot(x, y):
        return x, nn.functional.one_hot(y, 10).float()

    cfg = base(label_smoothing=0.1)
    _, hard = run(digits, cfg)
    _, soft = run(digits, cfg, batch_transform=one_hot)
    for a, b in zip(hard.history, soft.history):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-5)
        assert a["val_loss"] == pytest.approx(b["val_loss"], rel=1e-4)


def test_bf16_autocast_on_cpu(digits):
    assert resolve_precision("auto", torch.device("cpu")) == "fp32"
    _, result = run(digits, base(precision="bf16"), model=cnn)
    assert result.precision == "bf16"
    assert math.isfinite(result.history[-1]["train_loss"])
    assert result.best_metric > 0.5  # 10 classes: chance is 0.1


def test_grad_clip_bounds_the_gradient_norm(digits):
    def norms_with(clip):
        norms: list[float] = []

        def watch(state):
            if state.epoch == 1:
                state.optimizer.register_step_pre_hook(
                    lambda opt, *_: norms.append(
                        float(
                            torch.linalg.vector_norm(
                                torch.stack(
                                    [
                                        p.grad.norm()
                                        for g in opt.param_groups
                                        for p in g["params"]
                                        if p.grad is not None
                                    ]
                                )
                            )
                        )
                    )
                )

        run(
            digits, base(epochs=1, grad_clip=clip), callbacks=[LambdaCallback(on_epoch_start=watch)]
        )
        return norms

    assert max(norms_with(None)) > 0.05
    assert max(norms_with(0.05)) <= 0.05 * (1 + 1e-5)


def test_param_groups_and_epoch_start_hook(digits):
    model = mlp()
    seen = []
    groups = [
        {"params": list(model[1].parameters()), "lr": 0.001},
        {"params": list(model[4].parameters())},
    ]
    _, result = run(
        digits,
        base(epochs=2, schedule="constant"),
        model=model,
        param_groups=groups,
        callbacks=[
            LambdaCallback(
                on_epoch_start=lambda s: seen.append(
                    (s.epoch, s.model is model, [g["lr"] for g in s.optimizer.param_groups])
                )
            )
        ],
    )
    assert seen == [(1, True, [0.001, 0.01]), (2, True, [0.001, 0.01])]
    assert result.history[0]["lr"] == 0.001


def test_channels_last_and_a_failing_compile_fall_back_with_a_note(digits, monkeypatch):
    def broken(model, *args, **kwargs):
        def call(*a, **k):
            raise RuntimeError("no C++ compiler")

        return call

    monkeypatch.setattr(torch, "compile", broken)
    with pytest.warns(RuntimeWarning, match="torch.compile failed"):
        _, result = run(digits, base(epochs=1, channels_last=True, compile=True), model=cnn)
    assert result.notes and "no C++ compiler" in result.notes[0]
    assert result.best_metric > 0.3


def test_resident_and_streamed_data_train_identically(digits, tmp_path):
    """The same weights whether the uint8 split sits in memory or streams from a memmap."""
    train, val = digits
    np.save(tmp_path / "train.npy", train.x.numpy())
    mapped = TensorData(
        np.load(tmp_path / "train.npy", mmap_mode="r"), train.y, train.mean, train.std
    )
    cfg = base(epochs=2)
    resident_model, resident = run((mapped, val), cfg, model=lambda: mlp(0.2))
    streamed_model, streamed = run(
        (mapped, val), LoopConfig(**{**cfg.__dict__, "resident_bytes": 0}), model=lambda: mlp(0.2)
    )
    assert resident.resident and not streamed.resident
    for key, value in resident_model.state_dict().items():
        assert torch.equal(value, streamed_model.state_dict()[key]), key
    strip = lambda h: [{k: v for k, v in r.items() if k != "seconds"} for r in h]  # noqa: E731
    assert strip(resident.history) == strip(streamed.history)


def test_seeding_asks_for_deterministic_kernels_without_loading_inductor():
    """seed_everything sets torch's deterministic flag (warn only) in a fresh process, and does
    not import Inductor's config (2 s, sympy) for eager training."""
    import subprocess
    import sys

    code = (
        "import sys, torch; from dlworkflow.train.trainer import seed_everything; "
        "seed_everything(3); print(torch.are_deterministic_algorithms_enabled(), "
        "torch.is_deterministic_algorithms_warn_only_enabled(), "
        "'torch._inductor.config' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.split() == ["True", "True", "False"], out.stderr[-2000:]
