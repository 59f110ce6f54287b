"""`dlw retrain` measures how stale the champion is: on the addition's sealed fresh slice
(samples no model trained on) it sets the champion's metric, with its interval, beside its
test estimate and records the decay with a MOVER interval, per addition. Real data: a
champion trained on 700 sklearn digits (16x16 PNG folders); 400 other digits arrive
inverted (a new scanner), so the champion decays far below its test estimate there."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import dlworkflow.report.audit  # noqa: F401  (registers the judges)
from dlworkflow.monitor.retrain import retrain
from dlworkflow.project import Project
from dlworkflow.runtime import versions as V
from dlworkflow.store import read_split_info

CONFIG = {
    "model.params": {"channels": [8, 16], "convs_per_block": 1},
    "train.epochs": 5,
    "train.batch_size": 32,
    "train.learning_rate": 0.01,
    "train.threads": 2,
    "problem.primary_metric": "accuracy",
    "problem.target": 0.5,
    "evaluate.bootstrap_samples": 200,
    "evaluate.baselines": False,
    "retrain.epochs": 1,
    "retrain.warm_start": True,
}


def digit_folder(folder: Path, lo: int, hi: int, *, inverted: bool) -> Path:
    from PIL import Image
    from sklearn.datasets import load_digits

    data = load_digits()
    images = (data.images[lo:hi] * (255 / 16)).round().astype(np.uint8)
    images = images.repeat(2, axis=1).repeat(2, axis=2)
    for i, (image, label) in enumerate(zip(images, data.target[lo:hi])):
        path = folder / str(label) / f"d-{lo + i:04d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(255 - image if inverted else image, mode="L").save(path)
    return folder


@pytest.fixture(scope="module")
def retrained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Project, object]:
    root = tmp_path_factory.mktemp("staleness")
    project = Project.init(root / "proj", name="staleness")
    project.update_config(CONFIG)
    project.define(metric="accuracy", target=0.5, objective="read digits")
    project.ingest(str(digit_folder(root / "main", 0, 700, inverted=False)), progress=False)
    project.split()
    project.train(progress=False)
    assert project.test().verdict.passed
    project.export()
    result = retrain(project, str(digit_folder(root / "fresh", 700, 1100, inverted=True)))
    return project, result


def test_retrain_records_the_champions_decay_on_the_fresh_slice(retrained):
    project, result = retrained
    record = project.ledger.latest("retrain").outputs["staleness"]
    meta = V.read_metadata(project.root, 1)
    assert record["addition"] == 1 and record["slice"] == "fresh1" and record["champion"] == 1
    assert record["n"] == read_split_info(project).slices["fresh1"]["n"] > 20
    assert record["metric"] == "accuracy" and record["higher_is_better"] is True
    assert record["test_value"] == pytest.approx(meta["test_value"], abs=1e-6)
    assert record["test_interval"] == pytest.approx(meta["test_interval"], abs=1e-6)
    lo, hi = record["fresh_interval"]
    assert lo <= record["fresh_value"] <= hi and record["fresh_value"] < 0.5
    assert record["decay"] == pytest.approx(meta["test_value"] - record["fresh_value"], abs=1e-5)
    d_lo, d_hi = record["decay_interval"]
    assert 0 < d_lo <= record["decay"] <= d_hi and record["significant"] is True
    # wider than either interval alone: both estimates are uncertain
    assert d_hi - d_lo > max(hi - lo, meta["test_interval"][1] - meta["test_interval"][0])
    assert result.staleness == record
    assert any(name == "staleness" and "decay" in text for name, text in result.rows())
    reads = [r for r in project.ledger.test_reads() if "staleness" in r.purpose]
    assert reads and reads[-1].purpose == "staleness of champion v1 [fresh1]"


def test_audit_and_report_show_the_decay(retrained):
    from dlworkflow.report.audit.evidence import Evidence
    from dlworkflow.report.audit.judge import JUDGES
    from dlworkflow.report.evidence import gather
    from dlworkflow.report.sections import maintenance

    project, _ = retrained
    record = project.ledger.latest("retrain").outputs["staleness"]
    judged = JUDGES["staleness_impact_known"](Evidence(project))
    assert judged.points == 1.0
    assert f"decay {record['decay']:+.4g}" in judged.evidence and "addition 1" in judged.evidence
    html = maintenance(gather(project, with_audit=False))
    assert "decay on fresh data" in html and f"{record['fresh_value']:.4g}" in html
