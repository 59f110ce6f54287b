"""trees: the annotated NEON airborne tree-crown images shipped in deepforest 2.1.0 (MIT).

Four RGB orthophoto crops from three NEON sites (YELL, OSBS, SOAP) with their Pascal VOC
boxes, read in place from the deepforest wheel, installed --no-deps as a data-only package
(datasets/data_packages.py; deepforest is NEVER imported: its imports pull in torchvision).
materialise writes folder/trees.csv (path, xmin, ymin, xmax, ymax, label; one row per box,
paths pointing at the installed images) and a dataset card. SOAP_061's boxes are labelled
Alive (9) and Dead (28) there; they are merged into the one class Tree, as the other three
images have it. The dataset sets data.tiles to 400 px tiles (no overlap): the two YELL crops
are 2299x2472 and 1249x1035 px, so the four images become 56 tiles, grouped by image.
"""

from __future__ import annotations

from pathlib import Path

from dlworkflow.datasets.catalog import BUILTINS, BuiltinDataset, write_csv_source
from dlworkflow.datasets.data_packages import find_file, install_hint
from dlworkflow.errors import DataError

PIN = "deepforest==2.1.0"
CLASS = "Tree"
#: image -> the number of boxes its VOC file holds (574 + 279 + 61 + 37 = 951)
IMAGES = {
    "2019_YELL_2_528000_4978000_image_crop2.png": 574,
    "2019_YELL_2_541000_4977000_image_crop.png": 279,
    "OSBS_029.png": 61,
    "SOAP_061.png": 37,
}
N_BOXES = sum(IMAGES.values())
COLUMNS = ("xmin", "ymin", "xmax", "ymax")
MERGED = {"Alive": CLASS, "Dead": CLASS, CLASS: CLASS}
CARD = """# trees (built-in dataset)

Four annotated RGB airborne images of tree crowns from the NEON Airborne Observation
Platform, as shipped in the deepforest 2.1.0 package (data/*.png with Pascal VOC boxes beside
each), read in place, never copied.

- SMALL: 4 images from 3 sites (YELL: 2 crops of 2299x2472 and 1249x1035 px; OSBS_029 and
  SOAP_061: 400x400 px), 951 boxes of one class, Tree. Tiled to 400 px (data.tiles) they make
  56 tiles, grouped by source image: a split has at most 4 groups, so the test set holds one
  or two images and every metric on it has a wide interval (grouped by image, the test set
  may get a single tile; `dlw demo --task object-detection` groups 1,200 px blocks instead,
  data.tiles.block, and tests on 12 tiles). Use it to try the workflow, not to judge a tree
  detector.
- SOAP_061's boxes are labelled Alive (9) and Dead (28) in the package; here they are merged
  into the one class Tree.
- Licence: MIT (deepforest, Weecology); the images are NEON data (National Ecological
  Observatory Network, NSF), published by NEON for open use with attribution.
- Reference: Weinstein et al. (2019), Individual tree-crown detection in RGB imagery using
  semi-supervised deep learning neural networks, Remote Sensing 11(11):1309.
"""


def data_folder() -> Path:
    """The installed deepforest/data folder (found, never imported)."""
    first = next(iter(IMAGES))
    path = find_file("deepforest", f"data/{first}")
    if path is None:
        raise DataError(
            "The built-in dataset trees needs deepforest's data files, which are not installed.",
            expected=f"deepforest/data/{first} and the other annotated images",
            received="no deepforest folder holds them",
            fix=install_hint(PIN),
        )
    return path.parent


def read_boxes() -> list[dict[str, str]]:
    """One row per box of the four images (Alive and Dead merged into Tree), absolute paths."""
    folder = data_folder()
    rows = []
    for name, expected in IMAGES.items():
        image, xml = folder / name, folder / f"{Path(name).stem}.xml"
        if not image.is_file() or not xml.is_file():
            raise _broken(f"{image.name} or its .xml is missing")
        boxes = _voc_boxes(xml)
        if len(boxes) != expected:
            raise _broken(f"{xml.name}: {len(boxes)} boxes")
        for label, coordinates in boxes:
            if label not in MERGED:
                raise _broken(f"{xml.name}: label {label!r}")
            rows.append({"path": str(image), **coordinates, "label": MERGED[label]})
    return rows


def _voc_boxes(xml: Path) -> list[tuple[str, dict[str, str]]]:
    """(name, {xmin, ymin, xmax, ymax}) of each <object> of one of the package's VOC files
    (at most 1 MB, no DOCTYPE or ENTITY: nothing to expand; the general reader is
    data/annotations.py, a layer above)."""
    import xml.etree.ElementTree as ET

    data = xml.read_bytes() if xml.stat().st_size <= 1 << 20 else b""
    if not data or b"<!DOCTYPE" in data.upper() or b"<!ENTITY" in data.upper():
        raise _broken(f"{xml.name}: larger than 1 MB or with a DOCTYPE / ENTITY")
    try:
        root = ET.fromstring(data)  # noqa: S314 - size capped, no DOCTYPE / ENTITY
    except ET.ParseError as exc:
        raise _broken(f"{xml.name}: {exc}") from None
    out = []
    for obj in root.iter("object"):
        values = {k: (obj.findtext(f"bndbox/{k}") or "").strip() for k in COLUMNS}
        out.append(((obj.findtext("name") or "").strip(), values))
    return out


def _broken(received: str) -> DataError:
    return DataError(
        "deepforest's annotated images are not as expected.",
        expected=f"{len(IMAGES)} images with {N_BOXES} VOC boxes (Tree; Alive/Dead)",
        received=received,
        fix=f"{install_hint(PIN)} --force-reinstall",
    )


def materialise(folder: Path) -> Path:
    """folder/trees.csv over the installed images, and folder/DATASET.md; the CSV's path."""
    return write_csv_source(folder, "trees.csv", ["path", *COLUMNS, "label"], read_boxes(), CARD)


BUILTINS.add(
    "trees",
    BuiltinDataset(
        name="trees",
        task="object-detection",
        description="SMALL: 4 airborne RGB images of tree crowns from 3 NEON sites (YELL, "
        "OSBS, SOAP) with 951 boxes of one class, Tree (SOAP_061's Alive and Dead boxes "
        "merged), tiled to 56 tiles of 400 px grouped by image; enough to try detection, "
        "too few images to judge a model",
        n_samples=len(IMAGES),
        size="4 images -> 56 tiles of 400x400",
        licence="MIT (deepforest, Weecology); images: NEON data (NSF), open with attribution",
        source="deepforest/data/*.png and their Pascal VOC .xml of the installed package "
        "(Weinstein et al. 2019)",
        package=f"{PIN} (pip, --no-deps, data only)",
        materialise=materialise,
        reads_from=data_folder,
        settings={"data.tiles": {"size": 400, "overlap": 0}},
    ),
)
