"""Data 6 ("new features can be added quickly") is judged from the ledger: the time from a
change to the data to the first released model that learned from it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from dlworkflow.project import Project
from dlworkflow.report.audit import audit


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return Project.init(tmp_path / "p", name="p")


def run(project: Project, step: str, inputs: dict[str, Any], **outputs: Any) -> None:
    ledger = project.ledger
    run_id = ledger.start(step, config_hash="c", inputs=inputs, seed=1)
    summary = {"n_samples": outputs.pop("n", 0), "additions": outputs.pop("additions", [])}
    ledger.finish(run_id, status="done", outputs=outputs, summary=summary)


def judged(project: Project):
    return next(t for t in audit(project, write=False).tests if t.test.id == "new_features_quickly")


def release(project: Project, data: str, tag: str, version: int, verdict: str = "PASS") -> None:
    run(project, "split", {"ingest": data}, hash=f"split-{tag}")
    run(project, "train", {"split": f"split-{tag}"}, hash=f"train-{tag}")
    run(project, "export", {"train": f"train-{tag}"}, verdict=verdict, version=version)


def test_the_time_from_a_data_change_to_its_release_is_measured(project: Project):
    assert judged(project).points == 0
    run(project, "ingest", {}, hash="data-1", n=5000)
    first = judged(project)
    assert first.points == 0 and "has not reached a released model" in first.evidence
    assert "`dlw run`" in first.next_step

    release(project, "data-1", "a", 1)
    first = judged(project)
    assert first.points == 0.5
    assert "the first version of the data (5,000 samples) reached released v1" in first.evidence
    assert "`dlw retrain --data SOURCE`" in first.next_step

    run(project, "ingest", {}, hash="data-2", n=6797, additions=["incoming/b"])
    waiting = judged(project)
    assert waiting.points == 0.5 and "has not reached a released model yet" in waiting.evidence

    release(project, "data-2", "b", 2, verdict="FAIL")  # a failed model is not a release
    assert judged(project).points == 0.5
    release(project, "data-2", "c", 3)
    run(project, "retrain", {"challenger": "3"}, outcome="promoted")
    done = judged(project)
    assert done.points == 1 and done.source == "evidence"
    assert (
        "the latest change to the data (6,797 samples, 1 added source(s)) reached released v3"
        in done.evidence
    )
    assert "by one command (`dlw retrain`: promoted)" in done.evidence
