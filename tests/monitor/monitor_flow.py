"""The CLI flow the sequence and audio monitor tests share (tests/monitor/test_*_monitor.py):
the project's settings, its v1 export, traffic POSTed to the champion served in-process (the
server writes its prediction log as in production), and `dlw` through the CLI."""

from __future__ import annotations

from pathlib import Path
from typing import Any

FLOW_SETTINGS = {
    "split.train": 0.5,
    "split.val": 0.3,
    "split.test": 0.2,
    "train.threads": 2,
    "evaluate.bootstrap_samples": 100,
    "evaluate.baselines": False,
    "evaluate.importance": False,
    "evaluate.auto_slices": False,
    "monitor.min_samples": 20,
    "retrain.epochs": 1,
}


def train_and_export(project: Any, source: Path) -> None:
    """Ingest the source, split, train one epoch, test, and export v1 (forced when one epoch
    does not pass: the monitor needs an export, not a good model)."""
    project.ingest(str(source), progress=False)
    project.split()
    project.train(epochs=1, progress=False)
    if project.test().verdict.passed:
        project.export()
    else:  # one epoch may not beat 5%: the monitor needs an export, not a good model
        project.export(force=True, reason="monitor test: one epoch")


def serve(root: Path, token: str, bodies: list[dict]) -> list[dict]:
    """POST each request body to the champion served in-process; the predictions in order."""
    from fastapi.testclient import TestClient

    from dlworkflow.config import Serve
    from dlworkflow.deploy.serve.app import create_app

    app = create_app(root, Serve(max_wait_ms=1), token=token)
    out: list[dict] = []
    try:
        with TestClient(app) as client:
            for body in bodies:
                answer = client.post(
                    "/v1/predict", headers={"Authorization": f"Bearer {token}"}, json=body
                )
                assert answer.status_code == 200, answer.text
                out += answer.json()["predictions"]
    finally:
        app.state.server.close()
    return out


def dlw(*args: object) -> Any:
    from typer.testing import CliRunner

    from dlworkflow.cli import app

    return CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)


def fresh_log(root: Path) -> None:
    """Remove the served prediction log (the next traffic starts a new one)."""
    for old in (root / ".dlw" / "serve").glob("predictions*.jsonl*"):
        old.unlink()
