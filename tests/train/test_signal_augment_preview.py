"""`dlw augment-preview` on sequence and audio projects (train/augment_preview_signals.py):
builtin:gunpoint, and 15 real sonic-pi clips at 8 kHz x 0.5 s. The figure is written under
reports/ and its path printed; the series and spectrograms it draws are those of the
training transforms, seeded, and they change the samples."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from dlworkflow import store
from dlworkflow.cli import app
from dlworkflow.project import Project
from dlworkflow.train.augment_preview_signals import (
    clip_spectrograms,
    series_versions,
)
from system_deps import sonic_pi_samples

runner = CliRunner()
WIDE = {"COLUMNS": "300", "NO_COLOR": "1"}


def dlw(*args: str) -> Any:
    return runner.invoke(app, list(args), env=WIDE, catch_exceptions=False)


def _split(root: Path, task: str, source: str, config: dict[str, Any] | None = None) -> Project:
    assert dlw("init", str(root), "--task", task).exit_code == 0
    project = Project.load(root)
    if config:
        project.update_config(config)
    assert dlw("ingest", source, "-p", str(root)).exit_code == 0
    assert dlw("split", "-p", str(root)).exit_code == 0
    return Project.load(root)


def _previewed(project: Project) -> Path:
    out = dlw("augment-preview", "-p", str(project.root), "--n", "4", "--seed", "3")
    assert out.exit_code == 0, out.output
    path = project.paths.reports / "augment_preview.png"
    assert f"Wrote {path}" in out.output.replace("\n", "")
    with Image.open(path) as image:
        assert image.format == "PNG" and min(image.size) > 300
    return path


def test_sequence_preview_overlays_seeded_augmented_series(tmp_path: Path) -> None:
    project = _split(tmp_path / "seq", "sequence-classification", "builtin:gunpoint")
    off = dlw("augment-preview", "-p", str(project.root))
    assert off.exit_code == 2 and "nothing to preview" in off.output
    assert "image projects only" not in off.output
    project.update_config({"augment.jitter": 0.1, "augment.time_warp": 0.2})
    _previewed(project)
    rows = store.load_split(project, "train").head(8)
    cfg = Project.load(project.root).config.augment
    x, outs = series_versions(project, rows, cfg, [3, 4, 5])
    again = series_versions(project, rows, cfg, [3, 4, 5])[1]
    assert len(outs) == 3 and all(np.array_equal(a, b, equal_nan=True) for a, b in zip(outs, again))
    assert all(o.shape == x.shape for o in outs)
    changed = [not np.allclose(o, x, equal_nan=True) for o in outs]
    assert all(changed)  # each version changes some of the 8 series (p 0.5 per op and series)
    assert not np.array_equal(outs[0], outs[1], equal_nan=True)  # another seed, other draws
    assert np.isfinite(outs[0]).all()  # GunPoint: 150 steps each, no padding


@pytest.fixture(scope="module")
def samples() -> Path:
    return sonic_pi_samples()


def test_audio_preview_masks_and_changes_the_spectrograms(tmp_path: Path, samples: Path) -> None:
    root = tmp_path / "clips"
    for label in ("bd", "elec", "drum"):
        (root / label).mkdir(parents=True)
        for clip in sorted(samples.glob(f"{label}_*.flac"))[:5]:
            shutil.copy(clip, root / label / clip.name)
    settings = {"data.audio.sample_rate": 8000, "data.audio.duration": 0.5}
    project = _split(tmp_path / "aud", "audio-classification", str(root), settings)
    off = dlw("augment-preview", "-p", str(project.root))
    assert off.exit_code == 2 and "nothing to preview" in off.output
    project.update_config({"augment.freq_mask": 8})
    _previewed(project)
    rows = store.load_split(project, "train").head(4)
    cfg = Project.load(project.root).config.augment
    original, masked = clip_spectrograms(project, rows, cfg, [3])
    assert original.shape == masked.shape and original.shape[1] == 64
    for spec, before in zip(masked, original):
        bands = ~np.isclose(spec, before).all(axis=1)  # the masked mel bands
        assert 1 <= bands.sum() <= 2 * 8  # 2 masks of up to 8 bands
        assert np.allclose(spec[bands], spec[bands][:, :1])  # filled with one value
    project.update_config(
        {"augment.freq_mask": 0, "augment.gain_db": 12, "augment.time_shift": 0.3}
    )
    cfg = Project.load(project.root).config.augment
    original, moved = clip_spectrograms(project, rows, cfg, [3])
    assert not np.allclose(original, moved, atol=0.5)
