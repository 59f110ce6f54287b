"""Issue 14 (hardening), the ledger's part: every run records its pid and host (older ledgers
are migrated), a run whose process is gone shows as "interrupted" in `dlw status` (train
offers --resume), SIGTERM and SIGINT mark the run failed, promote and rollback are ledger
steps, git never starts a repository's fsmonitor hook, and a PDF's temporary file is unique."""

from __future__ import annotations

import json
import signal
import socket
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from dlworkflow.ledger import Ledger, git_commit
from dlworkflow.status import INTERRUPTED

# the runs table as dlworkflow wrote it before pids and hosts were recorded
OLD_RUNS = """
CREATE TABLE runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT, step TEXT NOT NULL, status TEXT NOT NULL,
    started TEXT NOT NULL, ended TEXT, config_hash TEXT NOT NULL, inputs TEXT NOT NULL,
    outputs TEXT NOT NULL DEFAULT '{}', summary TEXT NOT NULL DEFAULT '{}', env TEXT NOT NULL,
    seed INTEGER, git_commit TEXT, message TEXT
);
INSERT INTO runs (step, status, started, config_hash, inputs, env)
    VALUES ('ingest', 'done', '2025-01-01T00:00:00', 'h', '{}', '{}');
"""


def _dead_pid() -> int:
    """The pid of a process that has ended (reaped), so it exists no more."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def _insert_running(ledger: Ledger, step: str, pid: int, host: str | None = None) -> int:
    run_id = ledger.start(step, config_hash="h", inputs={}, seed=0)
    with sqlite3.connect(ledger.path) as conn:
        conn.execute(
            "UPDATE runs SET pid=?, host=? WHERE id=?", (pid, host or socket.gethostname(), run_id)
        )
    return run_id


def test_each_run_records_its_pid_and_host(project):
    import os

    with project.step("define") as run:
        pass
    record = project.ledger.latest("define")
    assert record.id == run.run_id
    assert record.pid == os.getpid() and record.host == socket.gethostname()


def test_an_older_ledger_gets_the_pid_and_host_columns(tmp_path):
    path = tmp_path / "ledger.sqlite"
    with sqlite3.connect(path) as conn:
        conn.executescript(OLD_RUNS)
    ledger = Ledger(path)
    old = ledger.latest("ingest")
    assert old.pid is None and old.host is None  # the old row is kept, without a pid
    new = ledger.start("split", config_hash="h", inputs={}, seed=0)
    assert ledger.latest("split", status="running").pid is not None
    assert [r.id for r in ledger.history()] == [old.id, new]
    Ledger(path).history()  # opening it again: the columns exist, nothing to add


def test_a_run_whose_process_is_gone_is_interrupted_not_done(split_project):
    done = split_project.status()
    assert done.state_of("split") == "done"
    run_id = _insert_running(split_project.ledger, "split", _dead_pid())
    report = split_project.status()
    assert report.state_of("split") == INTERRUPTED
    step = next(s for s in report.steps if s.ledger_step == "split")
    assert f"run {run_id}" in step.detail and "without finishing" in step.detail
    assert report.next_command == "dlw explore"  # explore has not run; split after it
    assert split_project.status().to_json()["steps"][3]["state"] == INTERRUPTED


def test_a_running_run_of_a_live_process_or_another_machine_is_not_interrupted(split_project):
    import os

    _insert_running(split_project.ledger, "split", os.getpid())
    assert split_project.status().state_of("split") == "running"
    _insert_running(split_project.ledger, "split", _dead_pid(), host="elsewhere.example")
    assert split_project.status().state_of("split") == "running"  # cannot tell: not ours


def test_an_interrupted_train_run_offers_resume(project):
    run_id = _insert_running(project.ledger, "train", _dead_pid())
    checkpoint = project.paths.train_dir / f"run-{run_id}" / "checkpoint"
    checkpoint.mkdir(parents=True)
    (checkpoint / "state.json").write_text(
        json.dumps({"epoch": 2, "meta": {"ledger_run_id": run_id}}), encoding="utf-8"
    )
    report = project.status()
    assert report.state_of("train") == INTERRUPTED
    assert report.next_command == "dlw train --resume   (continue after epoch 2)"


_KILLED = """
import os, signal, sys
from dlworkflow.project import Project
project = Project.load(sys.argv[1])
with project.step("split") as run:
    os.kill(os.getpid(), getattr(signal, sys.argv[2]))
    import time; time.sleep(30)  # never reached: the signal ends the step
"""


@pytest.mark.parametrize("signame", ["SIGTERM", "SIGINT"])
def test_sigterm_and_sigint_mark_the_run_failed(project, tmp_path, signame):
    script = tmp_path / "killed.py"
    script.write_text(textwrap.dedent(_KILLED), encoding="utf-8")
    done = subprocess.run(
        [sys.executable, str(script), str(project.root), signame],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0
    record = project.ledger.latest("split", status=None)
    assert record.status == "failed", done.stderr[-2000:]
    assert ("Terminated" if signame == "SIGTERM" else "KeyboardInterrupt") in record.message
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # this process: untouched


def test_sigterm_handler_is_restored_after_a_step(project):
    before = signal.getsignal(signal.SIGTERM)
    with project.step("define"):
        assert signal.getsignal(signal.SIGTERM) is not before  # raises Terminated meanwhile
    assert signal.getsignal(signal.SIGTERM) is before


def _commands(monkeypatch, module) -> list[list[str]]:
    seen: list[list[str]] = []

    def fake_run(args, **kwargs):
        seen.append(list(args))
        return subprocess.CompletedProcess(args, 0, stdout="abc\n", stderr="")

    monkeypatch.setattr(module.subprocess, "run", fake_run)
    return seen


def test_git_is_called_without_the_fsmonitor_hook(monkeypatch, tmp_path):
    import dlworkflow.ledger as ledger_module

    seen = _commands(monkeypatch, ledger_module)
    assert git_commit(tmp_path) == "abc-dirty"
    assert len(seen) == 2
    for args in seen:
        assert args[:3] == ["git", "-c", "core.fsmonitor=false"], args


def test_audit_evidence_calls_git_without_the_fsmonitor_hook(monkeypatch, project):
    import dlworkflow.report.audit.evidence as evidence_module

    seen = _commands(monkeypatch, evidence_module)
    evidence = evidence_module.Evidence(project)
    assert evidence.git_tracked("dlworkflow.yaml")
    assert seen and seen[0][:3] == ["git", "-c", "core.fsmonitor=false"], seen


def test_promote_and_rollback_are_ledger_steps(monkeypatch, project):
    from dlworkflow.runtime import versions as V

    for version in (1, 2):  # two exported versions: only metadata.json matters here
        folder = V.version_folder(project.root, version)
        folder.mkdir(parents=True)
        (folder / V.METADATA_FILE).write_text(
            json.dumps({"version": version, "verdict": "PASS", "model": "m", "created": "x"}),
            encoding="utf-8",
        )
    monkeypatch.setattr("getpass.getuser", lambda: "alice")
    project.promote(1)
    project.promote(2)
    assert project.rollback().champion == 1
    promotes = project.ledger.history("promote")
    assert [(r.outputs["from_version"], r.outputs["to_version"]) for r in promotes] == [
        (None, 1),
        (1, 2),
    ]
    rollback = project.ledger.latest("rollback")
    assert rollback.outputs["from_version"] == 2 and rollback.outputs["to_version"] == 1
    assert rollback.outputs["by"] == "alice" and rollback.outputs["at"]
    assert rollback.pid is not None and rollback.ended
    report = project.status()  # the step table still has its nine steps
    assert [s.number for s in report.steps] == list(range(1, 10))


def test_the_pdf_temporary_file_has_a_unique_name(monkeypatch, tmp_path):
    from dlworkflow.report import pdf

    html = tmp_path / "report.html"
    html.write_text("<p>x</p>", encoding="utf-8")
    target = tmp_path / "out" / "report.pdf"
    target.parent.mkdir()
    fixed = target.with_name(f".{target.name}.tmp")
    fixed.write_bytes(b"another report's half-written PDF")
    printed: list[Path] = []

    def fake_chromium(args, **kwargs):
        out = Path(next(a for a in args if a.startswith("--print-to-pdf=")).split("=", 1)[1])
        printed.append(out)
        out.write_bytes(b"%PDF-1.4 mine")
        return subprocess.CompletedProcess(args, 0, stdout="", stderr="")

    monkeypatch.setattr(pdf.subprocess, "run", fake_chromium)
    assert pdf.render_pdf(html, target, browser="chromium") is None
    assert printed[0] != fixed and printed[0].parent == target.parent
    assert fixed.read_bytes() == b"another report's half-written PDF"  # untouched
    assert target.read_bytes() == b"%PDF-1.4 mine"
    assert sorted(p.name for p in target.parent.iterdir()) == [fixed.name, "report.pdf"]
