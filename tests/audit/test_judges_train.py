"""Issue 15, items 6 and 7: the judges of judges_train.py on a real project (iris, trained for
2 epochs, inside a git repository). model_specs_reviewed: 1 with the spec committed and clean
at training and a review note linked, 0.5 without the note, 0 with the git commands when the
spec was not committed; numerically_stable: 1 when training checked every step and monitor
(if it ran on the champion) saw no non-finite outputs, failed when it did."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from dlworkflow.errors import TrainError
from dlworkflow.project import Project
from dlworkflow.report.audit.evidence import Evidence
from dlworkflow.report.audit.judges_train import model_specs_reviewed, numerically_stable
from dlworkflow.train import train
from system_deps import missing_system_package

REVIEW = "https://git.example.org/team/iris/-/merge_requests/12"


def git(root: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.org", "-C", str(root), *args],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


def iris_project(root: Path) -> Project:
    from sklearn.datasets import load_iris

    iris = load_iris(as_frame=True)
    frame = iris.frame.rename(columns=lambda c: c.replace(" (cm)", "").replace(" ", "_"))
    frame["label"] = iris.target_names[frame.pop("target")]
    root.mkdir(parents=True)
    frame.to_csv(root / "iris.csv", index=False)
    project = Project.init(root / "proj", task="tabular-classification")
    project.define(metric="accuracy", target=0.9)
    project.ingest(str(root / "iris.csv"), progress=False)
    project.split()
    project.update_config({"train.epochs": 2, "train.threads": 2})
    return project


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    if shutil.which("git") is None:
        missing_system_package("git")
    project = iris_project(tmp_path_factory.mktemp("judges-train") / "iris")
    git(project.root, "init", "-q")
    git(project.root, "add", "dlworkflow.yaml")
    git(project.root, "commit", "-q", "--no-verify", "-m", "model spec")
    train(project, progress=False)
    return project


def test_a_committed_clean_spec_without_a_review_note_scores_half(project: Project):
    head = git(project.root, "rev-parse", "HEAD")
    record = project.ledger.latest("train")
    assert record.summary["spec"] == {
        "file": "dlworkflow.yaml",
        "state": "committed",
        "commit": head,
        "clean": True,
    }
    judged = model_specs_reviewed(Evidence(project))
    assert judged.points == 0.5
    assert f"committed at {head[:12]}" in judged.evidence and f"run {record.id}" in judged.evidence
    assert "audit.model_specs_reviewed" in judged.next_step and "note" in judged.next_step


def test_a_linked_review_note_earns_the_point(project: Project):
    project.update_config({"audit.model_specs_reviewed": {"done": "manual", "note": REVIEW}})
    try:
        judged = model_specs_reviewed(Evidence(project))
    finally:
        project.update_config({"audit.model_specs_reviewed": None})
    assert judged.points == 1.0 and REVIEW in judged.evidence
    assert git(project.root, "rev-parse", "HEAD")[:12] in judged.evidence


def test_every_step_checked_earns_numerically_stable(project: Project):
    judged = numerically_stable(Evidence(project))
    meta = Evidence(project).trained_meta
    steps = meta["numerics"]["steps_checked"]
    assert judged.points == 1.0 and not judged.failed
    assert f"each of its {steps} optimizer steps (2 epochs" in judged.evidence
    assert "largest gradient norm" in judged.evidence
    assert "`dlw monitor` has not checked the champion's outputs yet" in judged.evidence


def _monitored(project: Project, *, alert: bool) -> Evidence:
    """A monitor ledger record of champion v1 with its non_finite_outputs check (as
    `dlw monitor` writes it), and an Evidence that sees v1 as the champion."""
    ledger = project.ledger
    run = ledger.start("monitor", config_hash="x", inputs={"champion": "1"}, seed=None)
    check = {"name": "non_finite_outputs", "group": "numerics", "effect": 0.25, "alert": alert}
    ledger.finish(
        run,
        status="done",
        outputs={"checks": [check]},
        summary={"n": 40, "headline": "ALERT" if alert else "OK"},
    )
    ev = Evidence(project)
    ev.__dict__["champion"] = {"version": 1}
    return ev


def test_monitor_without_non_finite_outputs_is_cited(project: Project):
    judged = numerically_stable(_monitored(project, alert=False))
    assert judged.points == 1.0
    assert "found no non-finite outputs of v1 (40 predictions" in judged.evidence


def test_non_finite_outputs_in_monitor_fail_the_test(project: Project):
    judged = numerically_stable(_monitored(project, alert=True))
    assert judged.points == 0 and judged.failed
    assert "non-finite outputs of the champion v1" in judged.evidence
    assert "`dlw retrain`" in judged.next_step


def test_a_stopped_run_is_cited_and_the_model_in_place_still_judged(project: Project):
    project.update_config({"train.optimizer": "sgd", "train.learning_rate": 1e30})
    try:
        with pytest.raises(TrainError):
            train(project, progress=False)
    finally:
        git(project.root, "checkout", "--", "dlworkflow.yaml")
    judged = numerically_stable(Evidence(project))
    assert judged.points == 1.0 and "the check stopped 1 run(s) (ledger run" in judged.evidence


def test_an_uncommitted_model_spec_scores_zero_with_the_commands(tmp_path: Path):
    if shutil.which("git") is None:
        missing_system_package("git")
    project = iris_project(tmp_path / "iris")
    git(project.root, "init", "-q")
    git(project.root, "add", "dlworkflow.yaml")
    git(project.root, "commit", "-q", "--no-verify", "-m", "model spec")
    project.update_config({"train.learning_rate": 0.01})  # changed, not committed
    train(project, progress=False)
    spec = project.ledger.latest("train").summary["spec"]
    assert spec["state"] == "modified" and spec["model_spec_changed"] == ["train.learning_rate"]
    judged = model_specs_reviewed(Evidence(project))
    assert judged.points == 0 and "changes to the model spec" in judged.evidence
    assert "train.learning_rate" in judged.evidence
    assert "git commit -m 'model spec' dlworkflow.yaml" in judged.next_step
