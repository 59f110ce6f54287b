"""Issue 14, item 8: a run whose training loss becomes non-finite (NaN or inf) stops with a clear
TrainError naming the epoch and the batch, with what to try, instead of training on garbage."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from dlworkflow.errors import TrainError
from dlworkflow.project import Project
from dlworkflow.train import train
from dlworkflow.train.data import TensorData
from dlworkflow.train.trainer import FitOptions, LoopConfig, fit, seed_everything


def _blobs(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 3
    x = torch.randn(n, 4, generator=g) + y[:, None].float() * 2.0
    return x, y


def _fit(x: torch.Tensor, y: torch.Tensor, cfg: LoopConfig):
    generator = seed_everything(cfg.seed, threads=2)
    xv, yv = _blobs(30, seed=1)
    return fit(
        nn.Linear(4, 3),
        TensorData(x, y),
        TensorData(xv, yv),
        cfg,
        options=FitOptions(generator=generator),
    )


def test_a_nan_input_value_stops_training_naming_epoch_and_batch():
    x, y = _blobs(64, seed=0)
    x[37, 2] = float("nan")  # one bad value in one training row
    cfg = LoopConfig(epochs=5, batch_size=8, device="cpu", schedule="constant")
    with pytest.raises(TrainError) as info:
        _fit(x, y, cfg)
    err = info.value
    message = str(err)
    assert "non-finite" in message and "epoch 1" in message
    assert "batch" in message and "of 8" in message
    assert "learning rate" in err.fix and "NaN" in err.fix
    assert "train.learning_rate" in err.fix


def test_finite_data_trains_as_before():
    x, y = _blobs(64, seed=0)
    result = _fit(x, y, LoopConfig(epochs=2, batch_size=8, device="cpu"))
    assert all(math.isfinite(r["train_loss"]) for r in result.history)


def test_a_huge_learning_rate_fails_the_train_step_with_a_clear_error(tmp_path):
    """A real project: tabular iris with SGD at learning rate 1e30 overflows in the first
    epoch; the step fails (ledger: failed) with the TrainError."""
    from sklearn.datasets import load_iris

    iris = load_iris(as_frame=True)
    frame = iris.frame.rename(columns=lambda c: c.replace(" (cm)", "").replace(" ", "_"))
    frame["label"] = iris.target_names[frame.pop("target")]
    (tmp_path / "data").mkdir()
    frame.to_csv(tmp_path / "data" / "iris.csv", index=False)
    project = Project.init(tmp_path / "proj", task="tabular-classification")
    project.define(metric="accuracy", target=0.9)
    project.ingest(str(tmp_path / "data" / "iris.csv"), progress=False)
    project.split()
    project.update_config(
        {
            "train.optimizer": "sgd",
            "train.learning_rate": 1e30,
            "train.epochs": 3,
            "train.threads": 2,
        }
    )
    with pytest.raises(TrainError) as info:
        train(project, progress=False)
    assert "non-finite" in str(info.value) and "epoch 1" in str(info.value)
    failed = project.ledger.latest("train", status=None)
    assert failed.status == "failed" and "TrainError" in failed.message
