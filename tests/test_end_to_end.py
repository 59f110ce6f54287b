"""The whole workflow through the CLI on real data (scikit-learn's 8x8 digits)."""

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dlworkflow.cli import app
from dlworkflow.project import Project

runner = CliRunner()


def dlw(*args: str) -> "object":
    return runner.invoke(app, list(args), catch_exceptions=False)


def test_cli_end_to_end_on_real_digits(tmp_path: Path):
    root = tmp_path / "proj"
    p = ["-p", str(root)]
    assert dlw("init", str(root)).exit_code == 0

    # the test step refuses to run before a success criterion exists
    refused = dlw("test", *p)
    assert refused.exit_code == 2
    assert "dlw define --metric" in refused.output

    assert (
        dlw(
            "define",
            *p,
            "--metric",
            "balanced_accuracy",
            "--target",
            "0.8",
            "--objective",
            "read digits",
        ).exit_code
        == 0
    )
    ingest = dlw("ingest", "builtin:digits", *p)
    assert ingest.exit_code == 0, ingest.output
    assert "1,797" in ingest.output
    explored = dlw("explore", *p)
    assert explored.exit_code == 0, explored.output
    assert (root / "reports" / "eda.html").is_file()
    assert dlw("split", *p).exit_code == 0
    trained = dlw("train", *p, "--epochs", "4")
    assert trained.exit_code == 0, trained.output
    # the override is recorded: train is stale until the file says the same
    project = Project.load(root)
    assert project.status().state_of("train") == "stale"
    project.update_config({"train.epochs": 4})
    assert project.status().state_of("train") == "done"

    first = dlw("test", *p)
    assert first.exit_code == 0, first.output  # PASS: a small CNN reads 8x8 digits > 0.8
    assert "PASS" in first.output and "first use of this test set" in first.output

    second = dlw("test", *p)
    assert second.exit_code == 0
    flat = " ".join(second.output.replace("│", " ").split())  # the table wraps the cell
    assert "test set had been used 1 time(s) before" in flat

    reads = project.ledger.test_reads()
    assert len(reads) == 2 and {r.step for r in reads} == {"test"}
    verdict = project.ledger.latest("test")
    assert verdict.outputs["verdict"] == "PASS"
    interval = verdict.outputs["interval"]
    assert interval[0] <= verdict.outputs["value"] <= interval[1]

    status = project.status()
    for step in ("define", "ingest", "explore", "split", "train", "test"):
        assert status.state_of(step) == "done", (step, status)
    assert status.state_of("report") == "not run"
    reported = dlw("run", *p)  # step 8 is all that is left
    assert reported.exit_code == 0, reported.output
    assert (root / "reports" / "report.html").is_file()
    assert (root / "reports" / "model_card.md").is_file()
    assert project.status().state_of("report") == "done"
    nothing = dlw("run", *p)
    assert nothing.exit_code == 0 and "nothing to run" in nothing.output

    # an unreachable target: the same model now FAILS, with its own exit code
    assert dlw("define", *p, "--target", "0.9999").exit_code == 0
    assert project.status().state_of("test") == "stale"
    failed = dlw("test", *p)
    assert failed.exit_code == 3
    assert "FAIL" in failed.output


def test_run_executes_every_stale_step_in_order(tmp_path: Path):
    project = Project.init(tmp_path / "proj")
    project.update_config(
        {
            "data.source": "builtin:digits",
            "train.epochs": 2,
            "problem.primary_metric": "accuracy",
            "problem.target": 0.5,
            # what runs, and in which order, is asserted here; not how well: a small network,
            # explore on the pixels (no ImageNet embedding), fewer bootstrap resamples
            "explore.backbone": "pixels",
            "model.params": {"channels": [8, 16], "convs_per_block": 1},
            "train.threads": 2,
            "evaluate.bootstrap_samples": 200,
        }
    )
    results = project.run(progress=False)
    assert [type(r).__name__ for r in results] == [
        "DefineResult",
        "IngestResult",
        "ExploreResult",
        "SplitResult",
        "TrainResult",
        "TestResult",
        "ReportResult",
    ]
    assert project.run(progress=False) == []
    # a config change re-runs train and what depends on it, not ingest or split
    project.update_config({"train.learning_rate": 0.001})
    rerun = project.run(progress=False)
    assert [type(r).__name__ for r in rerun] == ["TrainResult", "TestResult", "ReportResult"]


def test_the_installed_entry_point_runs(tmp_path: Path):
    out = subprocess.run(
        [sys.executable, "-m", "dlworkflow", "init", str(tmp_path / "x")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "x" / "dlworkflow.yaml").is_file()
    bad = subprocess.run(
        [sys.executable, "-m", "dlworkflow", "status", "-p", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 2
    assert "No dlworkflow project" in bad.stdout + bad.stderr
    assert "Traceback" not in bad.stdout + bad.stderr


@pytest.mark.slow
def test_demo_runs_the_whole_workflow_on_mnist(tmp_path: Path):
    out = subprocess.run(
        [sys.executable, "-m", "dlworkflow", "demo", str(tmp_path / "demo")],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    project = Project.load(tmp_path / "demo")
    verdict = project.ledger.latest("test").outputs
    assert verdict["verdict"] == "PASS" and verdict["value"] >= 0.95
    assert verdict["n"] == 750
    # the network beats the simple model (logistic regression on pixels), and then deploy:
    # the PASS model is exported (parity checked) and is the champion
    assert project.ledger.latest("test").summary["simple_as_good"] is False
    from dlworkflow.runtime.versions import champion, read_metadata

    meta = read_metadata(tmp_path / "demo", 1)
    assert meta["verdict"] == "PASS" and meta["parity"]["agreement"] == 1.0
    # step 9: digits from another source alert the monitor; retrained on them, the
    # challenger beats the champion on the same sealed rows and serves
    monitored = project.ledger.latest("monitor")
    assert monitored.outputs["status"] == "ALERT" and "embedding MMD" in monitored.outputs["alerts"]
    assert (tmp_path / "demo" / "reports" / "monitor.html").is_file()
    decision = project.ledger.latest("retrain")
    assert decision.outputs["outcome"] == "promoted", decision.summary
    assert champion(tmp_path / "demo") == 2
    assert read_metadata(tmp_path / "demo", 2)["verdict"] == "PASS"
    with sqlite3.connect(tmp_path / "demo" / "mlruns.db") as conn:
        steps = dict(
            conn.execute("select value, count(*) from tags where key = 'dlw.step' group by value")
        )
    assert steps["train"] == 2  # the first model and the retrained one
    assert steps["test"] == len(project.ledger.history("test"))  # each test read is a run
    split = json.loads((tmp_path / "demo" / ".dlw" / "split" / "split.json").read_text())
    assert split["counts"]["test"] == 750  # the sealed test set did not move
    # retrained on scanner B's first batch (1,200 digits; the later 597 are monitored after)
    assert split["counts"]["train"] > 3500 and split["slices"]["fresh1"]["n"] > 150
    assert "Last retraining" in (tmp_path / "demo" / "reports" / "report.html").read_text()
    # it ends with no stale step: explore ran again on the data the retrain added, and the
    # report (written once, at the end) documents the retrained champion
    status = project.status()
    assert not [(s.title, s.detail) for s in status.steps if s.state == "stale"]
    assert [s.state for s in status.steps if s.ledger_step] == ["done"] * 8
    assert project.ledger.latest("explore").summary["n_samples"] > 5000
    assert len(project.ledger.history("report")) == 1
    # and with its time per step, the total last
    tail = out.stdout[out.stdout.rindex("time per step") :]
    for step in (
        "define",
        "ingest",
        "explore",
        "split",
        "train",
        "test",
        "export",
        "monitor",
        "retrain",
        "report",
        "total",
    ):
        assert step in tail, tail
    times = json.loads((tmp_path / "demo" / ".dlw" / "demo-times.json").read_text())
    assert [name for name, _ in times["steps"]] == [
        "define",
        "ingest",
        "explore",
        "split",
        "train",
        "test",
        "export",
        "monitor",
        "retrain",
        "monitor",  # the later scanner-B batch, labelled, on the new champion
        "explore",
        "report",
    ]
    assert times["total"] >= sum(s for _, s in times["steps"])
    # the forgotten steps are done by default: the ML Test Score judges (nearly) every test
    # from the demo's own records, and every missing point names what would earn it
    from dlworkflow.report.audit import audit

    scored = audit(project, write=False)
    from_evidence = [t.test.id for t in scored.tests if t.source == "evidence"]
    assert len(from_evidence) >= 22, [t.test.id for t in scored.tests if t.source != "evidence"]
    assert scored.final >= 2, scored.sections
    assert all(t.next_step for t in scored.tests if t.points == 0)
