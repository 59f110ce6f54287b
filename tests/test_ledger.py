"""The ledger: step records (config hash, inputs, outputs, env, seed, git) and test-set reads."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime
from importlib import metadata

import numpy as np
import pytest

from dlworkflow.ledger import Ledger, environment, git_commit
from dlworkflow.project import Project


def _git(root, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.org",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.org",
    }
    out = subprocess.run(
        ["git", "-C", str(root), *args], capture_output=True, text=True, env=env, check=True
    )
    return out.stdout.strip()


def _in_git_repo(path) -> bool:
    result = subprocess.run(["git", "-C", str(path), "rev-parse", "HEAD"], capture_output=True)
    return result.returncode == 0


def test_step_records_config_hash_inputs_outputs_env_seed_and_status(project):
    project.update_config({"seed": 7, "problem.primary_metric": "accuracy", "problem.target": 0.5})
    with project.step("split", inputs={"ingest": "abc123"}) as run:
        run.outputs = {"hash": "out-hash", "seal": "seal-hash"}
        run.summary = {"headline": "h", "counts": {"train": 3}}
    record = project.ledger.latest("split")
    assert record is not None and record.id == run.run_id
    assert record.status == "done"
    assert record.config_hash == project.config.section_hash("split", "seed")
    assert record.inputs == {"ingest": "abc123"}
    assert record.outputs == {"hash": "out-hash", "seal": "seal-hash"}
    assert record.output_hash == "out-hash"
    assert record.summary == {"headline": "h", "counts": {"train": 3}}
    assert record.seed == 7
    assert record.message is None
    packages = record.env["packages"]
    assert packages["numpy"] == np.__version__
    assert packages["pydantic"] == metadata.version("pydantic")
    assert packages["dlworkflow"] == metadata.version("dlworkflow")
    assert record.env["python"] == sys.version.split()[0]
    started = datetime.fromisoformat(record.started)
    ended = datetime.fromisoformat(record.ended)
    assert started <= ended


def test_failed_step_is_recorded_as_failed_with_its_message(project):
    with pytest.raises(ValueError, match="boom"), project.step("ingest") as run:
        run.outputs = {"partial": 1}
        raise ValueError("boom: the disk is full")
    assert project.ledger.latest("ingest") is None  # no done run
    failed = project.ledger.latest("ingest", status=None)
    assert failed.status == "failed"
    assert failed.message == "ValueError: boom: the disk is full"
    assert failed.outputs == {"partial": 1}
    assert failed.ended is not None
    assert project.upstream_hash("ingest") is None


def test_latest_done_run_survives_a_later_failure(project):
    with project.step("ingest") as run:
        run.outputs = {"hash": "v1"}
    with pytest.raises(RuntimeError), project.step("ingest"):
        raise RuntimeError("later failure")
    assert project.ledger.latest("ingest").output_hash == "v1"
    assert project.ledger.latest("ingest", status=None).status == "failed"
    assert [r.status for r in project.ledger.history("ingest")] == ["done", "failed"]
    assert project.upstream_hash("ingest") == "v1"


def test_git_commit_is_none_outside_a_repository(tmp_path):
    if _in_git_repo(tmp_path):
        pytest.skip("the temporary folder is itself inside a git repository")
    project = Project.init(tmp_path / "p")
    with project.step("ingest"):
        pass
    assert project.ledger.latest("ingest").git_commit is None
    assert git_commit(tmp_path) is None


def test_git_commit_is_recorded_inside_a_repository(tmp_path):
    root = tmp_path / "repo"
    root.mkdir()
    _git(root, "init", "-q")
    project = Project.init(root / "proj")
    _git(root, "add", "-A")
    _git(root, "commit", "-q", "-m", "init")
    head = _git(root, "rev-parse", "HEAD")
    assert len(head) == 40
    with project.step("ingest"):
        pass
    assert project.ledger.latest("ingest").git_commit == head  # .dlw is git-ignored: clean
    project.update_config({"train.epochs": 3})  # a tracked file changes
    with project.step("ingest"):
        pass
    assert project.ledger.latest("ingest").git_commit == head + "-dirty"


def test_test_reads_are_logged_and_filtered_by_seal(tmp_path):
    ledger = Ledger(tmp_path / "state" / "ledger.sqlite")
    assert ledger.test_reads() == []
    first = ledger.log_test_read(
        run_id=3, step="test", purpose="verdict", n_samples=10, seal_hash="seal-a"
    )
    ledger.log_test_read(
        run_id=4, step="test", purpose="verdict again", n_samples=10, seal_hash="seal-a"
    )
    ledger.log_test_read(
        run_id=5, step="test", purpose="after resplit", n_samples=12, seal_hash="seal-b"
    )
    reads = ledger.test_reads()
    assert [r.purpose for r in reads] == ["verdict", "verdict again", "after resplit"]
    assert reads[0].id == first and reads[0].run_id == 3 and reads[0].n_samples == 10
    assert len(ledger.test_reads("seal-a")) == 2
    assert [r.n_samples for r in ledger.test_reads("seal-b")] == [12]
    assert ledger.test_reads("seal-c") == []
    # a second Ledger on the same file sees the same records (it is on disk, not in memory)
    assert len(Ledger(tmp_path / "state" / "ledger.sqlite").test_reads()) == 3


def test_history_and_latest_by_step(tmp_path):
    ledger = Ledger(tmp_path / "ledger.sqlite")
    a = ledger.start("ingest", config_hash="c1", inputs={}, seed=1)
    ledger.finish(a, status="done", outputs={"hash": "h1"})
    b = ledger.start("split", config_hash="c2", inputs={"ingest": "h1"}, seed=1)
    ledger.finish(b, status="done", outputs={"hash": "h2"})
    c = ledger.start("ingest", config_hash="c3", inputs={}, seed=2)
    assert ledger.latest("ingest").id == a  # c is still running
    assert ledger.latest("ingest", status="running").id == c
    ledger.finish(c, status="done", outputs={"hash": "h3"})
    assert ledger.latest("ingest").output_hash == "h3"
    assert [r.id for r in ledger.history()] == [a, b, c]
    assert [r.id for r in ledger.history("ingest")] == [a, c]
    assert ledger.latest("test") is None


def test_environment_lists_package_versions():
    env = environment()
    assert set(env) == {"python", "platform", "packages"}
    assert env["packages"]["numpy"] == np.__version__
    assert env["packages"]["Pillow"] == metadata.version("Pillow")
