"""`train(project)`: the step on a split project of real digit images (see conftest.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dlworkflow.errors import StepOrderError
from dlworkflow.fileio import sha256_file
from dlworkflow.models import load_trained
from dlworkflow.project import Project
from dlworkflow.store import read_split_info, read_trained_pointer
from dlworkflow.train import BEST_POINTER, TrainResult, train

SUMMARY_KEYS = {
    "headline",
    "model",
    "val_metric",
    "metric",
    "best_epoch",
    "epochs_run",
    "mlflow_run_id",
    "seconds",
}


def test_train_step_trains_records_and_tracks(digits_project: Project):
    project = digits_project
    result = train(project, progress=False)

    assert isinstance(result, TrainResult)
    assert result.model == "small_cnn" and result.metric == "accuracy"
    assert result.epochs_run == 3 and 1 <= result.best_epoch <= 3
    assert result.best_metric > 0.5, result.history  # 10 classes: chance is 0.1
    assert result.val_accuracy == result.best_metric
    labels = dict(result.rows())
    assert "mlflow ui --backend-store-uri sqlite:///mlruns.db" in labels["browse MLflow"]
    assert "<table>" in result._repr_html_()

    # the best model is on disk, verified and loadable, with what `dlw test` needs
    pointer = json.loads((project.paths.train_dir / BEST_POINTER).read_text())
    model, meta = load_trained(pointer["folder"])
    assert project.root / pointer["folder_in_project"] == project.paths.root / pointer["folder"]
    assert sha256_file(result.weights) == pointer["weights_sha256"] == meta["weights_sha256"]
    assert meta["classes"] == [str(d) for d in range(10)]
    assert meta["in_channels"] == 1 and meta["image_size"] == [16, 16]
    assert len(meta["mean"]) == 1 and 0 < meta["mean"][0] < 1 and meta["std"][0] > 0
    assert meta["params"] == {"channels": [8, 16], "convs_per_block": 1}
    assert model.head.out_features == 10

    # the ledger: a done train record pointing at these weights; the test set never read
    record = project.ledger.latest("train")
    assert record is not None and record.status == "done"
    assert record.id == pointer["run_id"] == result.ledger_run_id
    assert record.outputs["hash"] == pointer["weights_sha256"]
    assert record.inputs == {"split": project.upstream_hash("split")}
    assert set(record.summary) >= SUMMARY_KEYS
    assert record.summary["model"] == "small_cnn"
    assert record.summary["mlflow_run_id"] == result.mlflow_run_id == pointer["mlflow_run_id"]
    assert record.summary["headline"].startswith("val accuracy ")
    assert project.ledger.test_reads() == []
    assert project.status().state_of("train") == "done"

    # MLflow: one finished run with params, per-epoch metrics, artifacts and the ledger link
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{project.paths.mlflow_db}")
    run = client.get_run(result.mlflow_run_id)
    assert run.info.status == "FINISHED"
    assert run.data.tags["dlw.ledger_run_id"] == str(record.id)
    assert run.data.params["model.name"] == "small_cnn"
    assert run.data.params["seed"] == "42"
    assert run.data.params["data.split_hash"] == project.upstream_hash("split")
    steps = client.get_metric_history(run.info.run_id, "val_accuracy")
    assert sorted(m.step for m in steps) == [1, 2, 3]
    assert {"train_loss", "val_loss", "lr"} <= set(run.data.metrics)
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"model.safetensors", "model.json", "dlworkflow.yaml"} <= artifacts
    experiment = client.get_experiment(run.info.experiment_id)
    assert experiment.name == "digits"
    assert experiment.artifact_location == project.paths.mlartifacts.as_uri()


def test_same_seed_same_result_and_epochs_override(digits_project: Project):
    first = train(digits_project, epochs=2, progress=False)
    second = train(digits_project, epochs=2, progress=False)
    drop = lambda h: [{k: v for k, v in r.items() if k != "seconds"} for r in h]  # noqa: E731
    assert first.epochs_run == 2
    assert drop(first.history) == drop(second.history)
    assert first.mlflow_run_id != second.mlflow_run_id
    assert digits_project.ledger.latest("train").summary["epochs_override"] == 2
    pointer = json.loads((digits_project.paths.train_dir / BEST_POINTER).read_text())
    assert pointer["run_id"] == second.ledger_run_id


def test_train_before_split_says_to_split(tmp_path):
    project = Project.init(tmp_path / "empty")
    with pytest.raises(StepOrderError, match="dlw split"):
        train(project, progress=False)
    assert project.ledger.latest("train", status=None) is None


def test_bad_model_param_fails_the_step_with_a_fix(digits_project: Project):
    digits_project.update_config({"model.params": {"chanels": [8]}})
    with pytest.raises(Exception) as err:
        train(digits_project, progress=False)
    assert "'chanels'" in str(err.value) and "channels" in str(err.value)
    assert digits_project.ledger.latest("train", status=None).status == "failed"


def test_train_after_real_ingest_and_split(split_project: Project):
    """With the real `ingest` + `split` steps (tests/conftest.py: 3 classes x 20 digits)."""
    result = train(split_project, epochs=2, progress=False)
    assert result.epochs_run == 2 and result.best_metric > 0.0
    # an --epochs override that the file does not hold leaves train stale, with the reason
    assert split_project.status().state_of("train") == "stale"
    split_project.update_config({"train.epochs": 2})
    assert split_project.status().state_of("train") == "done"
    assert split_project.ledger.test_reads() == []
    _, meta = load_trained(read_trained_pointer(split_project)["folder"])
    assert meta["classes"] == read_split_info(split_project).classes == ["0", "1", "2"]


def test_a_pretrained_backbone_keeps_its_own_normalisation(split_project: Project):
    """efficientnet_lite0 is trained on (x - 127/255) / (128/255), not on the data's stats."""
    split_project.update_config(
        {"model.name": "efficientnet_lite0", "model.params": {"input_size": 32}, "train.epochs": 1}
    )
    result = train(split_project, progress=False)
    meta = json.loads((Path(result.folder) / "model.json").read_text())
    assert meta["mean"] == [pytest.approx(127 / 255)]  # one channel: the data is grayscale
    assert meta["std"] == [pytest.approx(128 / 255)]
