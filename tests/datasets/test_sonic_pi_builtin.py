"""builtin:sonic-pi: a table over the installed clips (never copied), an honest card and
licence, and `dlw ingest builtin:sonic-pi` then `dlw split` on an audio-classification
project."""

from __future__ import annotations

import csv
import re
from collections import Counter
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dlworkflow.cli import app
from dlworkflow.datasets import get_builtin, sonic_pi
from dlworkflow.store import read_manifest, read_quarantine
from system_deps import sonic_pi_samples


@pytest.fixture(scope="module")
def samples() -> Path:
    return sonic_pi_samples()


def test_table_points_at_the_installed_clips(samples, tmp_path):
    before = {p.name: p.stat().st_mtime_ns for p in samples.iterdir()}
    source = sonic_pi.materialise(tmp_path)
    assert source == tmp_path / "sonic-pi.csv"
    rows = list(csv.DictReader(source.open()))
    assert len(rows) == get_builtin("sonic-pi").n_samples == 150
    assert all(Path(r["path"]).parent == samples and Path(r["path"]).is_file() for r in rows)
    assert Counter(r["label"] for r in rows) == sonic_pi.class_counts()
    licences = Counter(r["licence"] for r in rows)
    assert licences == {sonic_pi.CC0: 116, sonic_pi.MIT_OR_CC0: 34}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["DATASET.md", "sonic-pi.csv"]
    assert {p.name: p.stat().st_mtime_ns for p in samples.iterdir()} == before


def test_card_and_catalogue_say_it_is_not_speech():
    dataset = get_builtin("sonic-pi")
    assert dataset.task == "audio-classification"
    assert dataset.reads_from is sonic_pi.samples_folder
    assert "not speech" in dataset.description
    assert "no spoken-word data set installs offline here" in dataset.description
    assert "NOT SPEECH" in sonic_pi.CARD and "No spoken-word data set installs" in sonic_pi.CARD
    assert "CC0" in dataset.licence and "MIT" in dataset.licence


def test_clips_outside_the_cc0_entries_are_the_catch_all_ones():
    """The clips Debian's copyright file does not list under their own entry (all of its
    listed samples are CC0) are exactly CATCH_ALL; no clip has a licence that forbids use."""
    if not sonic_pi.COPYRIGHT.is_file():
        pytest.skip(f"{sonic_pi.COPYRIGHT} is not installed (/usr/share/doc excluded by dpkg)")
    text = sonic_pi.COPYRIGHT.read_text(encoding="utf-8")
    listed: dict[str, str] = {}
    for stanza in text.split("\n\n"):
        files = re.findall(r"etc/samples/(\S+)\.flac", stanza.split("License:")[0])
        licence = re.search(r"^License: *(\S+)", stanza, re.M)
        for name in files:
            listed[name] = licence.group(1) if licence else ""
    assert set(listed.values()) == {"CC0"}
    installed = {path.stem for path, _ in sonic_pi.all_clips()}
    assert installed - set(listed) == sonic_pi.CATCH_ALL
    assert re.search(r"^Files: \*\nCopyright: .*\nLicense: MIT$", text, re.M)


def test_cli_ingest_then_split_on_an_audio_project(samples, tmp_path, monkeypatch):
    runner = CliRunner()
    monkeypatch.chdir(tmp_path)
    done = runner.invoke(app, ["init", "--task", "audio-classification", "p"])
    assert done.exit_code == 0, done.output
    monkeypatch.chdir(tmp_path / "p")
    done = runner.invoke(app, ["ingest", "builtin:sonic-pi"])
    assert done.exit_code == 0, done.output
    from dlworkflow.project import Project

    project = Project.load(tmp_path / "p")
    manifest = read_manifest(project)
    assert len(manifest) == 148 and manifest["label"].nunique() == 10
    assert "bd_808.flac" in set(manifest["sample_id"])  # ids relative to the samples folder
    assert (manifest["path"].map(lambda p: Path(p).parent) == samples).all()
    assert set(manifest["format"]) == {"FLAC"} and set(manifest["sample_rate"]) == {44_100}
    quarantined = read_quarantine(project).set_index("sample_id")["reason"]
    assert sorted(quarantined.index) == ["drum_bass_hard.flac", "drum_heavy_kick.flac"]
    assert quarantined.str.startswith("clipping: ").all()
    done = runner.invoke(app, ["split"])
    assert done.exit_code == 0, done.output
    from dlworkflow.store.splits import read_assignments

    assignments = read_assignments(project)
    assert sorted(assignments["sample_id"]) == sorted(manifest["sample_id"])
    assert set(assignments["split"]) >= {"train", "val", "test"}
