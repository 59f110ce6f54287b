"""COCO instance annotations as semantic masks: polygons rasterised and RLE decoded here.

Read without pycocotools (a test dependency only, to cross-check). A COCO file that cannot be
read as COCO is one DataError for the whole file; a bad annotation quarantines its image
(`ImageDecodeError` with the reason).

An image's mask starts as background (index 0) and its annotations are painted on it, the
largest area first, so a small object lying on a large one stays visible; crowd annotations
(iscrowd: 1) are painted like the others (they are pixels of their class).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dlworkflow.errors import DataError
from dlworkflow.store import ImageDecodeError
from dlworkflow.store.images import check_dimensions

MAX_COCO_BYTES = 1 << 30  # a COCO file larger than 1 GiB is refused before it is parsed


@dataclass
class CocoImage:
    id: Any
    file_name: str
    width: int | None
    height: int | None
    annotations: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class CocoMasks:
    """A parsed COCO file: its images (with their annotations) and category names."""

    path: Path
    images: list[CocoImage]
    categories: dict[Any, str]  # category id -> name

    def names(self, classes: list[str] | None) -> list[str]:
        """The mask's class names: data.classes when set, else background then the
        categories in id order."""
        if classes:
            return list(classes)
        order = sorted(self.categories, key=lambda c: (str(type(c)), c))
        return ["background", *(self.categories[c] for c in order)]

    def mask(
        self, image: CocoImage, names: list[str], *, max_pixels: int, max_side: int
    ) -> np.ndarray:
        """The (H, W) int32 mask of indices into `names`; ImageDecodeError when an
        annotation cannot be used."""
        if image.width is None or image.height is None:
            raise ImageDecodeError("COCO image entry without width and height")
        check_dimensions(image.width, image.height, max_pixels=max_pixels, max_side=max_side)
        index = {name: i for i, name in enumerate(names)}
        out = np.zeros((image.height, image.width), dtype=np.int32)
        for ann in sorted(image.annotations, key=_area, reverse=True):
            where = f"COCO annotation {ann.get('id', '?')}"
            name = self.categories.get(ann.get("category_id"))
            if name is None:
                raise ImageDecodeError(f"{where}: unknown category_id {ann.get('category_id')!r}")
            if name not in index:
                raise ImageDecodeError(f"{where}: category {name!r} is not in data.classes")
            region = annotation_mask(ann.get("segmentation"), image.height, image.width, where)
            out[region] = index[name]
        return out


def _area(ann: dict[str, Any]) -> float:
    area = ann.get("area")
    return float(area) if isinstance(area, (int, float)) else 0.0


def read_coco(path: Path) -> CocoMasks:
    """Parse a COCO JSON file; DataError (the whole file) when it is not COCO."""
    try:
        size = path.stat().st_size
        if size > MAX_COCO_BYTES:
            raise _bad(path, f"{size:,} bytes (limit {MAX_COCO_BYTES:,})")
        doc = json.loads(path.read_bytes())
    except (OSError, ValueError) as exc:  # json.JSONDecodeError and UnicodeDecodeError too
        raise _bad(path, f"not readable as JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise _bad(path, f"a JSON {type(doc).__name__}, not an object")
    for key in ("images", "annotations", "categories"):
        if not isinstance(doc.get(key), list):
            raise _bad(path, f"no {key!r} list")
    categories = {}
    for cat in doc["categories"]:
        if not isinstance(cat, dict) or "id" not in cat or not isinstance(cat.get("name"), str):
            raise _bad(path, f"a category without an id and a name: {str(cat)[:80]}")
        categories[cat["id"]] = cat["name"]
    images: dict[Any, CocoImage] = {}
    for entry in doc["images"]:
        if not isinstance(entry, dict) or not isinstance(entry.get("file_name"), str):
            raise _bad(path, f"an image entry without a file_name: {str(entry)[:80]}")
        if entry.get("id") in images:
            raise _bad(path, f"image id {entry.get('id')!r} twice")
        images[entry.get("id")] = CocoImage(
            id=entry.get("id"),
            file_name=entry["file_name"],
            width=_int(entry.get("width")),
            height=_int(entry.get("height")),
        )
    for ann in doc["annotations"]:
        if not isinstance(ann, dict) or ann.get("image_id") not in images:
            raise _bad(path, f"an annotation of no listed image: {str(ann)[:80]}")
        images[ann["image_id"]].annotations.append(ann)
    return CocoMasks(path=path, images=list(images.values()), categories=categories)


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _bad(path: Path, received: str) -> DataError:
    return DataError(
        f"The COCO file {path.name!r} cannot be read as COCO annotations.",
        expected="a JSON object with 'images' (id, file_name, width, height), 'annotations' "
        "(image_id, category_id, segmentation: polygons or RLE) and 'categories' (id, name)",
        received=received,
        fix="export the annotations again as COCO JSON, or point data.masks at a folder of "
        "index or palette PNG masks",
        context={"path": str(path)},
    )


def annotation_mask(segmentation: Any, height: int, width: int, where: str) -> np.ndarray:
    """Bool (H, W): the pixels of one annotation's polygons or RLE."""
    if isinstance(segmentation, list):
        return polygons_mask(segmentation, height, width, where)
    if isinstance(segmentation, dict):
        size = segmentation.get("size")
        if list(size or []) != [height, width]:
            raise ImageDecodeError(
                f"{where}: RLE size {size} is not the image's [{height}, {width}]"
            )
        return rle_decode(segmentation, where=where).astype(bool)
    raise ImageDecodeError(f"{where}: segmentation is neither polygons nor RLE")


def polygons_mask(polygons: list[Any], height: int, width: int, where: str) -> np.ndarray:
    """Bool (H, W): the union of the polygons [x1, y1, x2, y2, ...] (pixel coordinates)."""
    out = np.zeros((height, width), dtype=bool)
    for poly in polygons:
        if not isinstance(poly, list) or len(poly) < 6 or len(poly) % 2:
            raise ImageDecodeError(f"{where}: a polygon needs an even number (>= 6) of coordinates")
        if not all(isinstance(v, (int, float)) and np.isfinite(v) for v in poly):
            raise ImageDecodeError(f"{where}: a polygon coordinate is not a finite number")
        out |= polygon_fill(np.asarray(poly[::2], float), np.asarray(poly[1::2], float), out.shape)
    return out


def polygon_fill(xs: np.ndarray, ys: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Bool (H, W): the pixels whose centre lies inside the polygon (even-odd rule). COCO's
    convention: pixel i covers [i, i + 1), so a square from 10 to 40 fills pixels 10-39, as
    pycocotools does (PIL's ImageDraw fills the edge pixels too: a ring of pixels more)."""
    height, width = shape
    out = np.zeros(shape, dtype=bool)
    first = max(int(np.floor(ys.min() - 0.5)), 0)
    last = min(int(np.ceil(ys.max() + 0.5)), height)
    if first >= last:
        return out
    cy = np.arange(first, last) + 0.5
    x0, y0, x1, y1 = xs, ys, np.roll(xs, -1), np.roll(ys, -1)
    crosses = (y0[None] <= cy[:, None]) != (y1[None] <= cy[:, None])  # half-open: once
    with np.errstate(divide="ignore", invalid="ignore"):
        at = x0[None] + (cy[:, None] - y0[None]) / (y1 - y0)[None] * (x1 - x0)[None]
    cx = np.arange(width) + 0.5
    for row, (hits, xs_row) in enumerate(zip(crosses, at)):
        edges = np.sort(xs_row[hits])
        if len(edges) >= 2:
            out[first + row] = np.searchsorted(edges, cx, side="right") % 2 == 1
    return out


def rle_decode(rle: dict[str, Any], *, where: str = "RLE") -> np.ndarray:
    """uint8 (H, W) 0/1 from COCO RLE: counts (a list, or the compressed string) of
    alternating runs of 0 and 1 over the column-major flattened mask, starting with 0."""
    size = rle.get("size")
    if not (isinstance(size, list) and len(size) == 2 and all(_int(v) is not None for v in size)):
        raise ImageDecodeError(f"{where}: RLE without a [height, width] size")
    height, width = size
    counts = rle.get("counts")
    if isinstance(counts, str):
        runs = rle_from_string(counts, where=where)
    elif isinstance(counts, list) and all(_int(c) is not None for c in counts):
        runs = list(counts)
    else:
        raise ImageDecodeError(f"{where}: RLE counts are neither a list of integers nor a string")
    if any(r < 0 for r in runs) or sum(runs) != height * width:
        raise ImageDecodeError(
            f"{where}: RLE runs cover {sum(runs):,} pixels, not {height}x{width} = "
            f"{height * width:,}"
        )
    values = np.zeros(len(runs), dtype=np.uint8)
    values[1::2] = 1
    flat = np.repeat(values, runs)
    return flat.reshape(width, height).T.copy()  # column-major


def rle_from_string(text: str, *, where: str = "RLE") -> list[int]:
    """pycocotools' compressed counts (maskApi.c rleFrString): 5 bits per character from
    '0' (48), 0x20 marks that more follow, 0x10 of the last one is the sign; from the third
    run on, each is stored as the difference to the run two before."""
    counts: list[int] = []
    pos = 0
    while pos < len(text):
        value, shift, more = 0, 0, True
        while more:
            if pos >= len(text):
                raise ImageDecodeError(f"{where}: compressed RLE ends inside a number")
            c = ord(text[pos]) - 48
            if not 0 <= c < 64:
                raise ImageDecodeError(f"{where}: compressed RLE holds {text[pos]!r}")
            value |= (c & 0x1F) << shift
            more = bool(c & 0x20)
            pos += 1
            shift += 5
            if not more and c & 0x10:
                value |= -1 << shift
        if len(counts) > 2:
            value += counts[-2]
        counts.append(value)
    return counts
