"""train.ema_decay: the average of the weights follows its formula, is what validation sees
and what the run keeps, and leaves the live weights to training."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from dlworkflow.train.data import TensorData
from dlworkflow.train.trainer import LoopConfig, evaluate, fit, seed_everything
from dlworkflow.train.weight_average import WeightAverage


def test_the_average_follows_its_ramped_decay_and_swaps_back():
    torch.manual_seed(0)
    model = nn.Linear(3, 2)
    start = [p.detach().clone() for p in model.parameters()]
    average = WeightAverage(model, 0.9)
    expected = [s.clone() for s in start]
    for n in range(30):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p))
        average.update()
        d = min(0.9, (1 + n) / (10 + n))
        expected = [e + (1 - d) * (p.detach() - e) for e, p in zip(expected, model.parameters())]
    for got, want in zip(average.average, expected, strict=True):
        torch.testing.assert_close(got, want)
    live = [p.detach().clone() for p in model.parameters()]
    assert not torch.allclose(live[0], expected[0])
    with average.swapped_in():
        for p, want in zip(model.parameters(), expected, strict=True):
            assert torch.equal(p, want)
    for p, want in zip(model.parameters(), live, strict=True):
        assert torch.equal(p, want)  # training goes on from the live weights
    copy = WeightAverage(model, 0.9)
    assert copy.load(average.state()) and copy.updates == 30
    assert torch.equal(copy.average[0], average.average[0])
    assert not WeightAverage(nn.Linear(4, 2), 0.9).load(average.state())  # another shape


@pytest.fixture(scope="module")
def digits():
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = torch.from_numpy((bunch.images * (255 / 16)).round().astype(np.uint8)[:, None])
    y = torch.from_numpy(bunch.target.astype(np.int64))
    return TensorData(x[:600], y[:600], [0.3], [0.4]), TensorData(
        x[600:900], y[600:900], [0.3], [0.4]
    )


def net() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(512, 10),
    )


def test_fit_validates_and_keeps_the_average(digits):
    train, val = digits
    cfg = LoopConfig(
        epochs=3,
        batch_size=32,
        seed=3,
        learning_rate=0.05,
        patience=10,
        device="cpu",
        ema_decay=0.9,
    )
    seed_everything(cfg.seed, threads=2)
    averaged = net()
    result = fit(averaged, train, val, cfg)
    # the model returned holds the best epoch's average: its validation is the history's
    kept = evaluate(averaged, val, metric="accuracy")
    assert kept["val_accuracy"] == pytest.approx(result.best["val_accuracy"])
    seed_everything(cfg.seed, threads=2)
    plain = net()
    live = fit(plain, train, val, LoopConfig(**{**cfg.__dict__, "ema_decay": None}))
    # the same training steps (same seed): the live weights are not what was validated
    assert result.history[0]["train_loss"] == pytest.approx(live.history[0]["train_loss"])
    assert result.history[0]["val_loss"] != pytest.approx(live.history[0]["val_loss"])
