"""The last manifest's image rows, looked up by (original path, size, modification time) for an
incremental re-ingest, in memory that stays small however many rows it holds: one sorted array
of 8 bytes a row, each the top bits of a 64-bit digest of the key with the row's number in the
low bits, and the rows read back from the Parquet file a row group at a time when asked for. A
row is reused only when its own path, size and time equal the key (two keys sharing the digest
bits: the file is decoded again; about 0.03 files at a million rows, whose numbers take 20
bits). A re-ingest asks in about the manifest's own order, so each row group is read about
once. (Digests and row numbers in two arrays took 16 bytes a row, and 56 MB while they were
sorted at a million rows; a dict of the rows took about 1.3 KB a row: 1.3 GB.)
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from pathlib import Path
from typing import Any

#: the manifest columns of an image's content, reused for an unchanged file (the label and id
#: come from this ingest)
IMAGE_KEYS = (
    "path",
    "origin_path",
    "content_hash",
    "bytes",
    "mtime_ns",
    "width",
    "height",
    "mode",
    "phash",
    "brightness",
    "contrast",
    "dark",
    "bright",
)
CACHED_GROUPS = 2  # row groups kept decoded (a re-ingest reads them in order)

Key = tuple[str, int, int]  # (original path, size in bytes, mtime_ns)


class PreviousRows:
    """`get((origin_path, size, mtime_ns))`: the row of that unchanged file in the last
    manifest (only rows read from their original: path == origin_path), else None."""

    def __init__(self, manifest: Path | None) -> None:
        import numpy as np

        self._file: Any = None
        self._keys: Any = np.empty(0, dtype=np.uint64)  # (digest bits, row number), sorted
        self._row_bits = 1  # the low bits of a key that hold the row number
        self._bounds: Any = np.zeros(1, dtype=np.int64)  # the first row of each row group
        self._groups: OrderedDict[int, list[dict[str, Any]]] = OrderedDict()
        if manifest is not None:
            self._index(manifest)

    def __len__(self) -> int:
        return len(self._keys)

    def get(self, key: Key) -> dict[str, Any] | None:
        import numpy as np

        bits = self._row_bits
        top = _digest(*key) >> bits
        # the last row of a key wins (as in a dict of the rows): the largest row number
        last = (top << bits) | ((1 << bits) - 1)
        i = int(self._keys.searchsorted(np.uint64(last), side="right")) - 1
        if i < 0 or int(self._keys[i]) >> bits != top:
            return None
        row = self._row(int(self._keys[i]) & ((1 << bits) - 1))
        same = (row["origin_path"], row["bytes"], row["mtime_ns"]) == tuple(key)
        return row if same and row["path"] == row["origin_path"] else None

    def _index(self, manifest: Path) -> None:
        import numpy as np
        import pyarrow.parquet as pq

        self._file = pq.ParquetFile(manifest)
        metadata = self._file.metadata
        bits = self._row_bits = max(1, (metadata.num_rows - 1).bit_length())
        keys = np.empty(metadata.num_rows, dtype=np.uint64)  # filled a batch at a time
        count = start = 0
        columns = ["path", "origin_path", "bytes", "mtime_ns"]
        for batch in self._file.iter_batches(batch_size=8192, columns=columns):
            part = batch.to_pydict()
            packed = [
                (_digest(origin, size, mtime) >> bits << bits) | (start + n)
                for n, (path, origin, size, mtime) in enumerate(zip(*(part[c] for c in columns)))
                if path == origin
            ]
            keys[count : count + len(packed)] = packed
            count += len(packed)
            start += batch.num_rows
        self._keys = keys[:count] if count == len(keys) else keys[:count].copy()
        self._keys.sort()  # equal digest bits: by row number, the manifest's order
        bounds = [0]
        for g in range(metadata.num_row_groups):
            bounds.append(bounds[-1] + metadata.row_group(g).num_rows)
        self._bounds = np.asarray(bounds, dtype=np.int64)

    def _row(self, number: int) -> dict[str, Any]:
        group = int(self._bounds.searchsorted(number, side="right")) - 1
        rows = self._groups.get(group)
        if rows is None:
            rows = self._file.read_row_group(group, columns=list(IMAGE_KEYS)).to_pylist()
            self._groups[group] = rows
            while len(self._groups) > CACHED_GROUPS:
                self._groups.popitem(last=False)
        else:
            self._groups.move_to_end(group)
        return dict(rows[number - int(self._bounds[group])])


def previous_rows(manifest: Path | None) -> PreviousRows:
    """The lookup of the manifest at `manifest`: empty when there is none (or None: not an
    image task), or when it was written by an older version without the image columns
    (everything is decoded again)."""
    import pyarrow.parquet as pq

    if manifest is None or not manifest.is_file():
        return PreviousRows(None)
    if not set(IMAGE_KEYS) <= set(pq.read_schema(manifest).names):
        return PreviousRows(None)
    return PreviousRows(manifest)


def _digest(origin: Any, size: Any, mtime_ns: Any) -> int:
    text = f"{origin}\0{size}\0{mtime_ns}".encode("utf-8", "surrogatepass")
    return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "little")
