"""Steps 1-7 of sequence and audio classification through the CLI on real built-in data, to
one served request: init, define, ingest (builtin:gunpoint with the archive's own test set
sealed; builtin:sonic-pi), split, train one epoch of a small network, `dlw test`, `dlw
export` (its parity check on the validation split passes), `dlw predict` and the server.
One epoch need not pass the target: a FAIL is exported with --force, which the server then
serves as a forced model (the test of the export path, not of the model's quality)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from dlworkflow.cli import app
from dlworkflow.project import Project
from dlworkflow.store import load_split

runner = CliRunner()
TOKEN = "flow-token-" + "z" * 24
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def dlw(*args: str, codes: tuple[int, ...] = (0,)) -> Any:
    result = runner.invoke(app, list(args), catch_exceptions=False)
    assert result.exit_code in codes, result.output[-4000:]
    return result


def _through_export(root: Path, *, task: str, source: str, config: dict[str, Any]) -> dict:
    """init .. export through the CLI; metadata.json of the exported version."""
    p = ["-p", str(root)]
    dlw("init", str(root), "--task", task)
    Project.load(root).update_config(
        {"evaluate.bootstrap_samples": 200, "train.threads": 2, **config}
    )
    dlw("define", *p, "--metric", "accuracy", "--target", "0.5", "--objective", task)
    dlw("ingest", source, *p)
    dlw("split", *p)
    dlw("train", *p, "--epochs", "1")
    return _tested_and_exported(root)


def _tested_and_exported(root: Path) -> dict:
    """test .. export (and promote, when forced) of a trained project through the CLI;
    metadata.json of the exported version."""
    p = ["-p", str(root)]
    tested = dlw("test", *p, codes=(0, 3))
    record = Project.load(root).ledger.latest("test")
    assert record is not None and record.outputs["verdict"] in ("PASS", "FAIL"), tested.output
    force = [] if tested.exit_code == 0 else ["--force", "--reason", "one epoch: a flow test"]
    dlw("export", *p, *force)
    meta = json.loads((root / "models" / "v1" / "metadata.json").read_text())
    parity = meta["parity"]
    assert parity["max_abs_diff"] <= parity["tolerance"] and parity["agreement"] >= 0.999
    assert parity["n"] == len(load_split(Project.load(root), "val")) > 0
    if force:
        dlw("promote", "1", *p)
    return meta


def _serve(root: Path, **request: Any) -> list[dict[str, Any]]:
    from dlworkflow.config import Serve
    from dlworkflow.deploy.serve.app import create_app

    server = create_app(root, Serve(), token=TOKEN)
    try:
        with TestClient(server) as client:
            answer = client.post("/v1/predict", headers=AUTH, **request)
            assert answer.status_code == 200, answer.text
            return list(answer.json()["predictions"])
    finally:
        server.state.server.close()


def _probabilities(rows: pd.DataFrame | list[dict[str, Any]], classes: list[str]) -> np.ndarray:
    if isinstance(rows, pd.DataFrame):
        return rows[[f"p_{c}" for c in classes]].to_numpy(dtype=float)
    return np.array([[p["probabilities"][c] for c in classes] for p in rows])


def test_gunpoint_from_init_to_a_served_series(tmp_path):
    root = tmp_path / "proj"
    meta = _through_export(
        root,
        task="sequence-classification",
        source="builtin:gunpoint",
        config={"split.use_source_split": True, "model.params": {"widths": [8, 16, 16]}},
    )
    assert meta["input"]["shape"] == ["batch", 1, "length"]
    assert meta["preprocessing"]["max_gap"] == 3 and meta["preprocessing"]["channels"] == 1
    project = Project.load(root)
    assert project.ledger.latest("test").outputs["n"] == 150  # the archive's own test set
    # dlw predict on series files (.npy) and the server on the same values as JSON
    from dlworkflow.datasets.ucr import load_ucr

    files = []
    for i, array in enumerate(load_ucr("GunPoint")[1].series[:3]):
        files.append(tmp_path / f"s{i}.npy")
        np.save(files[-1], np.asarray(array, dtype=np.float32))
    out = tmp_path / "predictions.csv"
    dlw("predict", *map(str, files), "-p", str(root), "--out", str(out))
    predicted = pd.read_csv(out)
    assert predicted["error"].isna().all(), predicted
    series = [np.load(f, allow_pickle=False)[0].tolist() for f in files]
    series[1] = series[1][:90]  # a shorter one in the same request
    served = _serve(root, json={"series": series})
    classes = meta["classes"]
    both = _probabilities(served, classes)[[0, 2]], _probabilities(predicted, classes)[[0, 2]]
    assert np.abs(both[0] - both[1]).max() < 1e-5  # the CSV's 6 digits
    assert all(p["label"] in classes for p in served)


def test_sonic_pi_from_init_to_a_served_clip(tmp_path, sonic_pi_trained):
    # init .. train 1 epoch: the session's sonic-pi project (tests/conftest.py), which
    # tests/evaluate/test_signal_evaluate_cli.py evaluates too
    root = sonic_pi_trained
    meta = _tested_and_exported(root)
    assert meta["input"]["shape"] == ["batch", "samples"]
    prep = meta["preprocessing"]
    assert (prep["sample_rate"], prep["duration"], prep["policy"]) == (16000, 1.0, "fixed")
    from dlworkflow.datasets.sonic_pi import sonic_pi_clips

    files = [path for path, _ in sonic_pi_clips()[:2]]
    out = tmp_path / "predictions.csv"
    dlw("predict", *map(str, files), "-p", str(root), "--out", str(out))
    predicted = pd.read_csv(out)
    assert predicted["error"].isna().all(), predicted
    uploads = [("files", (f.name, f.read_bytes(), "audio/flac")) for f in files]
    served = _serve(root, files=uploads)
    classes = meta["classes"]
    gap = np.abs(_probabilities(served, classes) - _probabilities(predicted, classes)).max()
    assert gap < 1e-5
