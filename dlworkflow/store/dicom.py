"""DICOM, read safely: the header first (pixels not read), deflated files refused before any
inflation, and rows x columns x frames x samples checked against the limit in force before any
pixel data is read. Every code path that opens DICOM goes through `read_dicom` (ingest,
predict, explore and evaluate through `decode_dicom`; the server through `dicom_size`; the
privacy scan and scrubbing in data/deid/dicom.py)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import numpy as np

from dlworkflow.store.images import ImageDecodeError, ImageTooLarge, check_dimensions

if TYPE_CHECKING:
    from PIL import Image

#: Deflated Explicit VR Little Endian: the whole dataset is zlib-compressed, and pydicom
#: inflates it in one call without a cap (a few kB can claim gigabytes).
DEFLATED = "1.2.840.10008.1.2.1.99"
DEFLATED_REASON = (
    "deflated DICOM (transfer syntax 1.2.840.10008.1.2.1.99) is not accepted: it would be "
    "inflated without a size limit; convert it to an uncompressed transfer syntax first"
)

Source = str | Path | BinaryIO


class DicomRefused(ImageDecodeError):
    """A DICOM file refused by a safety rule (deflated), not because it is corrupt."""


def read_dicom(source: Source, *, stop_before_pixels: bool = True, force: bool = False) -> Any:
    """pydicom's dataset of a DICOM file (a path or a binary stream, read from its current
    position), after reading its file meta information alone: a deflated dataset raises
    DicomRefused before one byte is inflated. pydicom's own errors (InvalidDicomError, ...)
    propagate. `stop_before_pixels` (the default) leaves the pixel data unread."""
    import pydicom
    from pydicom.filereader import _read_file_meta_info, read_preamble

    with _binary(source) as handle:
        start = handle.tell()
        read_preamble(handle, force)
        meta = _read_file_meta_info(handle)
        if str(meta.get("TransferSyntaxUID", "") or "").strip("\0 ") == DEFLATED:
            raise DicomRefused(DEFLATED_REASON)
        handle.seek(start)
        return pydicom.dcmread(handle, stop_before_pixels=stop_before_pixels, force=force)


@contextmanager
def _binary(source: Source) -> Iterator[BinaryIO]:
    if isinstance(source, (str, Path)):
        with open(source, "rb") as handle:
            yield handle
    else:
        yield source


def read_dicom_header(source: Source) -> Any:
    """The dataset without pixel data, or ImageDecodeError with the reason."""
    try:
        import pydicom  # noqa: F401
    except ModuleNotFoundError:
        raise ImageDecodeError(
            "DICOM file, but pydicom is not installed (pip install pydicom)"
        ) from None
    from pydicom.errors import InvalidDicomError

    try:
        return read_dicom(source, stop_before_pixels=True)
    except ImageDecodeError:
        raise
    except InvalidDicomError as exc:
        raise ImageDecodeError(f"corrupt DICOM file: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - pydicom raises many types on broken headers
        raise ImageDecodeError(f"corrupt DICOM file: {type(exc).__name__}: {exc}") from None


def check_dicom_header(ds: Any, *, max_pixels: int, max_side: int) -> tuple[int, int]:
    """(columns, rows) of a DICOM header, or ImageDecodeError: each frame's sides as for any
    image (check_dimensions), and rows x columns x frames x samples per pixel at most
    max_pixels (ImageTooLarge), before any pixel data is read."""
    try:
        rows = int(ds.get("Rows", 0) or 0)
        cols = int(ds.get("Columns", 0) or 0)
        frames = int(ds.get("NumberOfFrames", 1) or 1)
        samples = int(ds.get("SamplesPerPixel", 1) or 1)
    except (TypeError, ValueError) as exc:
        raise ImageDecodeError(f"corrupt DICOM header: {exc}") from None
    if frames < 1 or samples < 1:
        raise ImageDecodeError(f"invalid DICOM header: {frames} frames, {samples} samples")
    check_dimensions(cols, rows, max_pixels=max_pixels, max_side=max_side)
    total = rows * cols * frames * samples
    if total > max_pixels:
        raise ImageTooLarge(
            f"too many pixels: {cols}x{rows} x {frames:,} frames x {samples} samples = "
            f"{total:,} > limit {max_pixels:,} (possible decompression bomb)"
        )
    return cols, rows


def dicom_size(data: bytes, *, max_pixels: int, max_side: int) -> tuple[int, int]:
    """(width, height) of DICOM bytes from the header, checked as `check_dicom_header` does."""
    ds = read_dicom_header(io.BytesIO(data))
    return check_dicom_header(ds, max_pixels=max_pixels, max_side=max_side)


def decode_dicom(source: Source, *, max_pixels: int, max_side: int) -> Image.Image:
    """Modality LUT (RescaleSlope/Intercept) applied, MONOCHROME1 inverted, as a float 'F'
    image (grayscale) or 'RGB'; multi-frame files give their middle frame. The header is read
    and checked first; the pixel data only when it passes."""
    from PIL import Image

    with _binary(source) as handle:
        start = handle.tell()
        header = read_dicom_header(handle)
        check_dicom_header(header, max_pixels=max_pixels, max_side=max_side)
        handle.seek(start)
        try:
            ds = read_dicom(handle, stop_before_pixels=False)
        except ImageDecodeError:
            raise
        except Exception as exc:  # noqa: BLE001 - read once already: changed since, or odd
            raise ImageDecodeError(f"corrupt DICOM file: {exc}") from None
    if "PixelData" not in ds:
        raise ImageDecodeError("DICOM file without pixel data")
    check_dicom_header(ds, max_pixels=max_pixels, max_side=max_side)  # the same bytes
    try:
        pixels = ds.pixel_array
    except Exception as exc:  # pydicom raises many types for unsupported transfer syntaxes
        raise ImageDecodeError(
            f"DICOM pixel data cannot be decoded ({type(exc).__name__}: {exc}); compressed "
            "transfer syntaxes need pylibjpeg or gdcm"
        ) from None
    if int(ds.get("NumberOfFrames", 1) or 1) > 1:
        pixels = pixels[len(pixels) // 2]
    if ds.get("PhotometricInterpretation", "MONOCHROME2") in ("RGB", "YBR_FULL"):
        return Image.fromarray(np.ascontiguousarray(pixels).astype(np.uint8), mode="RGB")
    values = pixels.astype(np.float32) * float(ds.get("RescaleSlope", 1) or 1) + float(
        ds.get("RescaleIntercept", 0) or 0
    )
    if ds.get("PhotometricInterpretation") == "MONOCHROME1":
        values = values.max() - values
    return Image.fromarray(values, mode="F")
