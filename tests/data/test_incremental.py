"""Re-ingest is incremental: unchanged files are not decoded again; versions change only with
content; memory-bounded writing leaves no partial manifest behind on failure."""

from __future__ import annotations

import os

import pytest

import dlworkflow.data.readers as readers
from dlworkflow.store import read_manifest


def _count_decodes(monkeypatch) -> list[str]:
    calls: list[str] = []
    real = readers.decode_image

    def counting(path, **kwargs):
        calls.append(str(path))
        return real(path, **kwargs)

    monkeypatch.setattr(readers, "decode_image", counting)
    return calls


def test_unchanged_files_are_not_decoded_again(project, digits_folder, monkeypatch):
    folder = digits_folder(4)
    first = project.ingest(str(folder), progress=False)
    calls = _count_decodes(monkeypatch)
    again = project.ingest(str(folder), progress=False)
    assert calls == [] and again.n_reused == 12
    assert again.dataset_version == first.dataset_version and not again.changed
    assert read_manifest(project).equals(read_manifest(project))

    digits_folder(5)  # one new image per class
    changed = folder / "0" / "d0-000.png"
    changed.write_bytes((folder / "1" / "d1-000.png").read_bytes())
    os.utime(changed, ns=(1, 1))
    third = project.ingest(str(folder), progress=False)
    assert sorted(calls) == sorted(
        [str(changed)] + [str(folder / c / f"d{c}-004.png") for c in "012"]
    )
    assert third.n_reused == 11 and third.changed
    assert third.dataset_version != first.dataset_version


def test_a_failed_ingest_keeps_the_previous_manifest(project, digits_folder, monkeypatch):
    folder = digits_folder(3)
    project.ingest(str(folder), progress=False)
    before = project.paths.manifest.read_bytes()

    def boom(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(readers, "image_stats", boom)
    digits_folder(4)
    with pytest.raises(RuntimeError):
        project.ingest(str(folder), progress=False)
    assert project.paths.manifest.read_bytes() == before
    assert not list(project.paths.state.glob(".manifest*"))
    assert project.status().state_of("ingest") == "failed"
