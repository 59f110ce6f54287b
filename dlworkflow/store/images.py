"""Decode images safely and turn a set of samples into a uint8 tensor at the network's size."""

from __future__ import annotations

import contextlib
import functools
import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from dlworkflow.fileio import atomic_write_with, sha256_json

if TYPE_CHECKING:
    import pandas as pd
    from PIL import Image

    from dlworkflow.workspace import Workspace


class ImageDecodeError(Exception):
    """A single image that cannot be used; `reason` goes to the quarantine."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ImageTooLarge(ImageDecodeError):
    """More pixels than the limit in force (the server answers 413, not 422)."""


#: The one list of image formats any code path lets Pillow open (DICOM is recognised by its
#: magic bytes and read by pydicom). Pillow picks its plugin from the content, not the file
#: name, and some plugins hand the bytes to external programs (EPS: Ghostscript): every
#: `Image.open` passes `formats=image_formats()`.
IMAGE_FORMATS = ("PNG", "JPEG", "MPO", "TIFF", "BMP", "WEBP", "GIF")
ALLOWED_TEXT = "PNG, JPEG, TIFF, BMP, WebP, GIF or DICOM"


@functools.lru_cache(maxsize=1)
def image_formats() -> tuple[str, ...]:
    """IMAGE_FORMATS that this Pillow has (a format it lacks is left out)."""
    from PIL import Image

    Image.init()  # registers every plugin
    return tuple(f for f in IMAGE_FORMATS if f in Image.OPEN)


def refused_format(prefix: bytes) -> str | None:
    """The name of a format Pillow knows but may not open here (e.g. 'EPS'), by the plugins'
    own signature checks on the first bytes (no plugin parses anything); None if none."""
    from PIL import Image

    Image.init()
    for name in Image.ID:
        if name in IMAGE_FORMATS:
            continue
        accept = Image.OPEN[name][1]
        try:
            if accept is not None and accept(prefix[:16]):
                return name
        except Exception:  # noqa: BLE001, S112 - a plugin's check failing says "not this one"
            continue
    return None


def unidentified_reason(prefix: bytes) -> str:
    """The quarantine reason for bytes no allowed plugin identifies."""
    name = refused_format(prefix)
    if name is None:
        return "not an image Pillow can identify"
    return f"{name} files are not accepted (allowed: {ALLOWED_TEXT})"


MAX_ASPECT = 100  # a longer side more than 100 times the shorter one is not a photo or scan


def check_dimensions(width: int, height: int, *, max_pixels: int, max_side: int) -> None:
    """Raise ImageDecodeError for sizes no real sample has, before any pixel is decoded."""
    if width <= 0 or height <= 0:
        raise ImageDecodeError(f"invalid dimensions {width}x{height}")
    if width * height > max_pixels:
        raise ImageTooLarge(
            f"too many pixels: {width}x{height} = {width * height:,} > limit {max_pixels:,} "
            "(possible decompression bomb; raise data.max_image_pixels if it is genuine)"
        )
    if max(width, height) > max_side or max(width, height) > MAX_ASPECT * min(width, height):
        raise ImageDecodeError(
            f"absurd dimensions {width}x{height} (longest side limit {max_side:,}, "
            f"aspect ratio limit {MAX_ASPECT}:1)"
        )


MAX_SIDE = 65_500  # pixels on one side: beyond it the dimensions are absurd


def is_dicom(path: str | Path) -> bool:
    """DICOM Part 10 file: 'DICM' at byte 128, or a .dcm / .dicom suffix."""
    path = Path(path)
    if path.suffix.lower() in (".dcm", ".dicom"):
        return True
    try:
        with open(path, "rb") as handle:
            handle.seek(128)
            return handle.read(4) == b"DICM"
    except OSError:
        return False


def decode_image(path: str | Path, *, max_pixels: int, max_side: int = MAX_SIDE) -> Image.Image:
    """Open and fully decode an image (an allowed Pillow format, or DICOM), or raise
    ImageDecodeError with a reason. Size limits are checked from the header, before any pixel
    is decoded."""
    path = Path(path)
    try:
        if path.stat().st_size == 0:
            raise ImageDecodeError("empty file (0 bytes)")
    except OSError as exc:
        raise _os_reason(exc) from None
    if is_dicom(path):
        from dlworkflow.store.dicom import decode_dicom

        return decode_dicom(path, max_pixels=max_pixels, max_side=max_side)
    return _decode_pillow(path, max_pixels=max_pixels, max_side=max_side)


def decode_image_bytes(data: bytes, *, max_pixels: int, max_side: int = MAX_SIDE) -> Image.Image:
    """`decode_image` for bytes in memory (uploads to `dlw serve`): the same limits, checked
    from the header first, and the same reasons."""
    import io

    if len(data) == 0:
        raise ImageDecodeError("empty file (0 bytes)")
    if data[128:132] == b"DICM":  # DICOM Part 10
        from dlworkflow.store.dicom import decode_dicom

        return decode_dicom(io.BytesIO(data), max_pixels=max_pixels, max_side=max_side)
    return _decode_pillow(io.BytesIO(data), max_pixels=max_pixels, max_side=max_side)


def _decode_pillow(source: Any, *, max_pixels: int, max_side: int) -> Image.Image:
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(source, formats=image_formats()) as img:
                check_dimensions(*img.size, max_pixels=max_pixels, max_side=max_side)
                img.load()
                return img.copy()
    except ImageDecodeError:
        raise
    except UnidentifiedImageError:
        raise ImageDecodeError(unidentified_reason(_prefix(source))) from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageTooLarge(f"too many pixels (decompression bomb): {exc}") from None
    except MemoryError:
        raise ImageDecodeError("not enough memory to decode the image") from None
    except OSError as exc:
        raise _os_reason(exc) from None
    except (ValueError, SyntaxError, EOFError) as exc:
        raise ImageDecodeError(f"corrupt or truncated image: {exc}") from None


def _prefix(source: Any) -> bytes:
    """The first 16 bytes of a path or a seekable binary stream (b"" if unreadable)."""
    try:
        if isinstance(source, (str, Path)):
            with open(source, "rb") as handle:
                return handle.read(16)
        source.seek(0)
        return bytes(source.read(16))
    except (OSError, ValueError, AttributeError):
        return b""


def _os_reason(exc: OSError) -> ImageDecodeError:
    if isinstance(exc, FileNotFoundError):
        return ImageDecodeError("file not found")
    if isinstance(exc, PermissionError):
        return ImageDecodeError("permission denied")
    return ImageDecodeError(f"corrupt or truncated image: {exc}")


def normalise(img: Image.Image) -> Image.Image:
    """Every image mode becomes 8-bit 'L' (grayscale) or 'RGB', the same documented way:

    - EXIF orientation is applied (the pixels are turned as a viewer shows them);
    - 16-bit grayscale (I;16*): the full 0-65535 range maps linearly to 0-255;
    - 32-bit integer (I) and float (F), e.g. DICOM: per-image min-max to 0-255;
    - transparency (RGBA, LA, PA, palette with a transparent colour): composited on white;
    - palette (P): expanded to RGB; bilevel (1): to L; CMYK and YCbCr: Pillow's conversion to RGB.
    """
    from PIL import Image, ImageOps

    # a broken EXIF block does not make the pixels unusable
    with contextlib.suppress(OSError, ValueError, TypeError, SyntaxError):
        img = ImageOps.exif_transpose(img)
    if img.mode.startswith("I;16"):
        arr = np.asarray(img, dtype=np.uint16)
        return Image.fromarray((arr >> 8).astype(np.uint8))
    if img.mode in ("I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        lo, hi = float(arr.min()), float(arr.max())
        scaled = (arr - lo) / (hi - lo) * 255.0 if hi > lo else np.zeros_like(arr)
        return Image.fromarray(np.round(scaled).astype(np.uint8))
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        background = Image.new("RGBA", img.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, img.convert("RGBA"))
        return img.convert("RGB")
    if img.mode in ("L", "RGB"):
        return img
    return img.convert("L" if img.mode == "1" else "RGB")


def image_stats(img: Image.Image) -> dict[str, float | int]:
    """Per-image statistics for exploration, from the normalised image (computed at ingest).

    phash: 64-bit DCT perceptual hash (as a signed int64); brightness and contrast: mean and
    standard deviation of the grayscale pixels (0-255); dark / bright: fraction of pixels
    <= 5 / >= 250 (blank or saturated images).
    """
    from PIL import Image

    gray = normalise(img).convert("L")
    small = (
        gray
        if max(gray.size) <= 256
        else gray.resize((min(256, gray.width), min(256, gray.height)), Image.Resampling.BILINEAR)
    )
    pixels = np.asarray(small)
    thumb = np.asarray(gray.resize((32, 32), Image.Resampling.BILINEAR), dtype=np.float64)
    low = (_DCT8 @ thumb @ _DCT8.T).ravel()  # the 8x8 lowest frequencies of the 2-D DCT
    middle = np.sort(low)[31:33]
    phash = int(np.packbits(low > middle.mean()).view(">i8")[0])  # above the median
    values = pixels.astype(np.float64).ravel()
    mean = values.mean()
    return {
        "phash": phash,
        "brightness": float(mean),
        "contrast": float(np.sqrt(max(0.0, (values @ values) / values.size - mean * mean))),
        "dark": np.count_nonzero(pixels <= 5) / pixels.size,
        "bright": np.count_nonzero(pixels >= 250) / pixels.size,
    }


def _dct_rows(n: int, keep: int) -> np.ndarray:
    """The first `keep` rows of the orthonormal DCT-II matrix of size n (scipy's
    dct(norm="ortho")): M @ x @ M.T is the 2-D transform's top-left keep x keep block."""
    k = np.arange(n)
    m = np.sqrt(2.0 / n) * np.cos(np.pi * (2 * k[None, :] + 1) * k[:, None] / (2 * n))
    m[0] /= np.sqrt(2.0)
    return m[:keep]


_DCT8 = _dct_rows(32, 8)


def to_array(img: Image.Image, *, channels: int, size: tuple[int, int]) -> np.ndarray:
    """(C, H, W) uint8: normalised (see `normalise`), then grayscale ('L') for 1 channel or RGB
    for 3, resized bilinearly to size (height, width)."""
    from PIL import Image

    img = normalise(img).convert("L" if channels == 1 else "RGB")
    height, width = size
    if img.size != (width, height):
        img = img.resize((width, height), Image.Resampling.BILINEAR)
    arr = np.asarray(img, dtype=np.uint8)
    return arr[None, :, :] if channels == 1 else arr.transpose(2, 0, 1).copy()


def image_tensor(
    project: Workspace,
    rows: pd.DataFrame,
    *,
    channels: int,
    size: tuple[int, int],
    max_pixels: int,
    progress: Any = None,
) -> np.ndarray:
    """(N, C, H, W) uint8 for the rows, in row order; cached on disk by content and format.

    Returned as a copy-on-write memory map of the cache file: pages are read on demand (a
    split larger than RAM can be streamed), writes stay private and never reach the file.
    """
    key = sha256_json([rows["content_hash"].tolist(), channels, list(size)])[:24]
    path = project.paths.cache / f"images-{key}.npy"
    if path.is_file():
        return np.load(path, mmap_mode="c")
    from dlworkflow.store.pixel_bank import PixelBank

    out = np.empty((len(rows), channels, size[0], size[1]), dtype=np.uint8)
    same = _unchanged_since_ingest(rows)
    hashes = [str(h) if ok else "" for h, ok in zip(rows["content_hash"].tolist(), same)]
    bank = PixelBank(project.paths.cache, channels=channels, size=size)
    missing = bank.fill(hashes, out)  # decoded before, for another set of rows
    files = rows["path"].tolist()
    for done, i in enumerate(missing.tolist(), start=1):
        out[i] = to_array(
            decode_image(files[i], max_pixels=max_pixels), channels=channels, size=size
        )
        if progress is not None:
            progress(done, len(missing))
    keep = [i for i in missing.tolist() if hashes[i]]  # a changed file's pixels: not banked
    bank.add([hashes[i] for i in keep], out[keep])
    atomic_write_with(path, lambda p: _save_npy(p, out))
    return np.load(path, mmap_mode="c")


def _unchanged_since_ingest(rows: pd.DataFrame) -> list[bool]:
    """Per row: the file still has the size and modification time ingest recorded (a stat, no
    read). A file changed since (damaged, replaced) is decoded again, never taken from the
    pixel bank under its old content hash, so the step sees what is on disk now."""
    if "bytes" not in rows.columns or "mtime_ns" not in rows.columns:
        return [True] * len(rows)
    origins = rows["origin_path"] if "origin_path" in rows.columns else rows["path"]
    out = []
    for origin, size, mtime in zip(
        origins.tolist(), rows["bytes"].tolist(), rows["mtime_ns"].tolist()
    ):
        try:
            stat = os.stat(str(origin))
        except (OSError, TypeError, ValueError):
            out.append(False)
            continue
        out.append(stat.st_size == size and stat.st_mtime_ns == mtime)
    return out


def _save_npy(path: Path, array: np.ndarray) -> None:
    with open(path, "wb") as handle:
        np.save(handle, array)


def gray_pixels(paths: list[str], *, side: int, max_pixels: int) -> np.ndarray:
    """float32 [n, side, side] normalised grayscale images (NaN for an unreadable one), for
    comparing images (near-duplicate confirmation)."""
    from PIL import Image

    out = np.full((len(paths), side, side), np.nan, dtype=np.float32)
    for i, path in enumerate(paths):
        try:
            gray = normalise(decode_image(path, max_pixels=max_pixels)).convert("L")
        except ImageDecodeError:
            continue
        out[i] = np.asarray(gray.resize((side, side), Image.Resampling.BILINEAR))
    return out
