"""Tiny REAL detection data for tests: crops of deepforest's OSBS_029.png (a 400x400 NEON
airborne image of tree crowns) with the real boxes of its VOC file that lie inside each crop,
written in the layouts dlw ingest reads (VOC beside, COCO JSON, YOLO txt, CSV)."""

from __future__ import annotations

import csv
import json
from functools import lru_cache
from pathlib import Path

import numpy as np

Box = tuple[float, float, float, float, str]

#: (x, y) top-left corners of the crops in OSBS_029.png; every crop holds whole trees
CORNERS = ((0, 0), (96, 96), (200, 40), (40, 250), (260, 260))
SIDE = 96


@lru_cache(maxsize=1)
def osbs() -> tuple[np.ndarray, tuple[Box, ...]]:
    """OSBS_029's RGB pixels and its 61 boxes."""
    from PIL import Image

    from dlworkflow.data.annotations import read_voc
    from dlworkflow.datasets.trees import data_folder

    folder = data_folder()
    pixels = np.asarray(Image.open(folder / "OSBS_029.png").convert("RGB"))
    return pixels, tuple(read_voc(folder / "OSBS_029.xml").boxes)


def crop(k: int, side: int = SIDE) -> tuple[np.ndarray, list[Box]]:
    """The k-th crop and the real boxes wholly inside it (crop coordinates)."""
    pixels, boxes = osbs()
    x0, y0 = CORNERS[k]
    inside = [
        (x1 - x0, y1 - y0, x2 - x0, y2 - y0, name)
        for x1, y1, x2, y2, name in boxes
        if x1 >= x0 and y1 >= y0 and x2 <= x0 + side and y2 <= y0 + side
    ]
    return pixels[y0 : y0 + side, x0 : x0 + side].copy(), inside


def write_image(path: Path, pixels: np.ndarray) -> Path:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
    return path


def voc_xml(name: str, size: tuple[int, int], boxes: list[Box]) -> str:
    objects = "".join(
        f"<object><name>{c}</name><bndbox><xmin>{x1:g}</xmin><ymin>{y1:g}</ymin>"
        f"<xmax>{x2:g}</xmax><ymax>{y2:g}</ymax></bndbox></object>"
        for x1, y1, x2, y2, c in boxes
    )
    return (
        f"<annotation><filename>{name}</filename><size><width>{size[0]}</width>"
        f"<height>{size[1]}</height><depth>3</depth></size>{objects}</annotation>"
    )


def voc_folder(root: Path, n: int = 3, *, boxes: dict[int, list[Box]] | None = None) -> Path:
    """root/crop<k>.png with root/crop<k>.xml beside; `boxes` replaces a crop's boxes."""
    for k in range(n):
        pixels, real = crop(k)
        write_image(root / f"crop{k}.png", pixels)
        chosen = (boxes or {}).get(k, real)
        (root / f"crop{k}.xml").write_text(voc_xml(f"crop{k}.png", (SIDE, SIDE), chosen))
    return root


def coco_json(path: Path, images: dict[str, list[Box]], size: int = SIDE) -> Path:
    names = sorted({b[4] for boxes in images.values() for b in boxes}) or ["Tree"]
    doc = {
        "images": [
            {"id": i + 1, "file_name": name, "width": size, "height": size}
            for i, name in enumerate(images)
        ],
        "annotations": [
            {
                "id": len(images) * 1000 + i * 100 + j,
                "image_id": i + 1,
                "bbox": [x1, y1, x2 - x1, y2 - y1],
                "category_id": names.index(c) + 1,
            }
            for i, boxes in enumerate(images.values())
            for j, (x1, y1, x2, y2, c) in enumerate(boxes)
        ],
        "categories": [{"id": i + 1, "name": n} for i, n in enumerate(names)],
    }
    path.write_text(json.dumps(doc))
    return path


def boxes_csv(path: Path, images: dict[str, list[Box]]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "xmin", "ymin", "xmax", "ymax", "label"])
        for name, boxes in images.items():
            if not boxes:
                writer.writerow([name, "", "", "", "", ""])
            for x1, y1, x2, y2, c in boxes:
                writer.writerow([name, x1, y1, x2, y2, c])
    return path


def yolo_txt(boxes: list[Box], names: list[str], size: int = SIDE) -> str:
    return "".join(
        f"{names.index(c)} {(x1 + x2) / 2 / size:.6f} {(y1 + y2) / 2 / size:.6f} "
        f"{(x2 - x1) / size:.6f} {(y2 - y1) / size:.6f}\n"
        for x1, y1, x2, y2, c in boxes
    )
