"""The full report on a table (breast cancer, real): the simple model on the table encoding,
slices by a feature, and the confident mistakes as a table of rows."""

from __future__ import annotations

import csv

import pytest

from dlworkflow.project import Project


def test_tabular_report_slices_by_a_feature_and_lists_mistakes_as_rows(tmp_path):
    from dlworkflow.datasets.breast_cancer import load_table

    table = load_table()
    source = tmp_path / "cancer.parquet"
    table.to_parquet(source, index=False)
    project = Project.init(tmp_path / "proj", task="tabular-classification")
    project.define(metric="auroc", target=0.9)
    project.update_config(
        {
            "model.name": "mlp",
            "model.params": {"hidden": [16]},
            "train.epochs": 1,
            "train.learning_rate": 1e-4,
            "train.threads": 2,
            "evaluate.slices": ["mean radius"],
            "evaluate.slice_min_samples": 10,
        }
    )
    project.ingest(str(source))
    project.split()
    project.train(progress=False)
    result = project.evaluate()
    report = result.report
    assert report["modality"] == "tabular" and report["primary_metric"] == "auroc"

    b = report["baselines"]
    assert b["simple"]["model"] == "logistic regression on the table encoding"
    assert b["simple"]["value"] > 0.95  # these features separate the classes almost linearly
    assert b["majority"]["value"] == 0.5  # constant scores: AUROC one half
    assert b["simple_as_good"] == (b["difference"]["low"] <= 0)

    (entry,) = report["slices"]
    assert entry["column"] == "mean radius" and entry["by"] == "quartile"
    assert sum(s["n"] for s in entry["slices"]) == report["n"]
    assert [s["value"][0] for s in entry["slices"]] == ["[", "(", "(", "("]

    mistakes = report["mistakes"]
    assert mistakes and "mean radius" in mistakes[0]["features"]
    path = project.root / report["figures"]["mistakes_table"]
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == len(mistakes)
    assert rows[0]["sample_id"] == mistakes[0]["sample_id"]
    assert float(rows[0]["mean radius"]) == pytest.approx(mistakes[0]["features"]["mean radius"])
    assert rows[0]["true"] in set(table["label"].astype(str))
    assert rows[0]["true"] != rows[0]["predicted"]
