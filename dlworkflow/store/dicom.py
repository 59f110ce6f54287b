"""Decode the pixels of a DICOM file (pydicom) into a Pillow image, as `decode_image` does."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from dlworkflow.store.images import ImageDecodeError, check_dimensions

if TYPE_CHECKING:
    from PIL import Image


def decode_dicom(path: Path, *, max_pixels: int, max_side: int) -> Image.Image:
    """Modality LUT (RescaleSlope/Intercept) applied, MONOCHROME1 inverted, as a float 'F'
    image (grayscale) or 'RGB'; multi-frame files give their middle frame."""
    from PIL import Image

    try:
        import pydicom
        from pydicom.errors import InvalidDicomError
    except ModuleNotFoundError:
        raise ImageDecodeError(
            "DICOM file, but pydicom is not installed (pip install pydicom)"
        ) from None
    try:
        ds = pydicom.dcmread(path)
    except (InvalidDicomError, OSError, ValueError, EOFError) as exc:
        raise ImageDecodeError(f"corrupt DICOM file: {exc}") from None
    if "PixelData" not in ds:
        raise ImageDecodeError("DICOM file without pixel data")
    check_dimensions(
        int(ds.get("Columns", 0)), int(ds.get("Rows", 0)), max_pixels=max_pixels, max_side=max_side
    )
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
