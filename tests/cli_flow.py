"""The nine steps through the CLI, shared by the end-to-end tests of the dense and signal
tasks: init .. export (`steps_1_to_7`), one served request (`served`), predict and report
(`predict_and_report`), monitor with labels and retrain (`step9`). Each checks what its steps
leave behind in general terms; the tests add the task's own checks."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pandas as pd
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from dlworkflow.cli import app
from dlworkflow.project import Project

runner = CliRunner()
TOKEN = "e2e-token-" + "d" * 24
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def dlw(*args: str) -> Any:
    return runner.invoke(app, list(args), catch_exceptions=False)


def ok(result: Any, *codes: int) -> Any:
    assert result.exit_code in (codes or (0,)), result.output[-4000:]
    return result


def served(root: Path, body: dict[str, Any], **files: Any) -> list[dict[str, Any]]:
    """POST `body` (JSON, or multipart `files`) to the champion served in-process: refused
    without the bearer token, answered with it; the predictions."""
    from dlworkflow.config import Serve
    from dlworkflow.deploy.serve.app import create_app

    server = create_app(root, Serve(max_wait_ms=1), token=TOKEN)
    send: dict[str, Any] = {"files": files["files"]} if files else {"json": body}
    try:
        with TestClient(server) as client:
            assert client.post("/v1/predict", **send).status_code == 401
            answer = client.post("/v1/predict", headers=AUTH, **send)
            assert answer.status_code == 200, answer.text
            return list(answer.json()["predictions"])
    finally:
        server.state.server.close()


def steps_1_to_7(
    tmp_path: Path,
    *,
    task: str,
    source: str,
    metric: str,
    target: float,
    config: dict[str, Any],
) -> dict[str, Any]:
    """init .. export through the CLI (train: 1 epoch; the target set low enough for it to
    PASS); what the task-specific checks need."""
    root = tmp_path / "proj"
    p = ["-p", str(root)]
    ok(dlw("init", str(root), "--task", task))
    project = Project.load(root)
    project.update_config(config)
    ok(dlw("define", *p, "--metric", metric, "--target", str(target), "--objective", task))
    ok(dlw("ingest", source, *p))
    ok(dlw("explore", *p))
    eda = (root / "reports" / "eda.html").read_text(encoding="utf-8")
    split = ok(dlw("split", *p))
    ok(dlw("augment-preview", *p))
    assert (root / "reports" / "augment_preview.png").stat().st_size > 1000
    trained = ok(dlw("train", *p, "--epochs", "1"))
    assert "Traceback" not in trained.output
    project.update_config({"train.epochs": 1})
    status = Project.load(root).status()
    for step in ("define", "ingest", "explore", "split", "train"):
        assert status.state_of(step) == "done", (step, status)
    tested = ok(dlw("test", *p))
    assert "PASS" in tested.output and metric in tested.output
    verdict = json.loads(ok(dlw("test", *p, "--json")).stdout)
    exported = ok(dlw("export", *p))
    assert "parity" in exported.output.lower()
    meta = json.loads((root / "models" / "v1" / "metadata.json").read_text())
    assert meta["task"] == task
    return {
        "root": root,
        "p": p,
        "eda": eda,
        "split": split.output,
        "verdict": verdict,
        "meta": meta,
        "project": project,
    }


def predict_and_report(flow: dict[str, Any], files: list[Path], tmp_path: Path) -> pd.DataFrame:
    """`dlw predict` on a folder holding copies of `files` (no error rows), then the report."""
    root, p = flow["root"], flow["p"]
    folder = tmp_path / "to-predict"
    folder.mkdir()
    for file in files:
        shutil.copy(file, folder / file.name)
    out = tmp_path / "predictions.csv"
    ok(dlw("predict", str(folder), *p, "--out", str(out)))
    predicted = pd.read_csv(out)
    assert "error" not in predicted or predicted["error"].isna().all(), predicted.head()
    ok(dlw("report", *p, "--no-pdf"))
    assert (root / "reports" / "report.html").is_file()
    return predicted


def step9(flow: dict[str, Any], *, inputs: Path, labels: Path, fresh: Path) -> dict[str, Any]:
    """monitor the incoming data with its labels, then retrain on it; the monitor's record."""
    root, p = flow["root"], flow["p"]
    monitored = ok(dlw("monitor", *p, "--inputs", str(inputs), "--labels", str(labels)), 0, 4)
    assert (root / "reports" / "monitor.html").is_file()
    project = Project.load(root)
    record = project.ledger.latest("monitor")
    assert record is not None and record.outputs["status"] in ("OK", "ALERT"), record
    assert (record.outputs["status"] == "ALERT") == (monitored.exit_code == 4)
    assert any(c["group"] == "prediction" for c in record.outputs["checks"]), record.outputs
    retrained = ok(dlw("retrain", "--data", str(fresh), *p), 0, 3)
    decision = Project.load(root).ledger.latest("retrain")
    assert decision is not None and decision.outputs.get("outcome"), decision
    assert (decision.outputs["outcome"] == "promoted") == (retrained.exit_code == 0)
    return dict(record.outputs)
