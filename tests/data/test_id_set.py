"""SeenIds: a set of ids kept as compact digests (the folder walker's duplicate-id check)."""

from __future__ import annotations

import mmap

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
    # numpy reads an S12 item back without its trailing NULs: the lookup compares whole bytes
    digests = {"a": b"\x01" * 12 + b"\x00", "b": b"\x01" * 12 + b"\x02", "c": b"\x00" * 13}
    monkeypatch.setattr(id_set, "_digest", lambda sample_id: digests.get(sample_id, b"\xff" * 13))
    monkeypatch.setattr(id_set, "BATCH", 1)
    seen = SeenIds()
    for sample_id in "abc":
        seen.add(sample_id)
    assert all(sample_id in seen for sample_id in "abc") and "z" not in seen
    assert len(seen) == 3


def test_keys_merged_into_one_array_stay_sorted_and_found(monkeypatch) -> None:
    """Every digest in one bucket: each merge inserts its batch among the keys already there."""
    import hashlib

    def one_bucket(sample_id: str) -> bytes:
        return b"\x07" + hashlib.blake2b(sample_id.encode(), digest_size=12).digest()

    monkeypatch.setattr(id_set, "_digest", one_bucket)
    monkeypatch.setattr(id_set, "BATCH", 5)
    monkeypatch.setattr(id_set, "MAPPED_BYTES", 600)  # from 50 keys on: own memory maps
    seen = SeenIds()
    ids = [f"{i}.png" for i in range(203)]
    for sample_id in ids:
        seen.add(sample_id)
    keys = seen._sorted[7]
    assert len(keys) + len(seen._recent) == len(seen) == 203
    whole = [keys[i : i + 1].tobytes() for i in range(len(keys))]  # trailing NULs kept
    assert whole == sorted(whole) and len(set(whole)) == len(whole)
    assert all(sample_id in seen for sample_id in ids)
    assert not any(f"{i}.png" in seen for i in range(203, 400))
    assert isinstance(keys.base.obj, mmap.mmap)  # its own memory map
