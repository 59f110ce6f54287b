"""`dlw demo` and `dlw run` (dlworkflow/workflow.py): the time table, the exit code of a FAIL
verdict, and the end state. The whole MNIST demo is tests/test_end_to_end.py (slow)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dlworkflow import workflow
from dlworkflow.cli import app
from dlworkflow.demo_plans import demo_plan
from dlworkflow.project import Project
from dlworkflow.workflow import DEMO_TIMES, StepTimes

WIDE = {"COLUMNS": "200", "NO_COLOR": "1"}


def test_step_times_rows_add_up_to_the_total():
    times = StepTimes(
        steps=[("define", 0.2), ("train", 10.0), ("explore", 3.0), ("explore", 1.0)], total=15.0
    )
    assert times.other == pytest.approx(0.8)
    rows = dict(times.rows()[-2:])
    assert float(rows["other"]) == pytest.approx(0.8) and float(rows["total"]) == 15.0
    assert [name for name, _ in times.rows()] == [
        "define",
        "train",
        "explore",
        "explore",
        "other",
        "total",
    ]
    record = times.record()
    assert record["total"] == 15.0 and record["steps"][1] == ["train", 10.0]
    # a clock that ran longer than the steps never shows a negative rest
    assert StepTimes(steps=[("train", 2.0)], total=1.9).other == 0.0


def test_demo_exits_3_on_a_fail_verdict_and_ends_with_the_time_table(tmp_path: Path, monkeypatch):
    """The demo's own path on small real data (8x8 digits, 1 epoch) with a target no model
    reaches: the test says FAIL, nothing is exported or monitored, the report is written,
    no step is left stale, and the command exits 3 after printing the time per step."""
    mnist = demo_plan("image-classification")
    small = dataclasses.replace(
        mnist,
        write_source=lambda root: "builtin:digits",
        problem={**mnist.problem, "target": 0.9999},
        settings={**mnist.settings, "explore.backbone": "pixels", "evaluate.baselines": False},
    )
    monkeypatch.setattr(workflow, "demo_plan", lambda task: small)
    folder = tmp_path / "demo"
    result = CliRunner().invoke(app, ["demo", str(folder), "--epochs", "1"], env=WIDE)
    assert result.exit_code == 3, result.output[-3000:]
    assert "FAIL" in result.output
    assert not (folder / "models" / "champion.json").exists()  # a FAIL model is not deployed
    tail = result.output[result.output.rindex("time per step") :]
    for step in ("define", "ingest", "explore", "split", "train", "test", "report", "total"):
        assert step in tail, tail
    assert "export" not in tail and "monitor" not in tail
    times = json.loads((folder / DEMO_TIMES).read_text())
    assert [name for name, _ in times["steps"]] == [
        "define",
        "ingest",
        "explore",
        "split",
        "train",
        "test",
        "report",
    ]
    assert times["total"] >= sum(s for _, s in times["steps"]) > 0
    status = Project.load(folder).status()
    assert not [s.title for s in status.steps if s.state == "stale"]
    assert status.state_of("report") == "done" and status.state_of("monitor") == "not run"
