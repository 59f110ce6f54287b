"""Re-ingest is incremental: unchanged files are not decoded again; versions change only with
content; memory-bounded writing leaves no partial manifest behind on failure."""

from __future__ import annotations

import os

import pytest

import dlworkflow.data.image_decode as image_decode
from dlworkflow.store import read_manifest


def _count_decodes(monkeypatch) -> list[str]:
    calls: list[str] = []
    real = image_decode.decode_image

    def counting(path, **kwargs):
        calls.append(str(path))
        return real(path, **kwargs)

    monkeypatch.setattr(image_decode, "decode_image", counting)
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

    monkeypatch.setattr(image_decode, "image_stats", boom)
    digits_folder(4)
    with pytest.raises(RuntimeError):
        project.ingest(str(folder), progress=False)
    assert project.paths.manifest.read_bytes() == before
    assert not list(project.paths.state.glob(".manifest*"))
    assert project.status().state_of("ingest") == "failed"


def test_ingest_gives_the_same_manifest_with_one_worker_or_two(project, digits_folder, monkeypatch):
    """data.workers changes how fast, never what: same rows, same order, same dataset version,
    same quarantine (a pool past a lowered threshold, small chunks so several are in flight)."""
    import dlworkflow.data.parallel_read as parallel_read
    from dlworkflow.store import read_quarantine

    monkeypatch.setattr(parallel_read, "POOL_THRESHOLD", 10)
    monkeypatch.setattr(parallel_read, "CHUNK", 4)
    pools: list[int] = []
    pooled = parallel_read._pooled

    def counted(*args):
        pools.append(args[-1])
        yield from pooled(*args)

    monkeypatch.setattr(parallel_read, "_pooled", counted)
    folder = digits_folder(8)
    (folder / "1" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not an image")
    (folder / "2" / "empty.png").write_bytes(b"")
    (folder / "stray.png").write_bytes((folder / "0" / "d0-000.png").read_bytes())
    seen = {}
    for workers in (1, 2):
        project.update_config({"data.workers": workers})
        (project.paths.manifest).unlink(missing_ok=True)  # decode everything each time
        result = project.ingest(str(folder), progress=False)
        seen[workers] = (result, read_manifest(project), read_quarantine(project))
    (one, rows_one, q_one), (two, rows_two, q_two) = seen[1], seen[2]
    assert one.n_samples == 24 and one.n_quarantined == 3 and one.n_reused == 0 == two.n_reused
    assert two.dataset_version == one.dataset_version
    assert rows_two.equals(rows_one) and q_two.equals(q_one)
    assert one.quarantine_reasons == two.quarantine_reasons
    assert pools == [2]  # one worker: no pool; two: a pool of two processes
