"""`dlw evaluate`, `dlw test` and `dlw report` for the signal tasks through the CLI, on real
data trained for 1 epoch: builtin:basic-motions (sequence-classification, resnet1d; 6
channels, 80 series) and builtin:sonic-pi with 1-second clips (audio-classification,
audio_cnn; the session's project of tests/conftest.py, which tests/export/test_signal_flows.py
exports and serves). The evaluation
result carries each modality's baselines (1-NN DTW and Euclidean; the majority class and
the log-mel logistic regression), its automatic slices, occlusion importance with real
numbers, and the figures that draw samples (series curves, log-mel spectrograms)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from dlworkflow.cli import app
from dlworkflow.project import Project

runner = CliRunner()
PNG = b"\x89PNG\r\n\x1a\n"
SMALL = {"evaluate.bootstrap_samples": 200}


def dlw(*args: str, codes: tuple[int, ...] = (0,)) -> Any:
    result = runner.invoke(app, list(args), catch_exceptions=False)
    assert result.exit_code in codes, result.output[-4000:]
    return result


def _trained(root: Path, *, task: str, source: str, config: dict[str, Any]) -> list[str]:
    p = ["-p", str(root)]
    dlw("init", str(root), "--task", task)
    Project.load(root).update_config({**SMALL, **config})
    dlw("define", *p, "--metric", "accuracy", "--target", "0.5", "--objective", "tests")
    dlw("ingest", source, *p)
    dlw("split", *p)
    dlw("train", *p, "--epochs", "1")
    return p


def _evaluated(root: Path, p: list[str]) -> dict[str, Any]:
    out = json.loads(dlw("evaluate", *p, "--json").stdout)
    assert out  # the JSON document of the step
    metrics = json.loads((root / "reports/evaluate/val/metrics.json").read_text())
    assert metrics["n"] > 0 and metrics["metrics"]["accuracy"]["value"] is not None
    return metrics


def _interval_holds(entry: dict[str, Any]) -> None:
    assert entry["value"] is not None and entry["low"] <= entry["value"] <= entry["high"]


def _importance(metrics: dict[str, Any], root: Path, kinds: int) -> dict[str, Any]:
    imp = metrics["importance"]
    assert imp["n"] > 1 and len(imp["groups"]) == kinds
    named = [n for names in imp["groups"].values() for n in names]
    assert sorted(e["name"] for e in imp["features"]) == sorted(named)
    assert all(e["drop"] is not None for e in imp["features"])
    assert all(e["p_true_fall"] is not None for e in imp["features"])
    assert any(abs(e["p_true_fall"]) > 1e-6 for e in imp["features"])  # occlusion moves it
    assert "probability of the true class" in imp["summary"]
    assert (root / metrics["figures"]["importance"]).read_bytes().startswith(PNG)
    return imp


def _mistakes_drawn(metrics: dict[str, Any], root: Path) -> None:
    assert (root / metrics["figures"]["mistakes"]).read_bytes().startswith(PNG)
    assert (root / metrics["figures"]["mistakes_table"]).is_file()


def test_sequence_evaluation_through_the_cli(tmp_path: Path) -> None:
    root = tmp_path / "seq"
    p = _trained(root, task="sequence-classification", source="builtin:basic-motions", config={})
    metrics = _evaluated(root, p)
    base = metrics["baselines"]
    assert base["simple"]["model"].startswith("1-nearest-neighbour, DTW")
    assert base["nn_euclidean"]["model"].startswith("1-nearest-neighbour, Euclidean")
    for key in ("simple", "nn_euclidean", "majority", "network"):
        _interval_holds(base[key])
    # the archive's 1-NN DTW is right on 39 of 40 test series; 4 balanced classes
    assert base["simple"]["value"] > base["majority"]["value"] + 0.3
    assert isinstance(base["simple_as_good"], bool)
    columns = {entry["column"] for entry in metrics["slices"]}
    assert "source" in columns  # the archive's TRAIN and TEST files, mixed by the split
    imp = _importance(metrics, root, kinds=2)  # 6 channels and 8 time segments
    assert {e["name"] for e in imp["features"]} >= {f"channel {c}" for c in range(6)}
    assert len(imp["features"]) == 6 + 8
    _mistakes_drawn(metrics, root)

    # a 1-epoch network may miss the target: PASS (0) or FAIL (3), the report is written
    shown = dlw("test", *p, codes=(0, 3)).output  # the terminal names both neighbours
    assert "1-NN Euclidean" in shown and "1-nearest-neighbour, DTW" in shown
    tested = json.loads((root / "reports/evaluate/test/metrics.json").read_text())
    assert tested["baselines"]["simple"]["model"].startswith("1-nearest-neighbour, DTW")
    _interval_holds(tested["baselines"]["nn_euclidean"])

    dlw("report", *p, "--no-pdf")
    html = (root / "reports" / "report.html").read_text(encoding="utf-8")
    assert "1-nearest-neighbour, DTW" in html and "1-nearest-neighbour, Euclidean" in html
    assert "time segments" in html and "channels" in html


def test_audio_evaluation_through_the_cli(sonic_pi_trained: Path) -> None:
    # the session's trained sonic-pi project (tests/conftest.py), shared with the export flow
    root = sonic_pi_trained
    p = ["-p", str(root)]
    metrics = _evaluated(root, p)
    base = metrics["baselines"]
    assert "log-mel" in base["simple"]["model"]
    for key in ("simple", "majority", "network"):
        _interval_holds(base[key])
    assert base["simple"]["value"] > base["majority"]["value"]
    columns = {entry["column"] for entry in metrics["slices"]}
    assert {"duration (s)", "loudness (RMS dBFS)"} <= columns
    imp = _importance(metrics, root, kinds=2)  # time segments and mel bands
    assert any(e["name"].startswith("mel band") for e in imp["features"])
    _mistakes_drawn(metrics, root)

    dlw("report", *p, "--no-pdf")
    html = (root / "reports" / "report.html").read_text(encoding="utf-8")
    assert "log-mel" in html and "mel bands" in html
