"""`dlw train` and `dlw tune` on the signal tasks through the CLI, from `dlw init --task` on:
builtin:gunpoint (sequence-classification, resnet1d) and builtin:sonic-pi at 8 kHz x 0.5 s
(audio-classification, audio_cnn), one epoch each with small networks and augmentation on.
The run's validation metric is recorded in the ledger and in model.json; the default tune
space searches the modality's augmentation."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from dlworkflow.cli import app
from dlworkflow.project import Project

runner = CliRunner()


def dlw(*args: str) -> Any:
    result = runner.invoke(app, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output[-4000:]
    return result


def trained(root: Path, *, task: str, source: str, config: dict[str, Any]) -> Project:
    p = ["-p", str(root)]
    dlw("init", str(root), "--task", task)
    Project.load(root).update_config({"train.threads": 2, "tune.epochs": 1, **config})
    dlw("ingest", source, *p)
    dlw("split", *p)
    dlw("train", *p, "--epochs", "1")
    return Project.load(root)


def recorded_metric(project: Project) -> float:
    record = project.ledger.latest("train")
    assert record is not None and record.summary["metric"] == "accuracy"
    assert record.summary["epochs_run"] == 1
    value = record.summary["val_metric"]
    assert isinstance(value, float) and math.isfinite(value) and 0.0 <= value <= 1.0
    folder = Path(json.loads((project.paths.train_dir / "best.json").read_text())["folder"])
    meta = json.loads((folder / "model.json").read_text())
    assert meta["val_metric"] == value and meta["history"][0]["val_accuracy"] == value
    return value


def tuned(project: Project, trials: int) -> dict[str, Any]:
    out = json.loads(dlw("tune", "-p", str(project.root), "--trials", str(trials), "--json").stdout)
    assert out["n_complete"] == trials and 0.0 <= out["best_value"] <= 1.0
    return dict(out["best_params"])


def test_dlw_train_and_tune_on_gunpoint(tmp_path: Path) -> None:
    project = trained(
        tmp_path / "seq",
        task="sequence-classification",
        source="builtin:gunpoint",
        config={
            "model.params": {"widths": [8, 16, 16]},
            "train.batch_size": 32,
            "augment.jitter": 0.03,
            "augment.time_warp": 0.2,
        },
    )
    recorded_metric(project)
    folder = Path(json.loads((project.paths.train_dir / "best.json").read_text())["folder"])
    meta = json.loads((folder / "model.json").read_text())
    assert meta["name"] == "resnet1d" and meta["in_channels"] == 1
    assert meta["preprocessing"] == {"modality": "sequence", "channels": 1}
    assert len(meta["channel_stats"]["mean"]) == 1
    assert {"augment.jitter", "augment.magnitude_warp"} <= set(tuned(project, trials=2))
    dlw("lr-find", "-p", str(project.root), "--steps", "12")  # NaN-padded batches, raw values
    assert (project.root / "reports" / "lr_find.png").read_bytes().startswith(b"\x89PNG")


def test_dlw_train_and_tune_on_sonic_pi(tmp_path: Path) -> None:
    project = trained(
        tmp_path / "aud",
        task="audio-classification",
        source="builtin:sonic-pi",
        config={
            "data.audio.sample_rate": 8000,
            "data.audio.duration": 0.5,
            "model.name": "audio_cnn",
            "model.params": {"channels": [8, 16, 32], "n_mels": 32},
            "train.batch_size": 32,
            "augment.gain_db": 6.0,
            "augment.time_mask": 4,
        },
    )
    recorded_metric(project)
    folder = Path(json.loads((project.paths.train_dir / "best.json").read_text())["folder"])
    meta = json.loads((folder / "model.json").read_text())
    assert meta["name"] == "audio_cnn" and meta["sample_rate"] == 8000
    prep = meta["preprocessing"]
    assert (prep["modality"], prep["sample_rate"], prep["duration"]) == ("audio", 8000, 0.5)
    assert {"augment.gain_db", "augment.freq_mask"} <= set(tuned(project, trials=1))
