"""The judges of slices, inclusion and features (judges_evaluate.py) on real projects: digits
(images) and breast cancer (a table with a planted noise feature and a size band marked as
sensitive). Each earns its points from what `dlw evaluate` records, cites the numbers, and
names the command or key that earns what is missing."""

from __future__ import annotations

import numpy as np
import pytest

from dlworkflow.project import Project
from dlworkflow.report.audit import audit
from dlworkflow.report.audit.evidence import Evidence
from dlworkflow.report.audit.judges_evaluate import NEXT_SENSITIVE, slice_quality
from modality_data import mixed_cancer_table
from modality_data import trained_project as trained

IDS = ("slice_quality", "inclusion_tested", "features_beneficial")


def judged(project: Project) -> dict:
    return {t.test.id: t for t in audit(Project.load(project.root)).tests if t.test.id in IDS}


@pytest.fixture(scope="module")
def digits(tmp_path_factory: pytest.TempPathFactory) -> Project:
    project = Project.init(tmp_path_factory.mktemp("judges") / "digits")
    project.define(metric="accuracy", target=0.5)
    project.update_config(
        {
            "model.name": "mlp",
            "train.epochs": 1,
            "train.learning_rate": 0.002,
            "train.threads": 2,
            "evaluate.bootstrap_samples": 200,
        }
    )
    project.ingest("builtin:digits", progress=False)
    project.split()
    project.train(progress=False)
    return project


def test_nothing_is_earned_before_an_evaluation(digits: Project):
    for t in judged(digits).values():
        assert t.points == 0 and "dlw evaluate" in (t.next_step or ""), t.test.id


def test_images_earn_slices_and_features_from_the_evaluation(digits: Project):
    digits.evaluate("val")
    j = judged(digits)
    s = j["slice_quality"]
    # before: 0, "no data slices are evaluated" (evaluate.slices empty)
    assert s.points == 1 and "brightness" in s.evidence and "automatically" in s.evidence
    i = j["inclusion_tested"]
    assert i.points == 0.5 and "data.sensitive_columns is empty" in i.evidence
    assert i.next_step.startswith(NEXT_SENSITIVE)
    f = j["features_beneficial"]
    assert f.points == 1 and f.source == "evidence"
    assert "occlusion" in f.evidence and "falls most without r" in f.evidence


def test_a_slice_short_of_the_target_fails_with_its_interval_cited(digits: Project):
    import json

    report = json.loads((digits.root / "reports/evaluate/val/metrics.json").read_text())
    slices = [s for e in report["slices"] for s in e["slices"] if s["low"] is not None]
    lowest = min(slices, key=lambda s: s["metric"])
    cited = f"({lowest['metric']:.3f} [{lowest['low']:.3f}, {lowest['high']:.3f}])"
    # its value misses the target, its interval reaches it: too few samples to tell
    digits.update_config({"problem.target": lowest["metric"] + 1e-6})  # judged as the test is
    try:
        s = slice_quality(Evidence(Project.load(digits.root)))
        assert s.points == 0.5 and not s.failed and "interval still reaches it" in s.evidence
        assert cited in s.evidence and "dlw retrain --data" in (s.next_step or "")
        # the whole interval below the target: shown to fall short
        digits.update_config({"problem.target": min(lowest["high"] + 1e-6, 1.0)})
        s = slice_quality(Evidence(Project.load(digits.root)))
        assert s.points == 0 and s.failed and "below the target" in s.evidence
        assert cited in s.evidence and "dlw retrain --data" in (s.next_step or "")
    finally:
        digits.update_config({"problem.target": 0.5})


def test_a_stale_evaluation_earns_nothing(digits: Project):
    digits.evaluate("val")
    assert judged(digits)["features_beneficial"].points == 1
    digits.update_config({"train.epochs": 2})  # same seed and settings: the same weights
    digits.train(progress=False)  # a new model: the recorded evaluation is of the old one
    j = judged(digits)
    assert j["features_beneficial"].points == 0 and j["slice_quality"].points == 0


@pytest.fixture(scope="module")
def cancer(tmp_path_factory: pytest.TempPathFactory) -> Project:
    folder = tmp_path_factory.mktemp("judges")
    source, table = mixed_cancer_table(folder, missing=False)
    table = table[["mean radius", "worst concave points", "size band", "label"]].copy()
    table.insert(0, "noise", np.random.default_rng(1).normal(size=len(table)))
    table.insert(0, "site", "clinic A")  # one value: it cannot help
    table.to_parquet(source, index=False)
    return trained(
        folder / "table",
        task="tabular-classification",
        source=source,
        config={
            "model.name": "mlp",
            "model.params": {"hidden": [16]},
            "train.epochs": 30,
            "train.learning_rate": 0.01,
            "evaluate.bootstrap_samples": 300,
            "evaluate.slice_min_samples": 10,
            "data.sensitive_columns": ["size band"],
        },
    )


def test_tables_name_the_features_to_drop_and_the_gap_between_groups(cancer: Project):
    report = cancer.evaluate("val").report
    j = judged(cancer)
    f = j["features_beneficial"]
    assert "site" in report["importance"]["flagged"]
    assert f.points == 0.5 and "site" in f.evidence and "permutation" in f.evidence
    assert "data.feature_columns" in f.next_step and "site" in f.next_step
    i = j["inclusion_tested"]
    (entry,) = report["inclusion"]
    gap = entry["gap"]
    assert i.points == 1 and "size band" in i.evidence
    assert f"largest gap {gap['value']:.3f} [{gap['low']:.3f}, {gap['high']:.3f}]" in i.evidence
