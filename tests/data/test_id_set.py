"""SeenIds: a set of ids kept as compact digests (the folder walker's duplicate-id check)."""

from __future__ import annotations

from dlworkflow.data import id_set
from dlworkflow.data.id_set import SeenIds


def test_seen_ids_is_a_set_across_merges(monkeypatch) -> None:
    monkeypatch.setattr(id_set, "BATCH", 7)  # many merges into the sorted array
    seen = SeenIds()
    ids = [f"class/{i:05d}.png" for i in range(100)] + ["café/é.png", "bad\udcff.png", ""]
    for sample_id in ids:
        assert sample_id not in seen
        seen.add(sample_id)
        assert sample_id in seen
    seen.add(ids[3])  # again: not counted twice
    assert len(seen) == len(ids)
    assert all(sample_id in seen for sample_id in ids)
    assert "class/00100.png" not in seen and "class/0000.png" not in seen
    assert len(seen._recent) < 7  # most are in the sorted arrays


def test_digests_ending_in_nul_bytes_are_found(monkeypatch) -> None:
    # numpy reads an S16 item back without its trailing NULs: the lookup compares whole bytes
    digests = {"a": b"\x01" * 15 + b"\x00", "b": b"\x01" * 15 + b"\x02", "c": b"\x00" * 16}
    monkeypatch.setattr(id_set, "_digest", lambda sample_id: digests.get(sample_id, b"\xff" * 16))
    monkeypatch.setattr(id_set, "BATCH", 1)
    seen = SeenIds()
    for sample_id in "abc":
        seen.add(sample_id)
    assert all(sample_id in seen for sample_id in "abc") and "z" not in seen
    assert len(seen) == 3
