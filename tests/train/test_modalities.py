"""Training and testing text and tabular projects end to end, on real data: Rotten Tomatoes
critic snippets (a subset) and the Breast Cancer Wisconsin table."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dlworkflow.models import ModelTaskError, load_trained
from dlworkflow.project import Project
from dlworkflow.store import load_split, read_trained_pointer

N_REVIEWS = 1000


def reviews_source(folder: Path, n: int) -> Path:
    """`n` real snippets (text, label fresh/rotten, movie), a fixed random sample."""
    from dlworkflow.datasets.rotten_tomatoes import load_reviews

    path = folder / f"reviews-{n}.parquet"
    if not path.is_file():
        load_reviews().sample(n, random_state=0).to_parquet(path, index=False)
    return path


def project_for(root: Path, *, task: str, source: str, config: dict) -> Project:
    project = Project.init(root, task=task)
    project.update_config({"train.threads": 2, **config})
    project.ingest(source)
    project.split()
    return project


def majority_share(project: Project) -> float:
    return float(load_split(project, "val")["label"].value_counts(normalize=True).max())


def test_bilstm_learns_rotten_tomatoes_and_the_test_step_tokenizes_alike(tmp_path):
    project = project_for(
        tmp_path / "text",
        task="text-classification",
        source=str(reviews_source(tmp_path, N_REVIEWS)),
        config={
            "model.name": "bilstm",
            "model.params": {"embed_dim": 64, "hidden": 64, "dropout": 0.1, "max_len": 64},
            "train.epochs": 2,
            "train.batch_size": 32,
            "train.learning_rate": 0.01,
        },
    )
    result = project.train(progress=False)
    chance = majority_share(project)
    assert result.best_metric > chance, (result.history, chance)

    model, meta = load_trained(read_trained_pointer(project)["folder"])
    assert meta["modality"] == "text" and "in_channels" not in meta
    assert meta["preprocessing"] == {
        "modality": "text",
        "max_len": 64,
        "tokenizer": "minilm-wordpiece",
    }
    assert meta["vocab_size"] == 30522 and meta["classes"] == ["fresh", "rotten"]
    assert len(list(project.paths.cache.glob("tokens-*.npy"))) == 2  # train and val

    project.define(metric="accuracy", target=0.5)
    verdict = project.test()
    assert verdict.n_samples == read_split_count(project, "test")
    assert 0.3 < verdict.verdict.value < 1.0


def read_split_count(project: Project, name: str) -> int:
    from dlworkflow.store import read_split_info

    return int(read_split_info(project).counts[name])


def test_minilm_classifier_trains_an_epoch_on_a_few_hundred_snippets(tmp_path):
    project = project_for(
        tmp_path / "minilm",
        task="text-classification",
        source=str(reviews_source(tmp_path, 200)),
        config={
            "model.name": "minilm_classifier",
            "model.params": {"max_len": 48},
            "train.epochs": 1,
            "train.batch_size": 32,
            "train.learning_rate": 1e-3,
        },
    )
    result = project.train(progress=False)
    assert result.epochs_run == 1 and 0 <= result.best_metric <= 1
    meta = json.loads((Path(result.folder) / "model.json").read_text())
    assert meta["name"] == "minilm_classifier" and meta["preprocessing"]["max_len"] == 48


def test_mlp_on_breast_cancer_features_and_the_test_verdict(tmp_path):
    project = project_for(
        tmp_path / "table",
        task="tabular-classification",
        source="builtin:breast-cancer",
        config={"model.name": "mlp", "train.epochs": 5, "train.batch_size": 32},
    )
    result = project.train(progress=False)
    assert result.best_metric > 0.9, result.history

    _model, meta = load_trained(read_trained_pointer(project)["folder"])
    prep = meta["preprocessing"]
    assert meta["modality"] == "tabular" and meta["n_features"] == 30
    assert len(prep["features"]) == len(prep["numeric"]) == len(prep["mean"]) == 30
    assert prep["categories"] == {} and "mean radius" in prep["features"]
    train_rows = load_split(project, "train")
    assert prep["mean"][prep["numeric"].index("mean radius")] == pytest.approx(
        train_rows["f:mean radius"].mean()
    )  # TRAIN statistics, not all rows'

    project.define(metric="balanced_accuracy", target=0.85)
    verdict = project.test()
    assert verdict.verdict.value > 0.85 and verdict.verdict.passed


def test_an_image_model_for_a_text_project_names_the_text_models(tmp_path):
    project = project_for(
        tmp_path / "wrong",
        task="text-classification",
        source=str(reviews_source(tmp_path, 60)),
        config={"model.name": "small_cnn"},
    )
    with pytest.raises(ModelTaskError) as err:
        project.train(progress=False)
    message = str(err.value)
    assert "text-classification" in message
    assert all(name in message for name in ("bilstm", "transformer", "minilm_classifier"))
