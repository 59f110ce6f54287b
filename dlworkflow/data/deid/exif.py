"""Identifying metadata in image files: EXIF (with its Exif and GPS sub-IFDs), PNG text chunks,
JPEG comments, XMP and IPTC blocks; and scrubbed copies without it.

Scrubbing keeps the pixels exactly:
- JPEG: the file is rewritten segment by segment WITHOUT re-encoding: APP1 (EXIF, XMP),
  APP3-APP13 (IPTC/Photoshop, vendor blocks), APP15 and COM segments are dropped, APP0 (JFIF),
  APP2 ICC profiles and APP14 (Adobe colour transform) are kept, the entropy-coded scans are
  copied byte for byte, and anything after the end-of-image marker (e.g. MPF preview images,
  which carry their own EXIF) is dropped. The decoded pixels are bit-identical.
- everything else: the decoded pixels are re-encoded losslessly as PNG (TIFF for 32-bit 'I'
  and 'F' images), with only the transparency and ICC profile carried over.
An EXIF Orientation other than 1 is kept (in a new EXIF block holding only that tag), so the
image is turned the same way as before.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dlworkflow.data.deid.findings import DeidentifyError, Finding, has_content, mask
from dlworkflow.fileio import atomic_path
from dlworkflow.store.images import image_formats, unidentified_reason

EXIF_IFD, GPS_IFD = 0x8769, 0x8825
ORIENTATION = 0x0112

# tag -> (name, kind); names follow the EXIF 2.32 / TIFF 6 specifications.
IFD0_TAGS: dict[int, tuple[str, str]] = {
    0x010E: ("ImageDescription", "description"),
    0x013B: ("Artist", "owner"),
    0x8298: ("Copyright", "owner"),
    0x0132: ("DateTime", "timestamp"),
    0x013C: ("HostComputer", "device-id"),
    0xC62F: ("CameraSerialNumber", "serial-number"),
    0x9C9B: ("XPTitle", "description"),
    0x9C9C: ("XPComment", "description"),
    0x9C9D: ("XPAuthor", "owner"),
    0x9C9E: ("XPKeywords", "description"),
    0x9C9F: ("XPSubject", "description"),
    0x02BC: ("XMLPacket", "embedded-metadata"),
    0x83BB: ("IPTC-NAA", "embedded-metadata"),
}
EXIF_TAGS: dict[int, tuple[str, str]] = {
    0x9003: ("DateTimeOriginal", "timestamp"),
    0x9004: ("DateTimeDigitized", "timestamp"),
    0x9010: ("OffsetTime", "timestamp"),
    0x9011: ("OffsetTimeOriginal", "timestamp"),
    0x9012: ("OffsetTimeDigitized", "timestamp"),
    0x9286: ("UserComment", "description"),
    0x927C: ("MakerNote", "embedded-metadata"),
    0xA420: ("ImageUniqueID", "device-id"),
    0xA430: ("CameraOwnerName", "owner"),
    0xA431: ("BodySerialNumber", "serial-number"),
    0xA435: ("LensSerialNumber", "serial-number"),
}
GPS_TIME_TAGS = {0x0007: "GPSTimeStamp", 0x001D: "GPSDateStamp"}
HARMLESS_TEXT_KEYS = {"software"}  # PNG text keys that say nothing about a person
OWNER_TEXT = ("author", "artist", "creator", "owner", "copyright", "by-line", "byline")
TIME_TEXT = ("creation time", "date", "time", "created", "modif")


def scan_image(path: str | Path, *, sample_id: str | None = None) -> list[Finding]:
    """Findings in an image file's metadata; [] for a clean file or one Pillow cannot open
    (undecodable images are quarantined by ingest, not here)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path, formats=image_formats()) as img:
            findings = _scan_exif(img) + _scan_text(img) + _scan_jpeg_blocks(img)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        return []
    return [f.with_sample(sample_id) for f in findings]


def _scan_exif(img: Any) -> list[Finding]:
    try:
        exif = img.getexif()
        sub, gps = exif.get_ifd(EXIF_IFD), exif.get_ifd(GPS_IFD)
    except Exception:  # noqa: BLE001 - Pillow raises many types on broken EXIF blocks
        return [
            Finding(
                None,
                "EXIF (unparseable)",
                "unreadable-metadata",
                "an EXIF block that cannot be parsed",
                key="EXIF",
            )
        ]
    found = _tag_findings(exif, IFD0_TAGS) + _tag_findings(sub, EXIF_TAGS)
    position = [t for t, v in gps.items() if t not in GPS_TIME_TAGS and has_content(v)]
    if position:
        found.append(
            Finding(
                None,
                "EXIF GPSInfo",
                "gps",
                f"GPS position ({len(position)} tags)",
                count=len(position),
                key="GPSInfo",
            )
        )
    for tag, name in GPS_TIME_TAGS.items():
        if has_content(gps.get(tag)):
            found.append(
                Finding(None, f"EXIF {name}", "timestamp", mask(_gps_text(gps[tag])), key=name)
            )
    return found


def _tag_findings(ifd: Any, table: dict[int, tuple[str, str]]) -> list[Finding]:
    out = []
    for tag, (name, kind) in table.items():
        value = ifd.get(tag) if ifd else None
        if not has_content(value):
            continue
        detail = (
            f"{len(value)} bytes"
            if kind == "embedded-metadata" and isinstance(value, bytes)
            else mask(_exif_text(value))
        )
        out.append(Finding(None, f"EXIF {name}", kind, detail, key=name))
    return out


def _exif_text(value: Any) -> str:
    if isinstance(value, bytes):
        if value[:8] in (b"ASCII\x00\x00\x00", b"UNICODE\x00", b"\x00" * 8):  # UserComment
            body = value[8:]
            return body.decode("utf-16" if value[:8] == b"UNICODE\x00" else "latin-1", "replace")
        if len(value) % 2 == 0 and value[1:2] == b"\x00":  # XP* tags are UTF-16LE
            return value.decode("utf-16-le", "replace")
        return value.decode("utf-8", "replace")
    return str(value)


def _gps_text(value: Any) -> str:
    if isinstance(value, tuple):
        return ":".join(f"{float(v):02.0f}" for v in value)
    return str(value)


def _scan_text(img: Any) -> list[Finding]:
    """PNG tEXt/zTXt/iTXt chunks (every key but Software) and JPEG / GIF comments."""
    out = []
    text = dict(getattr(img, "text", None) or {}) if img.format == "PNG" else {}
    for key, value in text.items():
        lowered = key.lower()
        if lowered in HARMLESS_TEXT_KEYS or not has_content(value):
            continue
        if "xmp" in lowered or lowered.startswith("raw profile"):
            kind, detail = "embedded-metadata", f"{len(str(value))} characters"
        else:
            kind = (
                "owner"
                if any(k in lowered for k in OWNER_TEXT)
                else "timestamp"
                if any(k in lowered for k in TIME_TEXT)
                else "description"
            )
            detail = mask(value)
        out.append(Finding(None, f"{img.format} text {key!r}", kind, detail, key=key))
    comment = img.info.get("comment") if img.format != "PNG" else None
    if has_content(comment):
        out.append(
            Finding(None, f"{img.format} comment", "description", mask(comment), key="comment")
        )
    return out


def _scan_jpeg_blocks(img: Any) -> list[Finding]:
    """XMP (APP1 'http://ns.adobe.com/xap/1.0/') and IPTC / Photoshop (APP13) blocks."""
    out = []
    for marker, payload in getattr(img, "applist", []) or []:
        if marker == "APP1" and payload.startswith(b"http://ns.adobe.com/xap"):
            out.append(
                Finding(
                    None, "JPEG XMP (APP1)", "embedded-metadata", f"{len(payload)} bytes", key="XMP"
                )
            )
        elif marker == "APP13":
            out.append(
                Finding(
                    None,
                    "JPEG IPTC/Photoshop (APP13)",
                    "embedded-metadata",
                    f"{len(payload)} bytes",
                    key="APP13",
                )
            )
    return out


# ---- scrubbing -------------------------------------------------------------------------------
def _open(src: str | Path) -> Any:
    """Image.open limited to the allowed formats (store.images.IMAGE_FORMATS: never a plugin
    that runs an external program, such as EPS and Ghostscript); DeidentifyError otherwise."""
    from PIL import Image, UnidentifiedImageError

    try:
        return Image.open(src, formats=image_formats())
    except UnidentifiedImageError:
        with open(src, "rb") as handle:
            prefix = handle.read(16)
        raise DeidentifyError(unidentified_reason(prefix)) from None


def clean_suffix(src: str | Path) -> str:
    """The suffix of the scrubbed copy of src: .jpg for JPEG, .tiff for 32-bit images, else .png."""
    with _open(src) as img:
        if img.format in ("JPEG", "MPO"):  # MPO: a phone's JPEG with preview images appended
            return ".jpg"
        return ".tiff" if img.mode in ("I", "F") else ".png"


def scrub_image(src: str | Path, dst: str | Path) -> list[Finding]:
    """Write dst: src without identifying metadata (see the module docstring); src is only read.

    Returns the findings of src, each with the action taken ("removed").
    """
    findings = scan_image(src)
    src, dst = Path(src), Path(dst)
    with _open(src) as img:
        fmt = img.format
        orientation = _orientation(img)
    with atomic_path(dst) as tmp:
        if fmt in ("JPEG", "MPO"):  # MPO: only the primary image is kept
            tmp.write_bytes(strip_jpeg(src.read_bytes(), orientation=orientation))
        else:
            _reencode(src, tmp, orientation=orientation)
    return [f.with_action("removed") for f in findings]


def _orientation(img: Any) -> int | None:
    try:
        value = img.getexif().get(ORIENTATION)
    except Exception:  # noqa: BLE001 - broken EXIF: no orientation to keep
        return None
    return int(value) if value in (2, 3, 4, 5, 6, 7, 8) else None


def _orientation_exif(orientation: int) -> Any:
    from PIL import Image

    exif = Image.Exif()
    exif[ORIENTATION] = orientation
    return exif


def _reencode(src: Path, tmp: Path, *, orientation: int | None) -> None:
    with _open(src) as img:
        img.load()
        params: dict[str, Any] = {}
        for key in ("transparency", "icc_profile"):
            if img.info.get(key) is not None:
                params[key] = img.info[key]
        clean = img.copy()
    clean.info = {}
    if orientation:
        params["exif"] = _orientation_exif(orientation)
    if clean.mode in ("I", "F"):
        clean.save(tmp, format="TIFF", compression="tiff_adobe_deflate", **params)
        return
    if clean.mode not in ("1", "L", "LA", "P", "RGB", "RGBA", "I;16", "I;16B", "I;16L"):
        clean = clean.convert("RGB")  # CMYK, YCbCr, LAB, HSV: as dlworkflow normalises them
        params.pop("transparency", None)
    clean.save(tmp, format="PNG", **params)


_KEEP_APP = {0xE0, 0xEE}  # JFIF, Adobe (colour transform: needed to decode CMYK / YCCK)


def strip_jpeg(data: bytes, *, orientation: int | None = None) -> bytes:
    """A JPEG without metadata segments, its scans copied byte for byte (no re-encoding)."""
    if data[:2] != b"\xff\xd8":
        raise ValueError("not a JPEG file (no start-of-image marker)")
    out, pos, n = [b"\xff\xd8"], 2, len(data)
    while pos + 1 < n:
        if data[pos] != 0xFF:
            raise ValueError(f"corrupt JPEG: expected a marker at byte {pos}")
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker == 0xD9:  # end of image: anything after it (MPF previews, junk) is dropped
            out.append(b"\xff\xd9")
            if orientation:
                out.insert(_exif_slot(out), _app1(orientation))
            return b"".join(out)
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:  # markers without a length
            out.append(data[pos : pos + 2])
            pos += 2
            continue
        end = pos + 2 + int.from_bytes(data[pos + 2 : pos + 4], "big")
        if marker == 0xDA:  # start of scan: header, then entropy-coded data to the next marker
            end = _scan_end(data, end)
            out.append(data[pos:end])
        elif _keep_segment(marker, data[pos + 4 : pos + 16]):
            out.append(data[pos:end])
        pos = end
    raise ValueError("corrupt JPEG: no end-of-image marker (truncated file?)")


def _keep_segment(marker: int, head: bytes) -> bool:
    if marker == 0xFE or 0xE0 <= marker <= 0xEF:  # COM and APPn
        return marker in _KEEP_APP or (marker == 0xE2 and head.startswith(b"ICC_PROFILE\x00"))
    return True  # tables, frame headers, restart intervals: needed to decode


def _scan_end(data: bytes, pos: int) -> int:
    while True:
        i = data.find(b"\xff", pos)
        if i < 0 or i + 1 >= len(data):
            return len(data)
        nxt = data[i + 1]
        if nxt == 0x00 or 0xD0 <= nxt <= 0xD7 or nxt == 0xFF:  # stuffed byte, restart, fill
            pos = i + 1
            continue
        return i


def _exif_slot(parts: list[bytes]) -> int:
    return 2 if len(parts) > 1 and parts[1][:2] == b"\xff\xe0" else 1


def _app1(orientation: int) -> bytes:
    payload = _orientation_exif(orientation).tobytes()  # starts with b"Exif\0\0"
    return b"\xff\xe1" + (len(payload) + 2).to_bytes(2, "big") + payload
