"""fit's callbacks (train/callbacks.py) and its signature, on real 8x8 digits (sklearn)."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import torch

from dlworkflow.models import create_model
from dlworkflow.train.callbacks import Callback, FitState, LambdaCallback, each_epoch
from dlworkflow.train.data import TensorData
from dlworkflow.train.trainer import FitOptions, LoopConfig, LoopState, fit, seed_everything

ROW_KEYS = {"epoch", "train_loss", "val_loss", "val_accuracy", "lr", "seconds"}


@pytest.fixture(scope="module")
def digits():
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = torch.from_numpy((bunch.images * (255 / 16)).round().astype(np.uint8)[:, None])
    y = torch.from_numpy(bunch.target.astype(np.int64))
    return (
        TensorData(x[:400], y[:400], [0.3], [0.4]),
        TensorData(x[400:560], y[400:560], [0.3], [0.4]),
    )


def small_cnn() -> torch.nn.Module:
    return create_model(
        "small_cnn",
        num_classes=10,
        in_channels=1,
        image_size=(8, 8),
        channels=[8],
        convs_per_block=1,
    )


class Recorder(Callback):
    """Every call, with what the state held at that moment."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []
        self.states: list[FitState] = []

    def _seen(self, name: str, state: FitState) -> None:
        self.states.append(state)
        self.calls.append((name, state.epoch, len(state.history)))

    def on_train_start(self, state: FitState) -> None:
        self._seen("train_start", state)

    def on_epoch_start(self, state: FitState) -> None:
        self._seen("epoch_start", state)

    def on_checkpoint(self, state: FitState) -> None:
        self._seen("checkpoint", state)
        assert isinstance(state.checkpoint, LoopState)
        assert state.checkpoint.epoch == state.epoch
        assert state.checkpoint.history == state.history

    def on_epoch_end(self, state: FitState) -> None:
        self._seen("epoch_end", state)
        row = state.row
        assert set(row) >= ROW_KEYS and row["epoch"] == state.epoch

    def on_train_end(self, state: FitState) -> None:
        self._seen("train_end", state)


def test_a_callback_is_told_every_step_of_a_real_run_in_order(digits):
    cfg = LoopConfig(
        epochs=2,
        batch_size=32,
        seed=0,
        learning_rate=0.01,
        device="cpu",
        patience=5,
        schedule="constant",
    )
    model = small_cnn()
    recorder, rows = Recorder(), []
    result = fit(
        model,
        *digits,
        cfg,
        options=FitOptions(generator=seed_everything(0)),
        callbacks=[recorder, each_epoch(lambda epoch, row: rows.append((epoch, row)))],
    )
    assert recorder.calls == [
        ("train_start", 0, 0),
        ("epoch_start", 1, 0),
        ("checkpoint", 1, 1),
        ("epoch_end", 1, 1),
        ("epoch_start", 2, 1),
        ("checkpoint", 2, 2),
        ("epoch_end", 2, 2),
        ("train_end", 2, 2),
    ]
    for state in recorder.states:
        assert state.model is model and state.cfg is cfg
        assert isinstance(state.optimizer, torch.optim.AdamW)
        assert {id(p) for g in state.optimizer.param_groups for p in g["params"]} == {
            id(p) for p in model.parameters()
        }
    assert recorder.states[-1].history == result.history and len(result.history) == 2
    assert [(e, row) for e, row in rows] == [(1, result.history[0]), (2, result.history[1])]
    assert [row["lr"] for row in result.history] == [0.01, 0.01]
    assert result.best_metric > 0.3  # it trained (chance: 0.1)


def test_callbacks_do_not_change_the_run(digits):
    """Same seed, with and without callbacks: the same history and weights."""
    cfg = LoopConfig(epochs=2, batch_size=32, seed=1, device="cpu", schedule="onecycle")

    def run(callbacks):
        generator = seed_everything(1)  # before the model's initial weights
        model = small_cnn()
        result = fit(
            model, *digits, cfg, options=FitOptions(generator=generator), callbacks=callbacks
        )
        return model, [{k: v for k, v in r.items() if k != "seconds"} for r in result.history]

    plain_model, plain = run(())
    watched_model, watched = run([Recorder(), LambdaCallback(on_checkpoint=lambda s: None)])
    assert plain == watched
    for key, value in plain_model.state_dict().items():
        assert torch.equal(value, watched_model.state_dict()[key]), key


def test_a_callback_may_stop_the_run_and_a_resumed_run_starts_after_its_epoch(digits):
    cfg = LoopConfig(epochs=3, batch_size=32, seed=2, device="cpu", patience=10)
    saved: list[LoopState] = []

    def stop(state: FitState) -> None:
        if state.epoch == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fit(
            small_cnn(),
            *digits,
            cfg,
            options=FitOptions(generator=seed_everything(2)),
            callbacks=[
                LambdaCallback(
                    on_checkpoint=lambda s: saved.append(s.checkpoint), on_epoch_end=stop
                )
            ],
        )
    recorder = Recorder()
    result = fit(
        small_cnn(),
        *digits,
        cfg,
        options=FitOptions(generator=seed_everything(2)),
        callbacks=[recorder],
        resume=saved[0],
    )
    assert recorder.calls[0] == ("train_start", 1, 1)
    assert [c for c in recorder.calls if c[0] == "epoch_start"] == [
        ("epoch_start", 2, 1),
        ("epoch_start", 3, 2),
    ]
    assert [r["epoch"] for r in result.history] == [1, 2, 3]


def test_fit_has_at_most_seven_parameters_and_no_legacy_form(digits):
    params = inspect.signature(fit).parameters
    assert len(params) <= 7, list(params)
    assert list(params)[:4] == ["model", "train", "val", "cfg"]
    assert not any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in params.values())
    assert not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    train, val = digits
    cfg = LoopConfig(epochs=1, device="cpu")
    with pytest.raises(TypeError):  # fit(model, x_train, y_train, x_val, y_val, cfg)
        fit(small_cnn(), train.x, train.y, val.x, val.y, cfg)  # type: ignore[call-arg]
    with pytest.raises(TypeError):  # the options that moved into FitOptions
        fit(small_cnn(), train, val, cfg, generator=torch.Generator())  # type: ignore[call-arg]
