"""Semantic segmentation sources: image/mask pairs, or COCO polygons / RLE, as candidates
whose label is the mask (`tasks/masks.py` mask_to_label: run-length JSON over class names).

Where the masks are (data.masks; data.annotations for COCO):

- a folder source holding `images/` and `masks/` (data.masks null), or a folder of images and
  data.masks a folder of masks: the mask of `images/a/b.jpg` is `masks/a/b.png`, or else
  `masks/b.png` (matched by name, whatever the image's extension);
- a CSV with `image` and `mask` columns (paths relative to the CSV's folder), as data.masks
  or as the source itself;
- a COCO JSON file (data.masks or data.annotations ending in .json): polygons or RLE,
  `file_name` relative to the source folder (or its `images/`).

Masks are PNG only (decoded with the images' size limits): an index PNG (mode L, I;16 or I:
the value is the class index) or a palette PNG (mode P: the palette index is the class).
Class names: data.classes (index i names value i), else `classes.txt` in the source folder
(line i names value i), else the values themselves ("0", "1", ...); COCO: background then
the categories. The ignore value (data.ignore_index) is kept as ignore.

Quarantined with the reason: a missing mask, a mask whose size differs from its image, class
indices out of range, a mask that is not a single-channel PNG, a COCO annotation that cannot
be drawn. A CSV or COCO file that cannot be read at all is one DataError.
"""

from __future__ import annotations

import csv
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from dlworkflow.data.sources import (
    IMAGE_EXTENSIONS,
    TABLE_EXTENSIONS,
    Candidate,
    SourceScan,
    _utf8,
    _walk,
)
from dlworkflow.errors import DataError
from dlworkflow.store import ImageDecodeError, decode_image
from dlworkflow.store.images import check_dimensions, image_formats, is_dicom

if TYPE_CHECKING:
    from dlworkflow.config import Data
    from dlworkflow.data.coco_masks import CocoMasks
    from dlworkflow.workspace import Workspace

CLASSES_FILE = "classes.txt"
MASK_MODES = ("1", "L", "P", "I", "I;16", "I;16L", "I;16B", "I;16N")
NOT_SAMPLES = {CLASSES_FILE, "DATASET.md", "README.md"}  # files a source folder may hold
MAX_CLASSES = 255  # class indices of a uint8 mask (255 is the ignore value): tasks/masks.py
MaskFn = Callable[[], np.ndarray]  # the mask of one sample, or ImageDecodeError


class MaskClasses:
    """Class names of index masks and the checks on their values."""

    def __init__(self, names: list[str] | None, ignore: int | None, *, limit: int, where: str):
        self.names = names  # None: the values' own names, "0", "1", ...
        self.ignore = ignore
        self.limit = len(names) if names else limit  # values from here on are out of range
        self.where = where  # where the names come from, for reasons

    def label(self, mask: np.ndarray) -> str:
        """The manifest label of an (H, W) mask of class indices; ImageDecodeError (the
        reason) when a value is out of range."""
        from dlworkflow.tasks.masks import mask_to_label

        ignore = self.ignore if self.ignore is not None else -1
        valid = mask[mask != ignore] if self.ignore is not None else mask.ravel()
        top = int(valid.max()) if valid.size else 0
        if valid.size and (top >= self.limit or int(valid.min()) < 0):
            bad = top if top >= self.limit else int(valid.min())
            n = int(((valid >= self.limit) | (valid < 0)).sum())
            ign = f"; ignore index {self.ignore}" if self.ignore is not None else ""
            raise ImageDecodeError(
                f"class index {bad} out of range ({n:,} pixels; {self.where} allows "
                f"0-{self.limit - 1}{ign})"
            )
        names = self.names or [str(v) for v in range(top + 1)]
        try:
            return mask_to_label(mask.astype(np.int64), names, self.ignore)
        except ValueError as exc:  # e.g. more classes than a uint8 mask holds
            raise ImageDecodeError(f"mask: {exc}") from None


def scan_masks(project: Workspace, path: Path) -> SourceScan:
    """The candidates of a segmentation source (a folder, or a CSV of image,mask pairs)."""
    data = project.config.data
    folder = path if path.is_dir() else path.parent
    coco = _config_path(project, data.masks if _is_json(data.masks) else data.annotations)
    if coco is not None and coco.suffix.lower() == ".json":
        return _scan_coco(project, folder, coco)
    pairs = _config_path(project, data.masks)
    if path.is_file() and path.suffix.lower() in TABLE_EXTENSIONS:
        pairs = path
    if pairs is not None and pairs.is_file():
        return _scan_pairs(project, pairs, _classes(data, folder))
    images = folder / "images" if (folder / "images").is_dir() else folder
    masks = pairs if pairs is not None else folder / "masks"
    if not masks.is_dir():
        raise DataError(
            f"No masks folder for the images in {folder}.",
            expected="a `masks` folder beside `images` (or inside the source folder), or "
            "data.masks: a folder of masks, a CSV of image,mask paths or a COCO JSON file",
            received=f"{masks} does not exist",
            fix="put the masks (index or palette PNG, named as the images) in "
            f"{folder / 'masks'}, or set data.masks in dlworkflow.yaml",
        )
    scan = SourceScan(kind="folder", candidates=iter(()), location=str(folder))
    scan.candidates = _folder_candidates(project, images, masks, _classes(data, folder), scan)
    return scan


def _is_json(value: str | None) -> bool:
    return bool(value) and str(value).lower().endswith(".json")


def _config_path(project: Workspace, value: str | None) -> Path | None:
    """A path of the config (relative: to the project's folder)."""
    if not value:
        return None
    path = Path(value).expanduser()
    return (path if path.is_absolute() else project.root / path).resolve()


def _classes(data: Data, folder: Path) -> MaskClasses:
    ignore = data.ignore_index
    if data.classes:
        return MaskClasses(list(data.classes), ignore, limit=0, where="data.classes")
    listed = folder / CLASSES_FILE
    if listed.is_file():
        names = [line.strip() for line in listed.read_text(encoding="utf-8").splitlines()]
        names = [n for n in names if n]
        if len(names) >= 2:
            return MaskClasses(names, ignore, limit=0, where=CLASSES_FILE)
    limit = min(data.max_classes, MAX_CLASSES)
    return MaskClasses(None, ignore, limit=limit, where="data.max_classes (at most 255)")


def _folder_candidates(
    project: Workspace, images: Path, masks: Path, classes: MaskClasses, scan: SourceScan
) -> Iterator[Candidate]:
    real_masks = masks.resolve()
    seen: set[str] = set()
    for file, problem in _walk(images, images, images.resolve(), scan.skipped, set()):
        if file.resolve().is_relative_to(real_masks):
            continue  # the masks folder inside the images' folder
        rel = _utf8(file.relative_to(images).as_posix())
        if file.suffix.lower() not in IMAGE_EXTENSIONS or rel is None:
            if file.name not in NOT_SAMPLES:
                scan.skipped.append(str(rel or file.name))
            continue
        if rel in seen:
            problem = problem or f"duplicate id {rel!r} (a name in another Unicode form)"
        seen.add(rel)
        if problem:
            yield Candidate(rel, None, path=file, problem=problem)
            continue
        mask = _find_mask(masks, Path(rel))
        yield _candidate(project, rel, file, mask, classes, missing=f"{masks.name}/{rel}")


def _find_mask(masks: Path, rel: Path) -> Path | None:
    for option in (masks / rel.with_suffix(".png"), masks / f"{rel.stem}.png", masks / rel):
        if option.is_file():
            return option
    return None


def _candidate(
    project: Workspace,
    sample_id: str,
    image: Path,
    mask: Path | MaskFn | None,
    classes: MaskClasses,
    *,
    missing: str = "",
) -> Candidate:
    """One candidate: the label from the mask, or the problem that quarantines it."""
    data = project.config.data
    try:
        if mask is None:
            raise ImageDecodeError(f"no mask: expected {Path(missing).with_suffix('.png')}")
        size = _image_size(image, data)
        array = (
            decode_mask(mask, max_pixels=data.max_image_pixels, max_side=data.max_image_side)
            if isinstance(mask, Path)
            else mask()
        )
        if size is not None and (array.shape[1], array.shape[0]) != size:
            raise ImageDecodeError(
                f"mask size {array.shape[1]}x{array.shape[0]} differs from the image's "
                f"{size[0]}x{size[1]}"
            )
        return Candidate(sample_id, classes.label(array), path=image)
    except ImageDecodeError as exc:
        return Candidate(sample_id, None, path=image, problem=exc.reason)


def _image_size(image: Path, data: Data) -> tuple[int, int] | None:
    """(width, height) from the image's header (no pixel decoded); None for DICOM. An image
    that cannot be read is quarantined with the decoder's reason."""
    from PIL import Image

    if is_dicom(image):
        return None
    try:
        with Image.open(image, formats=image_formats()) as img:
            return img.size
    except Exception:  # noqa: BLE001 - the decoder below gives the real reason
        full = decode_image(image, max_pixels=data.max_image_pixels, max_side=data.max_image_side)
        return full.size


def decode_mask(path: Path, *, max_pixels: int, max_side: int) -> np.ndarray:
    """(H, W) integer class indices of an index or palette PNG; ImageDecodeError (the reason,
    prefixed 'mask') when it is not one. Size limits are checked from the header first."""
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path, formats=("PNG",)) as img:
                check_dimensions(*img.size, max_pixels=max_pixels, max_side=max_side)
                if img.mode not in MASK_MODES:
                    raise ImageDecodeError(
                        f"mask mode {img.mode}: an index or palette PNG (one class index per "
                        "pixel: mode L, P, I;16 or I) is expected"
                    )
                img.load()
                return np.asarray(img).astype(np.int64)
    except ImageDecodeError as exc:
        reason = exc.reason if exc.reason.startswith("mask") else f"mask: {exc.reason}"
        raise ImageDecodeError(reason) from None
    except UnidentifiedImageError:
        raise ImageDecodeError("mask is not a PNG file (index or palette PNG expected)") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageDecodeError(f"mask: too many pixels (decompression bomb): {exc}") from None
    except FileNotFoundError:
        raise ImageDecodeError("no mask: file not found") from None
    except (OSError, ValueError, SyntaxError, EOFError, MemoryError) as exc:
        raise ImageDecodeError(f"mask: corrupt or truncated PNG: {exc}") from None


# --- a CSV of image,mask pairs ----------------------------------------------------------------


def _scan_pairs(project: Workspace, table: Path, classes: MaskClasses) -> SourceScan:
    from dlworkflow.data.tables import data_root

    rows = _read_pairs(table)
    root = data_root(project.config, project.root, table)
    scan = SourceScan(kind="table", candidates=iter(()), location=str(table), root=str(root))
    scan.candidates = _pair_candidates(project, table.parent, root, rows, classes)
    return scan


def _read_pairs(table: Path) -> list[tuple[int, str, str]]:
    """(line, image, mask) of each row; DataError when the table has no image and mask
    columns."""
    try:
        with open(table, newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            header = [h.strip().lower() for h in reader.fieldnames or []]
            image_col = "image" if "image" in header else "path" if "path" in header else None
            if image_col is None or "mask" not in header:
                raise DataError(
                    f"The pairs table {table.name!r} has no image and mask columns.",
                    expected="a CSV with columns image (or path) and mask: one row per pair",
                    received=f"columns {', '.join(header) or '(none)'}",
                    fix="name the columns image,mask (paths relative to the CSV's folder)",
                )
            names = {h.strip().lower(): h for h in reader.fieldnames or []}
            return [
                (
                    n + 2,
                    (row.get(names[image_col]) or "").strip(),
                    (row.get(names["mask"]) or "").strip(),
                )
                for n, row in enumerate(reader)
            ]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(
            f"The pairs table {table.name!r} cannot be read.",
            expected="a UTF-8 CSV with image and mask columns",
            received=str(exc),
            fix="save the table as UTF-8 CSV",
        ) from None


def _pair_candidates(
    project: Workspace,
    base: Path,
    root: Path,
    rows: list[tuple[int, str, str]],
    classes: MaskClasses,
) -> Iterator[Candidate]:
    seen: set[str] = set()
    for line, image_text, mask_text in rows:
        sample_id = _utf8(image_text) or f"line {line}"
        problem = None
        if not image_text or not mask_text:
            problem = "no mask" if image_text else "no image path"
        elif sample_id in seen:
            problem = f"duplicate image {sample_id!r}"
        seen.add(sample_id)
        image, mask = (base / image_text).resolve(), (base / mask_text).resolve()
        if problem is None and not (image.is_relative_to(root) and mask.is_relative_to(root)):
            problem = f"path outside the data root {root} (data.root): not read"
        if problem is not None:
            yield Candidate(sample_id, None, path=image, problem=f"line {line}: {problem}")
            continue
        found = mask if mask.is_file() else None
        yield _candidate(project, sample_id, image, found, classes, missing=mask_text)


# --- COCO -------------------------------------------------------------------------------------


def _scan_coco(project: Workspace, folder: Path, path: Path) -> SourceScan:
    from dlworkflow.data.coco_masks import read_coco

    if not path.is_file():
        raise DataError(
            f"The COCO file {str(path)!r} does not exist.",
            expected="data.masks (or data.annotations): a COCO JSON file",
            received=str(path),
            fix="check the path (relative paths are relative to the project's folder)",
        )
    coco = read_coco(path)
    images = folder / "images" if (folder / "images").is_dir() else folder
    scan = SourceScan(kind="folder", candidates=iter(()), location=str(folder))
    scan.candidates = _coco_candidates(project, images, coco)
    return scan


def _coco_candidates(project: Workspace, images: Path, coco: CocoMasks) -> Iterator[Candidate]:
    data = project.config.data
    names = coco.names(data.classes)
    classes = MaskClasses(names, data.ignore_index, limit=0, where="the COCO categories")
    root = images.resolve()
    seen: set[str] = set()
    for entry in coco.images:
        sample_id = _utf8(entry.file_name) or f"COCO image {entry.id}"
        file = (images / entry.file_name).resolve()
        problem = None
        if sample_id in seen:
            problem = f"duplicate file_name {sample_id!r} in the COCO file"
        elif not file.is_relative_to(root):
            problem = "path outside the source folder: not read"
        seen.add(sample_id)
        if problem:
            yield Candidate(sample_id, None, path=file, problem=problem)
            continue

        def draw(entry: Any = entry, file: Path = file) -> np.ndarray:
            if entry.width is None or entry.height is None:  # optional in COCO: the image's
                entry.width, entry.height = _image_size(file, data) or (None, None)
            return coco.mask(
                entry, names, max_pixels=data.max_image_pixels, max_side=data.max_image_side
            )

        yield _candidate(project, sample_id, file, draw, classes)
