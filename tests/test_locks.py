"""Issue 14 (hardening): one writer at a time. Every writing step holds the project's lock
(.dlw/locks/project.lock); a second writer, in another process, gets exit code 75 naming the
holder's command, pid and start time; readers do not wait; the lock is re-entrant within a
process and does not clash with monitor's and retrain's own locks."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time

import pytest
from typer.testing import CliRunner

from dlworkflow.cli import app
from dlworkflow.errors import BusyError
from dlworkflow.fileio import run_lock
from dlworkflow.steps import WRITERS

# holds the project lock as `dlw train` would, until its stdin closes
_HOLDER = """
import sys
from pathlib import Path
from dlworkflow.fileio import run_lock
with run_lock(Path(sys.argv[1]) / ".dlw" / "locks" / "project.lock", what="dlw train"):
    print("held", flush=True)
    sys.stdin.read()
"""


def _start_holder(project, tmp_path):
    """A process that takes `project`'s write lock and prints "held"."""
    script = tmp_path / "holder.py"
    script.write_text(textwrap.dedent(_HOLDER), encoding="utf-8")
    return subprocess.Popen(
        [sys.executable, str(script), str(project.root)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )


@pytest.fixture
def held(project, tmp_path):
    """Another process holding `project`'s write lock; yields its pid."""
    child = _start_holder(project, tmp_path)
    try:
        assert child.stdout.readline().strip() == "held"
        yield child.pid
    finally:
        child.stdin.close()
        child.wait(timeout=60)


def dlw(*args):
    return CliRunner().invoke(app, [str(a) for a in args], env={"COLUMNS": "300", "NO_COLOR": "1"})


def test_the_writing_steps_are_the_issues_list():
    assert {
        "ingest",
        "split",
        "train",
        "test",
        "export",
        "promote",
        "rollback",
        "retrain",
        "tune",
        "monitor",
    } == WRITERS


def test_a_second_writer_gets_exit_75_naming_the_holder(project, held, digits_folder):
    project.update_config({"data.source": str(digits_folder(3))})
    started = time.monotonic()
    result = dlw("ingest", "-p", project.root)
    assert time.monotonic() - started < 30  # refused at once, not after a wait
    assert result.exit_code == 75, result.output
    text = " ".join(result.output.split())
    assert "`dlw train`" in text and f"pid {held}" in text and "started 20" in text
    assert project.ledger.history("ingest") == []  # nothing ran, nothing recorded
    with pytest.raises(BusyError) as busy:
        project.split()
    assert busy.value.exit_code == 75 and f"pid {held}" in str(busy.value)
    with pytest.raises(BusyError):
        project.promote(1)


def test_readers_do_not_wait_for_a_writer(project, held):
    started = time.monotonic()
    assert dlw("status", "-p", project.root).exit_code == 0
    assert dlw("versions", "-p", project.root).exit_code == 0
    with project.step("define"):  # not a writer of data or models: no lock
        pass
    assert time.monotonic() - started < 30


def test_the_lock_is_free_again_after_the_holder_ends(project, tmp_path, digits_folder):
    project.update_config({"data.source": str(digits_folder(3))})
    child = _start_holder(project, tmp_path)
    assert child.stdout.readline().strip() == "held"
    child.kill()  # killed: the kernel drops its lock
    child.wait(timeout=60)
    assert dlw("ingest", "-p", project.root).exit_code == 0


def test_the_lock_is_reentrant_in_one_process_and_beside_the_step_locks(project):
    locks = project.paths.state / "locks"
    with project.write_lock("dlw retrain"), project.step("split") as outer:
        assert outer.run_id
        # monitor's and retrain's own locks are other files: no clash in one process
        with run_lock(locks / "monitor.lock", what="dlw monitor"):
            view = project.with_overrides({"seed": 3})  # a tuning trial's view
            with view.write_lock("dlw tune"):
                pass
    assert project.ledger.latest("split").id == outer.run_id
    assert os.environ.get("DLW_PROJECT_LOCK_TOKEN") is None  # released, env restored


def test_a_child_process_of_the_holder_shares_its_lock(project, tmp_path):
    """`dlw train --devices N` starts its ranks as processes: they write under its lock."""
    code = (
        "import sys; from dlworkflow.project import Project; "
        "p = Project.load(sys.argv[1]); "
        'exec(\'with p.write_lock("rank"): print("ok")\')'
    )
    with project.write_lock("dlw train"):
        shared = subprocess.run(
            [sys.executable, "-c", code, str(project.root)], capture_output=True, text=True
        )
        env = {k: v for k, v in os.environ.items() if k != "DLW_PROJECT_LOCK_TOKEN"}
        stranger = subprocess.run(
            [sys.executable, "-c", code, str(project.root)],
            capture_output=True,
            text=True,
            env=env,
        )
    assert shared.returncode == 0 and shared.stdout.strip() == "ok", shared.stderr[-1500:]
    assert stranger.returncode != 0 and "BusyError" in stranger.stderr
