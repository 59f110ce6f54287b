"""PreviousRows: the last manifest's image rows by (path, size, mtime), read back a row group
at a time (incremental re-ingest with flat memory)."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq

from dlworkflow.data import previous_rows as P


def _row(i: int, *, path: str | None = None) -> dict:
    origin = f"/data/c/{i:03d}.png"
    return {
        "path": path or origin,
        "origin_path": origin,
        "content_hash": f"{i:064x}",
        "bytes": 100 + i,
        "mtime_ns": 10**18 + i,
        "width": 32,
        "height": 32,
        "mode": "L",
        "phash": i,
        "brightness": 0.5,
        "contrast": 0.1,
        "dark": 0.0,
        "bright": 0.0,
    }


def _manifest(tmp_path, rows, *, group=4):
    path = tmp_path / "manifest.parquet"
    table = pa.Table.from_pylist(rows).append_column("label", pa.array(["x"] * len(rows)))
    pq.write_table(table, path, row_group_size=group)
    return path


def test_rows_found_by_path_size_and_time_across_row_groups(tmp_path, monkeypatch) -> None:
    rows = [_row(i) for i in range(30)] + [_row(30, path="/project/.dlw/deid/30.png")]
    rows.append({**_row(5), "content_hash": "later"})  # the same key again: the last row wins
    monkeypatch.setattr(P, "CACHED_GROUPS", 1)
    lookup = P.previous_rows(_manifest(tmp_path, rows))
    for i in [0, 29, 7, 3, 12]:  # out of order: row groups are read again when needed
        assert lookup.get((f"/data/c/{i:03d}.png", 100 + i, 10**18 + i)) == rows[i]
    assert lookup.get(("/data/c/005.png", 105, 10**18 + 5))["content_hash"] == "later"
    assert lookup.get(("/data/c/001.png", 101, 10**18 + 2)) is None  # another mtime
    assert lookup.get(("/data/c/001.png", 102, 10**18 + 1)) is None  # another size
    assert lookup.get(("/data/c/030.png", 130, 10**18 + 30)) is None  # a scrubbed copy's row
    assert len(lookup) == 31
    assert lookup._keys.nbytes == 8 * 31  # one 8-byte key a reusable row: digest bits + row


def test_keys_sharing_the_digest_bits_above_the_row_number_collide(tmp_path, monkeypatch):
    """A key keeps only the digest's bits above the row number's: keys whose digests differ
    only below them share a key; the last row of them is the one found (and checked)."""
    monkeypatch.setattr(P, "_digest", lambda origin, size, mtime: (99 << 40) | (size % 2))
    rows = [_row(i) for i in range(5)]  # row numbers take 3 bits: size % 2 is dropped
    lookup = P.previous_rows(_manifest(tmp_path, rows))
    assert lookup.get(("/data/c/004.png", 104, 10**18 + 4)) == rows[4]
    assert lookup.get(("/data/c/003.png", 103, 10**18 + 3)) is None  # decoded again


def test_a_digest_shared_by_two_keys_never_gives_the_wrong_row(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(P, "_digest", lambda origin, size, mtime: 7)  # every key collides
    lookup = P.previous_rows(_manifest(tmp_path, [_row(i) for i in range(3)]))
    assert lookup.get(("/data/c/002.png", 102, 10**18 + 2)) == _row(2)  # the last one
    assert lookup.get(("/data/c/000.png", 100, 10**18)) is None  # decoded again instead


def test_no_manifest_or_an_old_one_gives_no_rows(tmp_path) -> None:
    assert len(P.previous_rows(None)) == 0
    assert P.previous_rows(tmp_path / "none.parquet").get(("/a.png", 1, 1)) is None
    old = tmp_path / "old.parquet"
    pq.write_table(pa.Table.from_pylist([{"path": "/a.png", "bytes": 1}]), old)
    assert P.previous_rows(old).get(("/a.png", 1, 0)) is None
