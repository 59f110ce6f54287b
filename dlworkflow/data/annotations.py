"""Box annotation files for object detection: COCO JSON, Pascal VOC XML, YOLO txt and a CSV of
path,xmin,ymin,xmax,ymax,label.

Each reader returns the boxes of an image in pixels, (x1, y1, x2, y2, class), as the file has
them: checking them against the image (outside, degenerate, unknown class) is the scan's
(data/box_source.py). A file that cannot be read as its format (bad JSON, bad XML, missing
columns or keys) raises ONE DataError naming the file and the problem; a single box whose
value is unusable (not a number) becomes the image's `problem` and the image is quarantined.

Every file is read with a size limit, and XML with neither a DOCTYPE nor an ENTITY
declaration (no entity expansion, no external entities: defusedxml's protections without it).
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dlworkflow.errors import DataError

Box = tuple[float, float, float, float, str]  # x1, y1, x2, y2 (pixels), class

FORMATS = ("coco", "voc", "yolo", "csv")
MAX_FILE_BYTES = 256 * 1024 * 1024  # one COCO JSON or CSV of every box
MAX_PER_IMAGE_BYTES = 16 * 1024 * 1024  # one VOC XML or YOLO txt (a single image's boxes)
BOX_COLUMNS = ("xmin", "ymin", "xmax", "ymax")
_DECLARATION = re.compile(rb"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)


@dataclass
class Annotated:
    """The boxes of one image as its annotation gives them; `problem`: why the image is
    quarantined before its boxes are checked (a value that is not a number)."""

    boxes: list[Box] = field(default_factory=list)
    problem: str | None = None


def malformed(path: Path, problem: str, *, expected: str, fix: str = "") -> DataError:
    return DataError(
        f"The annotation file {path} cannot be read: {problem}.",
        expected=expected,
        received=problem,
        fix=fix or "correct the file (or point data.annotations at the right one) and ingest again",
        context={"file": str(path)},
    )


def read_limited(path: Path, limit: int, *, what: str) -> bytes:
    """The file's bytes, refused beyond `limit` (a DataError naming the file)."""
    try:
        size = path.stat().st_size
        if size > limit:
            raise malformed(
                path,
                f"{size:,} bytes, more than the {limit:,} an annotation file may have",
                expected=f"a {what} of at most {limit:,} bytes",
            )
        return path.read_bytes()
    except OSError as exc:
        raise malformed(
            path, f"cannot open it ({exc.strerror})", expected=f"a readable {what}"
        ) from None


def number(value: Any) -> float | None:
    """A finite float, or None."""
    if isinstance(value, bool):
        return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


def coordinates(values: Sequence[Any], where: str) -> tuple[list[float], str | None]:
    """Four numbers, or the reason they are not."""
    out = []
    for name, value in zip(BOX_COLUMNS, values):
        parsed = number(value)
        if parsed is None:
            return [], f"box not a number: {where} has {name} {str(value)[:30]!r}"
        out.append(parsed)
    return out, None


# --- COCO ---------------------------------------------------------------------------------


def read_coco(path: Path) -> dict[str, Annotated]:
    """file_name -> the boxes of the image (bbox [x, y, w, h] -> x1, y1, x2, y2). Every image
    of `images` is listed, those without annotations as negatives."""
    expected = (
        "COCO JSON: {images: [{id, file_name}], annotations: [{image_id, bbox, category_id}], "
        "categories: [{id, name}]}"
    )
    try:
        doc = json.loads(read_limited(path, MAX_FILE_BYTES, what="COCO JSON file"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise malformed(path, f"not valid JSON ({exc})", expected=expected) from None
    if not isinstance(doc, dict) or not all(
        isinstance(doc.get(k), list) for k in ("images", "annotations", "categories")
    ):
        found = sorted(doc) if isinstance(doc, dict) else type(doc).__name__
        raise malformed(
            path, f"no images, annotations and categories lists (found {found})", expected=expected
        )
    names = _coco_categories(path, doc["categories"], expected)
    images: dict[Any, str] = {}
    out: dict[str, Annotated] = {}
    for i, image in enumerate(doc["images"]):
        if not isinstance(image, dict) or "id" not in image or not image.get("file_name"):
            raise malformed(path, f"images[{i}] has no id or file_name", expected=expected)
        images[image["id"]] = str(image["file_name"])
        out.setdefault(str(image["file_name"]), Annotated())
    for i, ann in enumerate(doc["annotations"]):
        _coco_box(path, i, ann, images, names, out, expected)
    return out


def _coco_categories(path: Path, categories: list[Any], expected: str) -> dict[Any, str]:
    names = {}
    for i, cat in enumerate(categories):
        if not isinstance(cat, dict) or "id" not in cat or not str(cat.get("name", "")).strip():
            raise malformed(path, f"categories[{i}] has no id or name", expected=expected)
        names[cat["id"]] = str(cat["name"]).strip()
    return names


def _coco_box(
    path: Path,
    i: int,
    ann: Any,
    images: dict[Any, str],
    names: dict[Any, str],
    out: dict[str, Annotated],
    expected: str,
) -> None:
    if not isinstance(ann, dict) or not isinstance(ann.get("bbox"), list) or len(ann["bbox"]) != 4:
        raise malformed(path, f"annotations[{i}] has no bbox of 4 numbers", expected=expected)
    if ann.get("image_id") not in images:
        raise malformed(
            path,
            f"annotations[{i}] refers to image_id {ann.get('image_id')!r}, which no image has",
            expected=expected,
        )
    target = out[images[ann["image_id"]]]
    if target.problem:
        return
    if ann.get("category_id") not in names:
        label = f"category_id {ann.get('category_id')!r}"
        target.problem = f"unknown label: annotations[{i}] has {label}, not in categories"
        return
    x, y, w, h = ann["bbox"]
    values, problem = coordinates([x, y, w, h], f"annotations[{i}]")
    if problem:
        target.problem = problem
        return
    x, y, w, h = values
    target.boxes.append((x, y, x + w, y + h, names[ann["category_id"]]))


# --- Pascal VOC ---------------------------------------------------------------------------


def read_voc(path: Path) -> Annotated:
    """The <object>s of one VOC XML file: <name> and <bndbox> xmin, ymin, xmax, ymax (taken as
    pixel coordinates, as written)."""
    import xml.etree.ElementTree as ET

    expected = "Pascal VOC XML: <annotation> with <object><name/><bndbox><xmin/>...</bndbox>"
    data = read_limited(path, MAX_PER_IMAGE_BYTES, what="VOC XML file")
    if _DECLARATION.search(data):
        raise malformed(
            path,
            "it declares a DOCTYPE or ENTITY, which annotation files never need (refused: "
            "entity expansion)",
            expected=expected,
            fix="remove the <!DOCTYPE ...> / <!ENTITY ...> declarations",
        )
    try:
        root = ET.fromstring(data)  # noqa: S314 - no DOCTYPE/ENTITY (checked above), size capped
    except ET.ParseError as exc:
        raise malformed(path, f"not well-formed XML ({exc})", expected=expected) from None
    if root.tag != "annotation":
        raise malformed(path, f"the root element is <{root.tag}>", expected=expected)
    out = Annotated()
    for i, obj in enumerate(root.findall("object"), start=1):
        box = obj.find("bndbox")
        if box is None:
            raise malformed(path, f"<object> {i} has no <bndbox>", expected=expected)
        raw = [(box.findtext(k) or "").strip() for k in BOX_COLUMNS]
        values, problem = coordinates(raw, f"box {i}")
        if problem:
            return Annotated(problem=problem)
        name = (obj.findtext("name") or "").strip()
        out.boxes.append((values[0], values[1], values[2], values[3], name))
    return out


# --- YOLO ---------------------------------------------------------------------------------


def read_yolo(path: Path, names: Sequence[str], size: tuple[int, int]) -> Annotated:
    """One YOLO txt file: `class cx cy w h` per line, normalised to 0..1 -> pixels of a
    width x height image. A class index without a name is an unknown label."""
    expected = "YOLO txt: one line per box, `class_index cx cy w h` (0..1)"
    try:
        text = read_limited(path, MAX_PER_IMAGE_BYTES, what="YOLO txt file").decode("utf-8-sig")
    except UnicodeDecodeError:
        raise malformed(path, "not UTF-8 text", expected=expected) from None
    width, height = size
    out = Annotated()
    for n, line in enumerate(text.splitlines(), start=1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 5:
            raise malformed(path, f"line {n} has {len(parts)} values, not 5", expected=expected)
        index = number(parts[0])
        values = [number(p) for p in parts[1:]]
        if index is None or any(v is None for v in values):
            out.problem = f"box not a number: box {len(out.boxes) + 1} (line {n}) is {line!r}"
            return out
        if index != int(index) or not 0 <= index < len(names):
            out.problem = (
                f"unknown label: box {len(out.boxes) + 1} (line {n}) has class index "
                f"{parts[0]}, beyond the {len(names)} class names"
            )
            return out
        cx, cy, w, h = (float(v) for v in values)  # type: ignore[arg-type]
        out.boxes.append(
            (
                (cx - w / 2) * width,
                (cy - h / 2) * height,
                (cx + w / 2) * width,
                (cy + h / 2) * height,
                names[int(index)],
            )
        )
    return out


def yolo_names(folders: Sequence[Path], classes: Sequence[str] | None) -> list[str]:
    """YOLO class names: classes.txt (one per line) or data.yaml's `names` in the first of
    `folders` that has one, else data.classes."""
    for folder in folders:
        listing = folder / "classes.txt"
        if listing.is_file():
            text = read_limited(listing, MAX_PER_IMAGE_BYTES, what="classes.txt")
            return [line.strip() for line in text.decode("utf-8-sig").splitlines() if line.strip()]
        for name in ("data.yaml", "dataset.yaml"):
            if (folder / name).is_file():
                return _yaml_names(folder / name)
    if classes:
        return list(classes)
    raise DataError(
        "YOLO annotations need the class names, and none were found.",
        expected="classes.txt (one name per line) or data.yaml with `names:` beside the "
        "annotations or the images, or data.classes in dlworkflow.yaml",
        received=f"none in {', '.join(str(f) for f in folders)}",
        fix="add classes.txt, or list the class names in data.classes (index i = name i)",
    )


def _yaml_names(path: Path) -> list[str]:
    import yaml

    expected = "a YAML file with `names:` as a list, or a mapping index -> name"
    try:
        doc = yaml.safe_load(read_limited(path, MAX_PER_IMAGE_BYTES, what="data.yaml"))
    except yaml.YAMLError as exc:
        raise malformed(path, f"not valid YAML ({str(exc)[:200]})", expected=expected) from None
    names = doc.get("names") if isinstance(doc, dict) else None
    if isinstance(names, dict) and all(isinstance(k, int) for k in names):
        return [str(names[k]) for k in sorted(names)]
    if isinstance(names, list) and names:
        return [str(n) for n in names]
    raise malformed(path, "no `names` list or mapping", expected=expected)


# --- CSV ----------------------------------------------------------------------------------


def read_csv(path: Path, *, path_column: str, label_column: str) -> dict[str, Annotated]:
    """path -> boxes, one row per box; a row whose box and label cells are all empty lists an
    image with no boxes (a negative)."""
    columns = [path_column, *BOX_COLUMNS, label_column]
    expected = f"a CSV with the columns {','.join(columns)} (one row per box)"
    try:
        text = read_limited(path, MAX_FILE_BYTES, what="CSV file").decode("utf-8-sig")
    except UnicodeDecodeError:
        raise malformed(path, "not UTF-8 text", expected=expected) from None
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = reader.fieldnames or []
    missing = [c for c in columns if c not in header]
    if missing:
        raise malformed(
            path,
            f"the column{'s' if len(missing) > 1 else ''} {', '.join(missing)} "
            f"{'are' if len(missing) > 1 else 'is'} missing (found {','.join(header) or 'none'})",
            expected=expected,
            fix="rename the columns (data.path_column and data.label_column name the path and "
            "label columns)",
        )
    out: dict[str, Annotated] = {}
    for row_no, row in enumerate(reader, start=2):
        name = (row.get(path_column) or "").strip()
        if not name:
            continue  # no image to quarantine; counted by nothing
        target = out.setdefault(name, Annotated())
        cells = [(row.get(c) or "").strip() for c in BOX_COLUMNS]
        label = (row.get(label_column) or "").strip()
        if target.problem or (not any(cells) and not label):
            continue
        values, problem = coordinates(cells, f"line {row_no}")
        if problem:
            target.problem = problem
            continue
        target.boxes.append((values[0], values[1], values[2], values[3], label))
    return out


def detect_format(location: Path, chosen: str) -> str:
    """data.annotation_format, or (auto) from the file: .json -> coco, .csv -> csv; a folder
    of .xml files -> voc, of .txt files -> yolo."""
    if chosen != "auto":
        return chosen
    if location.is_file():
        kind = {".json": "coco", ".csv": "csv", ".xml": "voc", ".txt": "yolo"}.get(
            location.suffix.lower()
        )
        if kind in ("coco", "csv"):
            return kind
    elif location.is_dir():
        xml = next(location.rglob("*.xml"), None)
        txt = next((p for p in location.rglob("*.txt") if p.name != "classes.txt"), None)
        if xml is not None and txt is None:
            return "voc"
        if txt is not None and xml is None:
            return "yolo"
        if xml is not None:
            raise DataError(
                f"{location} holds both VOC .xml and YOLO .txt files.",
                expected="one annotation format",
                received="both",
                fix="set data.annotation_format to voc or yolo",
            )
    raise DataError(
        f"Cannot tell the annotation format of {location}.",
        expected="a COCO .json file, a .csv of path,xmin,ymin,xmax,ymax,label, or a folder of "
        "VOC .xml or YOLO .txt files (one per image)",
        received=str(location),
        fix="set data.annotations to the annotations, and data.annotation_format "
        f"({'|'.join(FORMATS)})",
    )
