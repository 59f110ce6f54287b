"""sonic-pi-samples clips: found in place, classed by file-name prefix, small classes cut."""

from __future__ import annotations

from pathlib import Path

import pytest

from dlworkflow.datasets import sonic_pi
from dlworkflow.errors import DataError
from system_deps import missing_system_package

KEPT = {
    "tabla": 26,
    "elec": 25,
    "drum": 20,
    "loop": 17,
    "bd": 13,
    "ambi": 11,
    "mehackit": 11,
    "perc": 10,
    "bass": 9,
    "glitch": 8,
}


@pytest.fixture(scope="module")
def clips() -> list[tuple[Path, str]]:
    try:
        return sonic_pi.sonic_pi_clips()
    except DataError:
        missing_system_package(sonic_pi.PACKAGE)


def test_every_installed_clip_is_listed_with_its_prefix_as_class(clips):
    everything = sonic_pi.all_clips()
    assert len(everything) == sonic_pi.N_CLIPS == 165
    assert all(path.suffix == ".flac" and path.is_file() for path, _ in everything)
    assert all(path.name.startswith(f"{label}_") for path, label in everything)
    assert dict(everything)[sonic_pi.samples_folder() / "tabla_ke1.flac"] == "tabla"
    left_out = {label for _, label in everything} - set(KEPT)
    assert left_out == {"vinyl", "sn", "guit", "misc"}  # 4, 4, 4 and 3 clips


def test_kept_classes_and_their_counts(clips):
    counts = sonic_pi.class_counts(clips)
    assert counts == KEPT
    assert list(counts) == list(KEPT)  # most first
    assert all(n >= sonic_pi.MIN_CLIPS for n in counts.values())
    assert len(clips) == 150
    assert clips == sorted(clips)
    assert all(path.parent == sonic_pi.samples_folder() for path, _ in clips)  # in place


def test_min_clips_moves_the_cut(clips):
    counts = sonic_pi.class_counts(sonic_pi.sonic_pi_clips(min_clips=11))
    assert set(counts) == {"tabla", "elec", "drum", "loop", "bd", "ambi", "mehackit"}
    assert sonic_pi.class_counts(sonic_pi.sonic_pi_clips(min_clips=1))["misc"] == 3


def test_a_missing_package_says_how_to_install_it(monkeypatch, tmp_path):
    monkeypatch.setattr(sonic_pi, "SEARCH_DIRS", (tmp_path / "nowhere", tmp_path))
    with pytest.raises(DataError) as caught:
        sonic_pi.sonic_pi_clips()
    assert "make system-deps" in caught.value.fix
    assert "sonic-pi-samples" in caught.value.fix


def test_an_incomplete_installation_is_refused(monkeypatch, tmp_path):
    (tmp_path / "bd_one.flac").write_bytes(b"fLaC")
    monkeypatch.setattr(sonic_pi, "SEARCH_DIRS", (tmp_path,))
    with pytest.raises(DataError, match="too few clips"):
        sonic_pi.all_clips()
