"""Checkpoints every epoch and exact resumption, for the loop and for `train(resume=True)`."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from dlworkflow.errors import TrainError
from dlworkflow.models import load_trained
from dlworkflow.project import Project
from dlworkflow.train import tracking, train
from dlworkflow.train.callbacks import LambdaCallback, checkpointing
from dlworkflow.train.checkpoint import Checkpointer, load_checkpoint
from dlworkflow.train.data import TensorData
from dlworkflow.train.trainer import FitOptions, LoopConfig, fit, seed_everything


@pytest.fixture(scope="module")
def digits():
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = torch.from_numpy((bunch.images * (255 / 16)).round().astype(np.uint8)[:, None])
    y = torch.from_numpy(bunch.target.astype(np.int64))
    return (
        TensorData(x[:320], y[:320], [0.3], [0.4]),
        TensorData(x[320:480], y[320:480], [0.3], [0.4]),
    )


def net() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.Flatten(),
        nn.Dropout(0.2),
        nn.Linear(256, 10),
    )


def stop_at(epoch: int):
    def callback(state):
        if state.epoch == epoch:
            raise KeyboardInterrupt

    return LambdaCallback(on_epoch_end=callback)


def strip(history):
    return [{k: v for k, v in row.items() if k != "seconds"} for row in history]


@pytest.mark.parametrize(
    "options",
    [
        {
            "optimizer": "adamw",
            "schedule": "onecycle",
            "accumulate": 2,
            "label_smoothing": 0.1,
            "ema_decay": 0.9,  # the weight average is checkpointed and resumed too
        },
        {"optimizer": "sgd", "schedule": "plateau", "grad_clip": 1.0, "class_weights": "balanced"},
    ],
)
def test_interrupted_fit_resumes_to_identical_weights(digits, tmp_path, options):
    cfg = LoopConfig(
        epochs=4, batch_size=32, seed=5, learning_rate=0.02, patience=10, device="cpu", **options
    )

    def start():
        generator = seed_everything(cfg.seed, threads=2)
        return net(), generator

    model, generator = start()
    whole = fit(model, *digits, cfg, options=FitOptions(generator=generator))
    final = {k: v.clone() for k, v in model.state_dict().items()}

    folder = tmp_path / "checkpoint"
    model, generator = start()
    with pytest.raises(KeyboardInterrupt):
        fit(
            model,
            *digits,
            cfg,
            options=FitOptions(generator=generator),
            callbacks=[checkpointing(Checkpointer(folder, {"run": "test"}).save), stop_at(2)],
        )
    state, meta = load_checkpoint(folder)
    assert state.epoch == 2 and meta == {"run": "test"}
    # the last epoch's checkpoint and the best weights, nothing older, nothing pickled
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        ["state.json", "epoch-0002.safetensors", f"best-{state.best_epoch:04d}.safetensors"]
    )

    model, generator = start()  # a fresh process would start the same way
    model[0].weight.data.zero_()  # whatever the new model holds is replaced
    resumed = fit(
        model,
        *digits,
        cfg,
        options=FitOptions(generator=generator),
        resume=state,
        callbacks=[checkpointing(Checkpointer(folder, {"run": "test"}).save)],
    )
    assert strip(resumed.history) == strip(whole.history)
    assert resumed.best_epoch == whole.best_epoch
    for key, value in model.state_dict().items():
        assert torch.equal(value, final[key]), key
    last, _ = load_checkpoint(folder)  # the last epoch's weights match too
    assert last.epoch == 4


def test_train_resume_continues_the_interrupted_run_exactly(digits_project: Project, monkeypatch):
    project = digits_project
    project.update_config({"train.epochs": 4, "train.schedule": "onecycle"})
    whole = train(project, progress=False)

    original = tracking.Tracker.on_epoch_end

    def interrupted(self, state):
        if state.epoch == 2:
            raise KeyboardInterrupt  # Ctrl-C during epoch 2's logging: after its checkpoint
        original(self, state)

    monkeypatch.setattr(tracking.Tracker, "on_epoch_end", interrupted)
    with pytest.raises(KeyboardInterrupt):
        train(project, progress=False)
    broken = project.ledger.latest("train", status=None)
    assert broken.status != "done"
    monkeypatch.setattr(tracking.Tracker, "on_epoch_end", original)

    resumed = train(project, progress=False, resume=True)
    assert strip(resumed.history) == strip(whole.history)
    first, _ = load_trained(whole.folder)
    again, meta = load_trained(resumed.folder)
    for key, value in first.state_dict().items():
        assert torch.equal(value, again.state_dict()[key]), key
    ckpt_a, _ = load_checkpoint(f"{whole.folder}/checkpoint")
    ckpt_b, _ = load_checkpoint(f"{resumed.folder}/checkpoint")
    for key, value in ckpt_a.model.items():  # the last epoch's weights, not only the best
        assert torch.equal(value, ckpt_b.model[key]), key

    record = project.ledger.latest("train")
    assert record.id == resumed.ledger_run_id and record.summary["resumed_from"] == broken.id
    assert record.summary["resumed_at_epoch"] == 2
    assert meta["ledger_run_id"] == record.id
    pointer = json.loads((project.paths.train_dir / "best.json").read_text())
    assert pointer["run_id"] == record.id
    # the same MLflow run, finished, with every epoch logged once
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{project.paths.mlflow_db}")
    run = client.get_run(resumed.mlflow_run_id)
    assert run.info.status == "FINISHED"
    assert run.data.tags[tracking.LEDGER_TAG] == str(record.id)
    steps = sorted(m.step for m in client.get_metric_history(run.info.run_id, "val_loss"))
    assert steps == [1, 2, 3, 4]
    interrupted_runs = [
        r
        for r in client.search_runs([run.info.experiment_id])
        if r.info.run_id not in (whole.mlflow_run_id, resumed.mlflow_run_id)
    ]
    assert interrupted_runs == []  # the interrupted run IS the resumed one

    with pytest.raises(TrainError, match="nothing to resume"):
        train(project, progress=False, resume=True)


def test_resume_refuses_changed_settings_and_runs_without_checkpoint(
    digits_project: Project, monkeypatch
):
    project = digits_project

    def boom(self, state):
        raise KeyboardInterrupt

    monkeypatch.setattr(tracking.Tracker, "on_epoch_end", boom)
    with pytest.raises(KeyboardInterrupt):
        train(project, progress=False)
    project.update_config({"train.learning_rate": 0.02})
    with pytest.raises(TrainError, match="changed since it started"):
        train(project, progress=False, resume=True)
    project.update_config({"train.learning_rate": 0.01})
    with pytest.raises(TrainError, match="differs"):
        train(project, progress=False, resume=True, epochs=7)

    monkeypatch.setattr(
        "dlworkflow.train.checkpoint.save_checkpoint",
        lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt()),
    )
    with pytest.raises(KeyboardInterrupt):
        train(project, progress=False)  # interrupted while writing its first checkpoint
    with pytest.raises(TrainError, match="no checkpoint"):
        train(project, progress=False, resume=True)
