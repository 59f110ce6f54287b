"""The source of an object-detection project: images and their boxes (data/annotations.py).

Where the boxes are:
- a folder of images with data.annotations null: a VOC .xml or YOLO .txt file beside each
  image (same name), or data.annotations: a folder of them, a COCO JSON or a CSV;
- a COCO JSON or a CSV file as the source: it lists the images (paths relative to its
  folder, which they must lie in; data.root allows another).

Each image becomes one candidate whose label is the compact boxes JSON (tasks/detection.py
dump_boxes), or, with data.tiles, one candidate per tile (a PNG under .dlw/tiles/, its
group the source image, so the tiles of one image never straddle the split). An image is
quarantined, with the reason, when a box lies outside it (beyond a 1 px tolerance; a box
within it is clipped), when a box is degenerate (x2 <= x1 or y2 <= y1), when a box's class is
not in data.classes (or has no name), or when its annotation file is missing (VOC, YOLO). An
image with no boxes is a valid negative.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dlworkflow.data import annotations as A
from dlworkflow.data import tiles as T
from dlworkflow.data.sources import IMAGE_EXTENSIONS, Candidate, SourceScan, _walk
from dlworkflow.errors import DataError
from dlworkflow.store import ImageDecodeError

if TYPE_CHECKING:
    from dlworkflow.config import Data
    from dlworkflow.workspace import Workspace

TOLERANCE = 1.0  # pixels a box may reach beyond the image (clipped); more is quarantined
Box = A.Box


@dataclass
class _Count:
    """What the scan read: accepted images and their boxes; with tiles, the tiles, the boxes
    they hold and the boxes no tile kept (less than min_visible shows in every tile)."""

    images: int = 0
    negatives: int = 0
    boxes: int = 0
    tiles: int = 0
    tile_boxes: int = 0
    lost: int = 0

    def add(self, boxes: list[Box]) -> None:
        """One accepted image."""
        self.images += 1
        self.negatives += not boxes
        self.boxes += len(boxes)

    def note(self, tiles: Any) -> str:
        text = f"{self.boxes:,} boxes in {self.images:,} images ({self.negatives:,} without boxes)"
        if tiles is None or not self.images:
            return text
        return (
            f"{text} -> {self.tiles:,} tiles of {tiles.size} px (overlap {tiles.overlap}) "
            f"holding {self.tile_boxes:,} boxes (a box on two tiles counts twice); "
            f"{self.lost:,} boxes kept by no tile (less than {tiles.min_visible:.0%} of each "
            "shows in any one: data.tiles.min_visible)"
        )


def _noted(
    candidates: Iterator[Candidate], count: _Count, notes: list[str], tiles: Any
) -> Iterator[Candidate]:
    yield from candidates
    notes.append(count.note(tiles))


def scan_boxes(project: Workspace, path: Path) -> SourceScan:
    """The candidates of a detection source (a folder of images, or a COCO JSON / CSV)."""
    data = project.config.data
    annotations = _annotations_path(project, path)
    fmt = A.detect_format(annotations, data.annotation_format)
    if data.tiles is not None:
        T.check_tiles(data.tiles.size, data.tiles.overlap)
    scan = SourceScan(kind=f"{fmt} annotations", candidates=iter(()), location=str(path))
    if fmt in ("coco", "csv"):
        if not annotations.is_file():
            raise _not_a(annotations, f"a {fmt.upper()} file")
        base = path if path.is_dir() else annotations.parent
        roots = _allowed_roots(project, path, base)
        scan.root = str(roots[0])
        listed = (
            A.read_coco(annotations)
            if fmt == "coco"
            else A.read_csv(
                annotations, path_column=data.path_column, label_column=data.label_column
            )
        )
        count = _Count()
        candidates = _listed(project, listed, base, roots, count)
        scan.candidates = _noted(candidates, count, scan.notes, data.tiles)
        return scan
    if not path.is_dir():
        raise _not_a(path, f"a folder of images (the {fmt.upper()} files name them)")
    if not annotations.is_dir():
        raise _not_a(annotations, f"a folder of {fmt.upper()} files")
    count = _Count()
    candidates = _beside(project, path, annotations, fmt, scan.skipped, count)
    scan.candidates = _noted(candidates, count, scan.notes, data.tiles)
    return scan


def _annotations_path(project: Workspace, path: Path) -> Path:
    given = project.config.data.annotations
    if not given:
        return path  # the source itself: a COCO/CSV file, or a folder with the files beside
    location = Path(given).expanduser()
    location = (location if location.is_absolute() else project.root / location).resolve()
    if not location.exists():
        raise DataError(
            f"data.annotations {given!r} does not exist.",
            expected="a COCO .json, a .csv of path,xmin,ymin,xmax,ymax,label, or a folder of "
            "VOC .xml / YOLO .txt files",
            received=str(location),
            fix="correct data.annotations in dlworkflow.yaml (relative paths start at the "
            "project folder), or set it to null to read annotation files beside the images",
        )
    return location


def _not_a(path: Path, what: str) -> DataError:
    return DataError(
        f"{path} is not {what}.",
        expected=what,
        received="a folder" if path.is_dir() else "a file",
        fix="set data.annotations and data.annotation_format to match the files",
    )


def _allowed_roots(project: Workspace, source: Path, base: Path) -> list[Path]:
    """Folders the listed images may lie in: data.root (or `base`), and the installed data
    folder of a built-in dataset whose materialised listing points into it."""
    from dlworkflow.data.tables import data_root

    roots = (
        [data_root(project.config, project.root, base / "_")] if project.config.data.root else []
    )
    roots = roots or [base.resolve()]
    from dlworkflow.data.builtin import installed_folder

    installed = installed_folder(project, source)
    return roots + [installed] if installed is not None else roots


def _listed(
    project: Workspace,
    listed: dict[str, A.Annotated],
    base: Path,
    roots: Sequence[Path],
    count: _Count,
) -> Iterator[Candidate]:
    """Candidates of a COCO JSON or CSV listing: each image (relative to `base`)."""
    for name, annotated in listed.items():
        sample_id = unicodedata.normalize("NFC", name)
        file = (base / name).resolve()
        inside = [root for root in roots if file.is_relative_to(root)]
        if inside and Path(name).is_absolute():  # the id: the path inside its data folder
            sample_id = unicodedata.normalize("NFC", file.relative_to(inside[0]).as_posix())
        if not inside:
            yield Candidate(
                sample_id,
                None,
                path=file,
                problem=f"outside the data folder: {name!r} is not inside {roots[0]} (set "
                "data.root in dlworkflow.yaml to allow another folder)",
            )
            continue
        yield from _image(project, sample_id, file, lambda size, a=annotated: a, count)


def _beside(
    project: Workspace,
    folder: Path,
    annotations: Path,
    fmt: str,
    skipped: list[str],
    count: _Count,
) -> Iterator[Candidate]:
    """Candidates of a folder of images whose VOC / YOLO files are in `annotations`."""
    suffix = ".xml" if fmt == "voc" else ".txt"
    names: list[str] = []
    if fmt == "yolo":
        names = A.yolo_names([annotations, folder], project.config.data.classes)
    for file, problem in _walk(folder, folder, folder.resolve(), skipped, set()):
        rel = unicodedata.normalize("NFC", file.relative_to(folder).as_posix())
        if file.suffix.lower() not in IMAGE_EXTENSIONS:
            if not (file.suffix.lower() in (suffix, ".yaml") or file.name == "classes.txt"):
                skipped.append(rel)
            continue
        if problem is not None:
            yield Candidate(rel, None, path=file, problem=problem)
            continue
        found = _annotation_file(annotations, Path(rel), suffix)
        if found is None:
            yield Candidate(
                rel,
                None,
                path=file,
                problem=f"annotation file missing: no {Path(rel).with_suffix(suffix).name} "
                f"in {annotations}",
            )
            continue

        def read(size: tuple[int, int], found: Path = found) -> A.Annotated:
            return A.read_voc(found) if fmt == "voc" else A.read_yolo(found, names, size)

        yield from _image(project, rel, file, read, count)


def _annotation_file(folder: Path, rel: Path, suffix: str) -> Path | None:
    """folder/<rel with suffix>, or else folder/<file name with suffix>."""
    for candidate in (folder / rel.with_suffix(suffix), folder / (rel.stem + suffix)):
        if candidate.is_file():
            return candidate
    return None


def _image(
    project: Workspace, sample_id: str, file: Path, read: Any, count: _Count
) -> Iterator[Candidate]:
    """One image's candidate(s): checked boxes as the label, tiled when data.tiles is set."""
    data = project.config.data
    try:
        size = image_size(file, data)
        annotated: A.Annotated = read(size)
        if annotated.problem:
            raise ImageDecodeError(annotated.problem)
        boxes = check_boxes(annotated.boxes, size, data.classes)
    except ImageDecodeError as exc:
        yield Candidate(sample_id, None, path=file, problem=exc.reason)
        return
    if data.tiles is None:
        yield Candidate(sample_id, dump_label(size, boxes), path=file)
        count.add(boxes)
    else:
        yield from _tiles(project, sample_id, file, boxes, count)


def _tiles(
    project: Workspace, sample_id: str, file: Path, boxes: list[Box], count: _Count
) -> Iterator[Candidate]:
    from dlworkflow.store import decode_image

    data = project.config.data
    tiles = data.tiles
    assert tiles is not None
    try:
        img = decode_image(file, max_pixels=data.max_image_pixels, max_side=data.max_image_side)
        if _orientation(img) != 1:  # tiles are cut from the image as shown (boxes' pixels)
            from PIL import ImageOps

            img = ImageOps.exif_transpose(img)
    except (ImageDecodeError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or f"cannot apply the EXIF orientation: {exc}"
        yield Candidate(sample_id, None, path=file, problem=reason)
        return
    folder = T.tiles_folder(project.paths.state)
    plan = T.plan_tiles(
        img.width,
        img.height,
        boxes,
        size=tiles.size,
        overlap=tiles.overlap,
        min_visible=tiles.min_visible,
    )
    count.add(boxes)
    count.tiles += len(plan)
    count.tile_boxes += sum(len(tile.boxes) for tile in plan)
    count.lost += sum(
        not any(T.clip_boxes([box], t.window, tiles.min_visible) for t in plan) for box in boxes
    )
    for tile in plan:
        yield Candidate(
            T.tile_id(sample_id, tile),
            dump_label(tile.size, list(tile.boxes)),
            group=T.tile_group(sample_id, tile, tiles.block),
            path=T.write_tile(img, tile, folder),
            origin=file,
        )


ROTATED = (5, 6, 7, 8)  # EXIF orientations that turn the image a quarter: W and H swap


def image_size(file: Path, data: Data) -> tuple[int, int]:
    """(width, height) as the image is shown (EXIF orientation applied, as the network sees
    it: boxes are in those pixels), from the header (no pixel decoded), within the size
    limits; ImageDecodeError with the reason the full decode would give when unreadable."""
    from PIL import Image

    from dlworkflow.store import decode_image
    from dlworkflow.store.images import check_dimensions, image_formats, is_dicom

    limits = {"max_pixels": data.max_image_pixels, "max_side": data.max_image_side}
    if not is_dicom(file):
        try:
            with Image.open(file, formats=image_formats()) as opened:
                size, turned = opened.size, _orientation(opened) in ROTATED
            check_dimensions(*size, **limits)
            return (size[1], size[0]) if turned else size
        except ImageDecodeError:
            raise
        except Exception:  # noqa: BLE001, S110 - the full decode below gives the reason
            pass
    img = decode_image(file, **limits)
    return (img.height, img.width) if _orientation(img) in ROTATED else img.size


def _orientation(img: Any) -> int:
    try:
        return int(img.getexif().get(0x0112, 1))
    except Exception:  # noqa: BLE001 - a broken EXIF block: shown as stored (normalise too)
        return 1


def check_boxes(
    boxes: Sequence[Box], size: tuple[int, int], classes: Sequence[str] | None
) -> list[Box]:
    """The boxes, clipped to the image within TOLERANCE; ImageDecodeError with the first
    problem (the box named) otherwise."""
    width, height = size
    allowed = set(classes or [])
    out = []
    for i, (x1, y1, x2, y2, name) in enumerate(boxes, start=1):
        shown = f"box {i} [{x1:g}, {y1:g}, {x2:g}, {y2:g}] {name!r}"
        if not name:
            raise ImageDecodeError(f"unknown label: {shown} has no class name")
        if x2 <= x1 or y2 <= y1:
            raise ImageDecodeError(f"degenerate box: {shown} has x2 <= x1 or y2 <= y1")
        if allowed and name not in allowed:
            raise ImageDecodeError(
                f"unknown label: {shown} (data.classes allows {sorted(allowed)})"
            )
        c = (max(x1, 0.0), max(y1, 0.0), min(x2, float(width)), min(y2, float(height)))
        beyond = x1 < -TOLERANCE or y1 < -TOLERANCE or x2 > width + TOLERANCE
        if beyond or y2 > height + TOLERANCE or c[2] <= c[0] or c[3] <= c[1]:
            raise ImageDecodeError(
                f"box outside the image: {shown} reaches beyond the {width}x{height} image "
                f"(more than {TOLERANCE:g} px)"
            )
        out.append((c[0], c[1], c[2], c[3], name))
    return out


def dump_label(size: tuple[int, int], boxes: Sequence[Box]) -> str:
    """The manifest label: tasks/detection.py's compact boxes JSON."""
    try:
        from dlworkflow.tasks.detection import dump_boxes
    except ImportError:  # until the detection task lands: the same contract
        return _dump_boxes(size, boxes)
    return dump_boxes(size, boxes)


def _dump_boxes(size: tuple[int, int], boxes: Sequence[Box]) -> str:
    import json

    rows = sorted([round(float(v), 2) for v in b[:4]] + [str(b[4])] for b in boxes)
    return json.dumps({"size": [int(size[0]), int(size[1])], "boxes": rows}, separators=(",", ":"))
