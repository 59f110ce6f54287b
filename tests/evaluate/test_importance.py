"""Which inputs the model relies on (evaluate.importance), measured on validation for the
current model: permutation importance of a real table (breast cancer, with a column of one
value planted: its permutation cannot hurt, so it is flagged; and one of pure noise),
occlusion of real digits, and word ablation of real reviews."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dlworkflow.evaluate.importance import GRID, MAX_FORWARDS, TOP_WORDS
from dlworkflow.project import Project
from modality_data import TINY_TRANSFORMER, review_sample
from modality_data import trained_project as trained


@pytest.fixture(scope="module")
def cancer(tmp_path_factory: pytest.TempPathFactory) -> Project:
    from dlworkflow.datasets.breast_cancer import load_table

    folder = tmp_path_factory.mktemp("importance")
    table = load_table()[["mean radius", "mean texture", "worst concave points", "label"]]
    table.insert(0, "noise", np.random.default_rng(0).normal(size=len(table)))
    table.insert(0, "site", "clinic A")
    source = folder / "cancer.parquet"
    table.to_parquet(source, index=False)
    project = trained(
        folder / "table",
        task="tabular-classification",
        source=source,
        config={
            "model.name": "mlp",
            "model.params": {"hidden": [16]},
            "train.epochs": 30,
            "train.learning_rate": 0.01,
            "evaluate.bootstrap_samples": 300,
        },
    )
    return project


def test_permutation_importance_flags_the_feature_that_does_not_help(cancer: Project):
    report = cancer.evaluate("val").report
    imp = report["importance"]  # before: no "importance" in the report
    assert imp["split"] == "val" and imp["modality"] == "tabular"
    assert imp["weights_sha256"] == cancer.upstream_hash("train")  # the current model's
    names = {e["name"] for e in imp["features"]}
    assert names == {"site", "noise", "mean radius", "mean texture", "worst concave points"}
    for e in imp["features"]:
        assert e["low"] <= e["drop"] <= e["high"]
    site = next(e for e in imp["features"] if e["name"] == "site")
    assert site["drop"] == site["low"] == site["high"] == 0  # shuffling one value: no change
    assert "site" in imp["flagged"]
    top = imp["features"][0]
    assert top["name"] not in ("noise", "site") and top["low"] > 0  # it clearly helps
    assert "permutation" in imp["summary"] and "site" in imp["summary"]
    saved = json.loads((cancer.root / "reports/evaluate/val/metrics.json").read_text())
    assert saved["importance"] == imp


def test_importance_can_be_turned_off(cancer: Project):
    cancer.update_config({"evaluate.importance": False})
    try:
        assert Project.load(cancer.root).evaluate("val").report["importance"] is None
    finally:
        cancer.update_config({"evaluate.importance": True})


def test_occlusion_of_digits_names_the_regions_the_metric_depends_on(tmp_path):
    project = Project.init(tmp_path / "digits")
    project.define(metric="accuracy", target=0.5)
    project.update_config(
        {
            "model.name": "mlp",
            "train.epochs": 2,
            "train.learning_rate": 0.002,
            "train.threads": 2,
            "evaluate.bootstrap_samples": 200,
        }
    )
    project.ingest("builtin:digits", progress=False)
    project.split()
    project.train(progress=False)
    imp = project.evaluate("val").report["importance"]
    assert imp["method"].startswith(f"occlusion of a {GRID}x{GRID} grid")
    assert imp["n"] == MAX_FORWARDS["image"] // (GRID * GRID)  # a seeded subsample
    cells = {f"r{i}c{j}" for i in range(GRID) for j in range(GRID)}
    assert {e["name"] for e in imp["features"]} == cells
    drops = [e["drop"] for e in imp["features"]]
    assert drops == sorted(drops, reverse=True)
    for e in imp["features"]:
        assert e["low"] <= e["drop"] <= e["high"]
    assert drops[0] > 0 and sum(drops) > 0  # taking regions away hurts (8x8: 2x2 pixel cells)
    assert "falls most without" in imp["summary"]


def test_word_ablation_of_reviews(tmp_path):
    source = review_sample(tmp_path, 240, seed=2)
    project = trained(
        tmp_path / "text", task="text-classification", source=source, config=TINY_TRANSFORMER
    )
    imp = project.evaluate("val").report["importance"]
    assert imp["modality"] == "text" and len(imp["words"]) == TOP_WORDS
    assert {e["name"] for e in imp["features"]} == {repr(w) for w in imp["words"]}
    assert "the" in imp["words"]  # the word in most reviews
    for e in imp["features"]:
        assert e["low"] <= e["drop"] <= e["high"]
