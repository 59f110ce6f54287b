"""Issue 15, item 6 (training): every optimizer step's loss and total gradient norm are checked
for NaN/inf on the device; the first non-finite one stops the run with a TrainError naming the
epoch, the step and the quantity, which the failed run's ledger record keeps; a finished run
records that the check ran on every step, and the largest gradient norm, in model.json and
its ledger summary."""

from __future__ import annotations

import json
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


class SqrtAtZero(nn.Module):
    """A finite loss with a NaN gradient: d/dz of 0 * sqrt(z) at z = 0 is 0 * inf."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(4, 3)
        self.z = nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x) + 0.0 * torch.sqrt(self.z)


def _fit(model: nn.Module, cfg: LoopConfig, x=None, y=None):
    generator = seed_everything(cfg.seed, threads=2)
    if x is None:
        x, y = _blobs(64, seed=0)
    xv, yv = _blobs(30, seed=1)
    return fit(model, TensorData(x, y), TensorData(xv, yv), cfg, options=FitOptions(generator))


def test_a_nan_gradient_under_a_finite_loss_stops_training_naming_the_step():
    cfg = LoopConfig(epochs=3, batch_size=8, device="cpu", schedule="constant")
    with pytest.raises(TrainError) as info:
        _fit(SqrtAtZero(), cfg)
    err = info.value
    assert "gradient norm became non-finite (nan)" in str(err)
    assert "epoch 1, optimizer step 1 of 8" in str(err)
    assert "sqrt" in err.fix and "train.grad_clip" in err.fix
    assert err.context["numerics"] == {
        "failed": True,
        "quantity": "gradient norm",
        "value": "nan",
        "epoch": 1,
        "batch": 1,
        "step": 1,
        "steps_per_epoch": 8,
    }


def test_with_accumulation_the_step_and_its_last_batch_are_named():
    """accumulate 2: the first optimizer step comes after batch 2."""
    cfg = LoopConfig(epochs=2, batch_size=8, accumulate=2, device="cpu", schedule="constant")
    with pytest.raises(TrainError) as info:
        _fit(SqrtAtZero(), cfg)
    numerics = info.value.context["numerics"]
    assert (numerics["step"], numerics["batch"], numerics["steps_per_epoch"]) == (1, 2, 4)


def test_a_nan_loss_is_named_as_the_loss_when_it_comes_first():
    x, y = _blobs(64, seed=0)
    x[37, 2] = float("nan")  # its batch's loss is NaN, then that step's gradient
    cfg = LoopConfig(epochs=3, batch_size=8, device="cpu", schedule="constant")
    with pytest.raises(TrainError) as info:
        _fit(nn.Linear(4, 3), cfg, x, y)
    numerics = info.value.context["numerics"]
    assert numerics["quantity"] == "training loss" and 1 <= numerics["batch"] <= 8
    assert "training loss became non-finite" in str(info.value)


def test_every_step_is_checked_and_the_largest_gradient_norm_kept():
    torch.manual_seed(0)
    result = _fit(nn.Linear(4, 3), LoopConfig(epochs=3, batch_size=8, device="cpu"))
    norms = [row["grad_norm_max"] for row in result.history]
    assert len(norms) == 3 and all(math.isfinite(v) and v > 0 for v in norms)
    assert result.numerics == {
        "check": "training loss and gradient norm finite, every optimizer step",
        "every_step": True,
        "epochs_checked": 3,
        "steps_checked": 24,
        "max_grad_norm": max(norms),
    }


def test_the_norm_is_taken_before_clipping():
    """With train.grad_clip the recorded norm is clip_grad_norm_'s total norm, before it
    clips: a tiny clip does not hide a large gradient."""
    torch.manual_seed(0)
    cfg = LoopConfig(epochs=1, batch_size=8, device="cpu", grad_clip=1e-3, learning_rate=0.1)
    result = _fit(nn.Linear(4, 3), cfg)
    assert result.history[0]["grad_norm_max"] > 1e-2


@pytest.fixture
def iris_project(tmp_path):
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
    project.update_config({"train.epochs": 2, "train.threads": 2})
    return project


def test_the_failed_run_records_where_and_which_quantity(iris_project):
    """SGD at learning rate 1e30: the ledger's failed record says epoch, step or batch, and
    whether the loss or the gradient norm went first."""
    iris_project.update_config({"train.optimizer": "sgd", "train.learning_rate": 1e30})
    with pytest.raises(TrainError):
        train(iris_project, progress=False)
    failed = iris_project.ledger.latest("train", status=None)
    assert failed.status == "failed"
    numerics = failed.summary["numerics"]
    assert numerics["failed"] is True and numerics["epoch"] == 1
    assert numerics["quantity"] in ("training loss", "gradient norm")
    assert failed.summary["headline"].startswith(f"stopped: non-finite {numerics['quantity']}")


def test_a_finished_run_records_the_check_in_model_json_and_the_ledger(iris_project):
    result = train(iris_project, progress=False)
    record = iris_project.ledger.latest("train")
    numerics = record.summary["numerics"]
    assert numerics["every_step"] is True and numerics["epochs_checked"] == 2
    assert numerics["steps_checked"] > 0 and numerics["max_grad_norm"] > 0
    meta = json.loads(
        (iris_project.paths.train_dir / f"run-{record.id}" / "model.json").read_text()
    )
    assert meta["numerics"] == numerics
    assert result.history[0]["grad_norm_max"] > 0
