"""Tiling of large detection images at ingest (data.tiles: {size, overlap, min_visible, block}).

Each image is cut into square tiles of `size` pixels that share `overlap` pixels with their
neighbours; the last row and column are shifted inward so that every tile lies inside the
image (an image smaller than a tile is one tile: the whole image). A box cut by a tile edge is
kept, clipped to the tile, when at least `min_visible` of its area lies inside; otherwise the
tile does not see it. Tiles are written as PNG files under .dlw/tiles/, named by the hash of
their pixels (the same tile is written once); the original image is only read. The tiles of
one image form one split group; with `block` the tiles of one block of the image do
(`tile_group`), so a single large image can feed train, validation and test.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dlworkflow.errors import ConfigError

if TYPE_CHECKING:
    from PIL import Image

Box = tuple[float, float, float, float, str]  # x1, y1, x2, y2 (pixels), class


@dataclass(frozen=True)
class Tile:
    """One tile: its place in the source image (pixels, x2 and y2 exclusive) and its boxes in
    the tile's own pixels."""

    x1: int
    y1: int
    x2: int
    y2: int
    boxes: tuple[Box, ...]

    @property
    def size(self) -> tuple[int, int]:
        return self.x2 - self.x1, self.y2 - self.y1

    @property
    def window(self) -> tuple[int, int, int, int]:
        return self.x1, self.y1, self.x2, self.y2


def starts(length: int, size: int, overlap: int) -> list[int]:
    """The first pixel of each tile along one side: a step of size - overlap, the last tile
    shifted inward to end at the border."""
    if length <= size:
        return [0]
    step = size - overlap
    out = list(range(0, length - size, step))
    out.append(length - size)
    return sorted(set(out))


def check_tiles(size: int, overlap: int) -> None:
    if overlap >= size:
        raise ConfigError(
            f"data.tiles.overlap ({overlap}) must be smaller than data.tiles.size ({size}).",
            expected="0 <= overlap < size",
            received=f"size {size}, overlap {overlap}",
            fix="lower data.tiles.overlap (a quarter of the size is common) in dlworkflow.yaml",
        )


def plan_tiles(
    width: int, height: int, boxes: Sequence[Box], *, size: int, overlap: int, min_visible: float
) -> list[Tile]:
    """Every tile of a width x height image, with the boxes it keeps."""
    check_tiles(size, overlap)
    tiles = []
    for y in starts(height, size, overlap):
        for x in starts(width, size, overlap):
            x2, y2 = min(x + size, width), min(y + size, height)
            tiles.append(Tile(x, y, x2, y2, clip_boxes(boxes, (x, y, x2, y2), min_visible)))
    return tiles


def clip_boxes(
    boxes: Sequence[Box], window: tuple[int, int, int, int], min_visible: float
) -> tuple[Box, ...]:
    """The boxes that show enough inside `window`, clipped to it, in its coordinates."""
    wx1, wy1, wx2, wy2 = window
    kept = []
    for x1, y1, x2, y2, name in boxes:
        cx1, cy1, cx2, cy2 = max(x1, wx1), max(y1, wy1), min(x2, wx2), min(y2, wy2)
        if cx2 <= cx1 or cy2 <= cy1:
            continue
        area = (x2 - x1) * (y2 - y1)
        if area <= 0 or (cx2 - cx1) * (cy2 - cy1) < min_visible * area - 1e-9:
            continue
        kept.append((cx1 - wx1, cy1 - wy1, cx2 - wx1, cy2 - wy1, name))
    return tuple(kept)


def write_tile(image: Image.Image, tile: Tile, folder: Path) -> Path:
    """The tile's pixels as folder/<sha256 of the PNG>.png (written once, atomically)."""
    import io

    from dlworkflow.fileio import atomic_write_bytes

    crop = image.crop((tile.x1, tile.y1, tile.x2, tile.y2))
    buffer = io.BytesIO()
    crop.save(buffer, format="PNG", compress_level=1)
    data = buffer.getvalue()
    target = folder / f"{hashlib.sha256(data).hexdigest()}.png"
    if not target.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(target, data)
    return target


def tiles_folder(state: Path) -> Path:
    """Where the tiles of a project live (under its .dlw state)."""
    return state / "tiles"


def tile_id(sample_id: str, tile: Tile) -> str:
    """A tile's sample id: the image's, and the tile's top-left corner."""
    return f"{sample_id}@{tile.x1}_{tile.y1}"


def tile_group(sample_id: str, tile: Tile, block: int | None) -> str:
    """The split group of a tile: its image's sample id, or with `block` (pixels, a multiple
    of the tile size, no overlap) the block of that image holding the tile's top-left corner.
    A last tile shifted inward overlaps only the tile before it, which starts in the same
    block (both lie within one tile size of each other, and a block is whole tiles)."""
    if block is None:
        return sample_id
    return f"{sample_id}#block{tile.x1 // block}_{tile.y1 // block}"


def describe(tiles: dict[str, Any] | None) -> str:
    if not tiles:
        return "whole images"
    blocks = f", grouped in blocks of {tiles['block']} px" if tiles.get("block") else ""
    return f"tiles of {tiles['size']} px, overlap {tiles['overlap']} px{blocks}"
