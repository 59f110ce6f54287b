"""The content part of reading one image file: decode it (the size limits checked from the
header), hash its bytes, compute the statistics explore uses, and make the array the pixel bank
keeps of a small image. The same function runs in the ingest's own process and in its worker
processes (data/parallel_read.py), so the rows and quarantine reasons are the same either way.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

from dlworkflow.fileio import sha256_file
from dlworkflow.store import ImageDecodeError, decode_image
from dlworkflow.store.images import image_stats
from dlworkflow.store.pixel_bank import bank_array


class Decoded(NamedTuple):
    """What decoding one file gives its manifest row (plus the small image for the bank)."""

    content_hash: str
    width: int
    height: int
    mode: str
    stats: dict[str, Any]  # phash, brightness, contrast, dark, bright
    small: Any | None  # the bank's array when the image is small enough to keep, else None


def decode_file(path: Path, *, max_pixels: int, max_side: int) -> Decoded:
    """Decode, hash and describe one image file; ImageDecodeError (with its reason) when it
    cannot be used."""
    img = decode_image(path, max_pixels=max_pixels, max_side=max_side)
    return Decoded(
        content_hash=sha256_file(path),
        width=img.width,
        height=img.height,
        mode=img.mode,
        stats=image_stats(img),
        small=bank_array(img),
    )


def decode_chunk(paths: list[str], max_pixels: int, max_side: int) -> list[Decoded | str]:
    """A worker process's task: every path decoded, in order; a file that cannot be used
    gives its quarantine reason (a str) instead."""
    out: list[Decoded | str] = []
    for path in paths:
        try:
            out.append(decode_file(Path(path), max_pixels=max_pixels, max_side=max_side))
        except ImageDecodeError as exc:
            out.append(exc.reason)
    return out
