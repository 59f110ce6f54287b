"""`dlw ... --json` on a real tested and exported digits project (the session's `reported`
project, copied so that nothing here changes it; the tests take the copy through in order):
each command prints exactly one JSON document on stdout with the keys
docs/reference/json-output.md documents, holding the same values the step wrote to its own
files (metrics.json, audit.json, monitor.json) and the ledger; the exit codes are those of the
commands without --json."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dlworkflow.cli import app
from dlworkflow.config_schema import SCHEMA_LINE
from dlworkflow.errors import scrub
from dlworkflow.project import Project
from dlworkflow.steps import STEPS
from modality_data import helpers

WIDE = {"COLUMNS": "200", "NO_COLOR": "1"}
DOC = Path(__file__).resolve().parents[2] / "docs" / "reference" / "json-output.md"


def documented(command: str) -> set[str]:
    """The top-level keys of `dlw COMMAND --json` in docs/reference/json-output.md: the first
    column of the first table under the command's heading."""
    section = DOC.read_text(encoding="utf-8").split(f"## `dlw {command} --json`")[1]
    table = next(block for block in section.split("\n\n") if block.startswith("| key |"))
    firsts = [row.split("|")[1] for row in table.splitlines()[2:]]
    return {key for cell in firsts for key in re.findall(r"`([a-z_]+)`", cell)}


def dlw_json(*args: object, code: int = 0) -> dict:
    result = CliRunner().invoke(app, [*map(str, args), "--json"], env=WIDE)
    assert result.exit_code == code, (result.stdout, result.stderr)
    return json.loads(result.stdout)  # the whole of stdout: one document, nothing else


@pytest.fixture(scope="module")
def copy(reported, tmp_path_factory: pytest.TempPathFactory) -> Project:
    project, _ = reported
    target = tmp_path_factory.mktemp("json") / "digits"
    return Project.load(shutil.copytree(project.root, target, symlinks=True))


def test_status_and_versions(copy: Project):
    status = dlw_json("status", "-p", copy.root)
    assert (
        set(status)
        == documented("status")
        == {"project", "steps", "next_command", "all_done", "test_reads"}
    )
    assert [s["number"] for s in status["steps"]] == [s.number for s in STEPS]
    by_step = {s["ledger_step"]: s for s in status["steps"]}
    assert by_step["test"]["state"] == "done" and by_step["test"]["detail"].startswith("PASS")
    assert status["test_reads"] == 1
    versions = dlw_json("versions", "-p", copy.root)
    assert set(versions) == documented("versions") == {"action", "champion", "history", "versions"}
    assert (versions["action"], versions["champion"], versions["history"]) == ("versions", 1, [])
    [v1] = versions["versions"]
    assert v1 == json.loads((copy.paths.models / "v1" / "metadata.json").read_text())
    assert v1["version"] == 1 and v1["verdict"] == "PASS"


def test_evaluate_prints_the_metrics_json_it_wrote(copy: Project):
    copy.update_config({"evaluate.bootstrap_samples": 200})  # shapes, not precision
    out = dlw_json("evaluate", "-p", copy.root)
    assert (
        set(out)
        == documented("evaluate")
        == {"split", "model", "headline", "metrics_file", "report"}
    )
    assert (out["split"], out["model"]) == ("val", "small_cnn")
    assert out["report"] == json.loads(Path(out["metrics_file"]).read_text())
    value = out["report"]["metrics"]["balanced_accuracy"]["value"]
    assert 0 < value <= 1 and f"{value:.4f}" in out["headline"]
    assert copy.ledger.latest("evaluate").outputs["value"] == value


def test_test_fail_exits_3_and_prints_the_verdict(copy: Project):
    copy.update_config({"problem.target": 0.9999})
    out = dlw_json("test", "-p", copy.root, code=3)  # the second read of the test set
    assert (
        set(out)
        == documented("test")
        == {
            "verdict",
            "exit_code",
            "model",
            "n_samples",
            "accuracy",
            "companion_metric",
            "companion",
            "previous_reads",
            "seal_hash",
            "metrics_file",
            "report",
        }
    )
    verdict = out["verdict"]
    assert (verdict["verdict"], verdict["passed"], out["exit_code"]) == ("FAIL", False, 3)
    assert verdict["target"] == 0.9999 and verdict["metric"] == "balanced_accuracy"
    assert verdict["sentence"].startswith("FAIL: test balanced_accuracy")
    assert out["previous_reads"] == 1 and out["n_samples"] == out["report"]["n"]
    recorded = copy.ledger.latest("test").outputs
    assert (recorded["verdict"], recorded["value"]) == ("FAIL", verdict["value"])
    assert out["report"] == json.loads(Path(out["metrics_file"]).read_text())
    assert out["report"]["metrics"]["balanced_accuracy"]["value"] == verdict["value"]


def test_audit_prints_audit_json(copy: Project):
    out = dlw_json("audit", "-p", copy.root)
    assert set(out) == documented("audit")
    written = json.loads(Path(out["written"]).read_text())
    assert {k: v for k, v in out.items() if k not in ("weakest", "written")} == written
    assert len(out["tests"]) == 28 and out["final"] == min(out["sections"].values())
    assert out["weakest"] == [s for s, v in out["sections"].items() if v == out["final"]]


def test_monitor_alert_exits_4_and_prints_monitor_json(copy: Project, tmp_path: Path):
    data = helpers("conftest.py")
    for k in range(12):  # another source: white digits on black become black on white
        for label in range(10):
            data.write_png(
                tmp_path / "inverted" / f"{label}-{k}.png", 255 - data.digit_image(label, k)
            )
    out = dlw_json("monitor", "-p", copy.root, "--inputs", tmp_path / "inverted", code=4)
    assert set(out) == documented("monitor")
    assert (out["status"], out["exit_code"], out["n_live"], out["version"]) == ("ALERT", 4, 120, 1)
    assert out["checks"] and any(c["alert"] for c in out["checks"])
    written = json.loads(Path(out["json_file"]).read_text())
    assert {k: v for k, v in out.items() if k not in ("report", "json_file", "created")} == {
        k: v for k, v in written.items() if k != "created"
    }
    assert Path(out["report"]).name == "monitor.html"


def test_tune_apply_prints_the_study_and_keeps_the_schema_line(copy: Project):
    copy.update_config(
        {
            "tune.space": {
                "train.learning_rate": {"type": "log_uniform", "low": 1.0e-3, "high": 3.0e-2}
            },
            "tune.epochs": 1,
            "tune.sampler": "random",
            "tune.pruner": "none",
        }
    )
    out = dlw_json("tune", "-p", copy.root, "--trials", "1", "--apply")
    assert set(out) == documented("tune")
    assert (out["n_trials"], out["n_complete"], out["best_trial"]) == (1, 1, 0)
    [trial] = out["trials"]
    assert trial["state"] == "complete" and trial["value"] == out["best_value"]
    assert out["best_params"] == trial["params"] and out["applied"] is True
    assert copy.config.train.learning_rate == out["best_params"]["train.learning_rate"]
    assert "+  learning_rate:" in out["diff"]
    assert copy.paths.config.read_text().splitlines()[0] == SCHEMA_LINE


def test_errors_are_json_with_the_exit_code(copy: Project, tmp_path: Path):
    out = dlw_json("monitor", "-p", copy.root, "--labels", tmp_path / "none.csv", code=2)
    assert set(out) == {"error"} and out["error"]["exit_code"] == 2
    assert out["error"]["type"] == "DlwError" and out["error"]["fix"].startswith("pass --labels")
    # --json errors name a file under a temporary folder by its name only (errors.scrub)
    what = f"Cannot read the labels file {tmp_path / 'none.csv'}."
    assert out["error"]["what"] == scrub(what) and "none.csv" in out["error"]["what"]
