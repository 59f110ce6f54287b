"""Turn a request body into validated items of the model's modality, or a clear 4xx.

Everything here is about the client's input: JSON or multipart parsing, the body, batch and
pixel limits, base64, the modality the model takes, the type of every tabular value, the byte
limit and format of audio clips, and the status of a series or clip the bundle refuses
(`input_error`).
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import math
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Any, NamedTuple

from fastapi import Request
from pydantic import ValidationError
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from dlworkflow.deploy.serve.problems import ApiError, body_too_large, clip
from dlworkflow.deploy.serve.schemas import PredictJSON
from dlworkflow.store.images import (
    ALLOWED_TEXT,
    MAX_SIDE,
    ImageDecodeError,
    ImageTooLarge,
    image_formats,
    unidentified_reason,
)

FIELD_OF = {
    "image": "images",
    "text": "texts",
    "tabular": "rows",
    "sequence": "series",
    "audio": "clips",
}
#: Fields whose items are files: base64 in JSON, or multipart file parts.
FILE_FIELDS = {"image": "Image", "audio": "Clip"}
#: serve.max_text_chars's default (dlworkflow/config.py), for callers that pass none.
MAX_TEXT_CHARS = 100_000
#: The largest magnitude a float32 holds: the model's input type. A bigger finite JSON number
#: (1e39) would become inf inside the model.
FLOAT32_MAX = 3.4028234663852886e38


@dataclass
class Items:
    modality: str
    values: list[Any]  # bytes (images, clips), str (texts), dict (rows) or list (series)


async def read_body(request: Request, limit: int) -> bytes:
    """The whole body, refused with 413 as soon as it passes `limit` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            size = int(declared)
        except ValueError:
            raise ApiError(
                400,
                "bad_request",
                "The Content-Length header is not a number.",
                received=clip(declared),
            ) from None
        if size > limit:
            raise body_too_large(limit, size)
    chunks, total = [], 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > limit:
            raise body_too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


async def parse_items(
    request: Request,
    body: bytes,
    *,
    modality: str,
    max_batch: int,
    max_body: int,
    max_text_chars: int = MAX_TEXT_CHARS,
) -> Items:
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "multipart/form-data":
        values: list[Any] = await _multipart_images(
            request, body, max_batch=max_batch, max_body=max_body
        )
        given = "clips" if modality == "audio" else "images"
    elif kind == "application/json" or kind.endswith("+json"):
        given, values = _json_items(body)
    else:
        what = kind or "a body without Content-Type"
        raise ApiError(
            415,
            "unsupported_media_type",
            f"POST /v1/predict takes JSON or a multipart upload, not {what}.",
            expected="Content-Type application/json or multipart/form-data",
            received=clip(kind or "none"),
            fix='send {"images": [...]}, {"texts": [...]}, {"rows": [...]}, {"series": '
            '[...]} or {"clips": [...]} as JSON, or image or audio files as multipart field '
            "`files`",
        )
    wanted = FIELD_OF[modality]
    if given != wanted:
        raise ApiError(
            422,
            "wrong_modality",
            f"The served model takes {modality} input, but the request has {given}.",
            expected=f"`{wanted}`"
            + (" (JSON base64 or multipart files)" if modality in FILE_FIELDS else ""),
            received=f"`{given}`",
            fix=f"send {wanted} to this model",
        )
    _check_count(len(values), max_batch)
    if modality in FILE_FIELDS and kind != "multipart/form-data":
        values = [_b64(v, i, FILE_FIELDS[modality]) for i, v in enumerate(values)]
    if modality == "text":
        _check_text_sizes(values, max_text_chars)
        _check_unicode(values)
    return Items(modality, values)


def _check_text_sizes(texts: list[str], limit: int) -> None:
    """413 for a text longer than serve.max_text_chars, before any tokenizing."""
    for i, text in enumerate(texts):
        if len(text) > limit:
            raise ApiError(
                413,
                "text_too_long",
                f"Text {i} has {len(text):,} characters; this server takes at most {limit:,} "
                "per text.",
                expected=f"at most {limit:,} characters per text",
                received=f"{len(text):,} characters",
                fix="shorten or split the text, or raise serve.max_text_chars",
            )


def _check_unicode(texts: list[str]) -> None:
    """JSON can carry lone surrogates (\\ud800) that are not text; the tokenizer cannot."""
    for i, text in enumerate(texts):
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise ApiError(
                422,
                "invalid_text",
                f"Text {i} is not valid Unicode: a lone surrogate at position {exc.start}.",
                expected="text that encodes as UTF-8",
                fix="send the text as UTF-8; pair or drop \\ud800-\\udfff escapes",
            ) from None


def _check_count(n: int, max_batch: int) -> None:
    if n == 0:
        raise ApiError(
            422,
            "empty_batch",
            "The request has no items to predict.",
            expected="1 or more items",
            received="0",
        )
    if n > max_batch:
        raise ApiError(
            413,
            "batch_too_large",
            f"The request has {n} items; this server takes at most {max_batch}.",
            expected=f"at most {max_batch} items",
            received=str(n),
            fix="split the batch over several requests, or raise serve.max_batch",
        )


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def _json_items(body: bytes) -> tuple[str, list[Any]]:
    try:
        raw = json.loads(body, parse_constant=_reject_constant)
    except RecursionError:
        raise ApiError(
            400, "bad_json", "The request body is nested too deeply.", fix="send a flat JSON object"
        ) from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(
            400,
            "bad_json",
            "The request body is not valid JSON.",
            received=clip(str(exc)),
            fix='send a JSON object, e.g. {"texts": ["..."]}',
        ) from None
    try:
        parsed = PredictJSON.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(body)"
        raise ApiError(
            422,
            "invalid_request",
            f"The request body does not have the expected fields: {where}: {first['msg']}.",
            expected='one of {"images": [base64, ...]}, {"texts": [str, ...]}, '
            '{"rows": [{feature: value}, ...]}, {"series": [[number, ...], ...]}, '
            '{"clips": [base64, ...]}',
            received=clip(repr(first.get("input"))),
            fix="see the request schema at /openapi.json",
        ) from None
    fields = tuple(FIELD_OF.values())
    given = [name for name in fields if getattr(parsed, name) is not None]
    if len(given) != 1:
        raise ApiError(
            422,
            "invalid_request",
            "The request must hold exactly one of " + ", ".join(fields) + ".",
            expected="exactly one field",
            received=", ".join(given) or "none",
        )
    return given[0], getattr(parsed, given[0])


def _b64(value: str, index: int, noun: str = "Image") -> bytes:
    if value.startswith("data:") and ";base64," in value[:100]:  # a data URL: its payload
        value = value.split(";base64,", 1)[1]
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ApiError(
            422,
            "bad_base64",
            f"{noun} {index} is not valid base64.",
            expected=f"the {noun.lower()} file's bytes in standard base64 (RFC 4648)",
            received=clip(value, 40),
            fix="encode the file with base64.b64encode(...).decode()",
        ) from None


async def _multipart_images(
    request: Request, body: bytes, *, max_batch: int, max_body: int
) -> list[bytes]:
    async def stream() -> AsyncGenerator[bytes, None]:
        yield body

    parser = MultiPartParser(
        request.headers,
        stream(),
        max_files=max_batch + 1,
        max_fields=max_batch + 1,
        max_part_size=max_body,
    )
    try:
        form = await parser.parse()
    except MultiPartException as exc:
        raise ApiError(
            400,
            "bad_multipart",
            f"The multipart body cannot be read: {exc.message}",
            fix="upload image or audio files as form field `files` (one or several)",
        ) from None
    try:
        files = [v for _, v in form.multi_items() if isinstance(v, UploadFile)]
        others = [k for k, v in form.multi_items() if not isinstance(v, UploadFile)]
        if others and not files:
            raise ApiError(
                422,
                "invalid_request",
                "The multipart body has no files.",
                expected="file parts (field `files`)",
                received="text fields: " + clip(", ".join(others)),
            )
        _check_count(len(files), max_batch)
        return [await f.read() for f in files]
    finally:
        await form.close()


class ImageHeader(NamedTuple):
    """What an image's header says: its (width, height), PIL mode and format (lower case,
    "jpg" for JPEG; DICOM: mode None, format "dcm")."""

    size: tuple[int, int]
    mode: str | None
    format: str | None


def image_headers(
    images: list[bytes], *, max_pixels: int, accept_dicom: bool = False
) -> list[ImageHeader]:
    """Every image's header, read once (size, mode, format); 413 past the pixel limit (before
    any pixel is decoded), 422 for data that is no image of an allowed format. DICOM ('DICM'
    at byte 128, whatever the preamble before it looks like) only with `accept_dicom`
    (serve.accept_dicom): its header is read without the pixel data, deflated files are
    refused, and rows x columns x frames x samples must be within max_pixels. Full decoding
    is the bundle's job."""
    headers = []
    for i, data in enumerate(images):
        if data[128:132] == b"DICM":  # the decoder goes by this magic: so does the check
            size = _dicom_size(data, i, max_pixels=max_pixels, accept_dicom=accept_dicom)
            header = ImageHeader(size, None, "dcm")
        else:
            header = _pillow_header(data, i)
        width, height = header.size
        if width * height > max_pixels:
            raise _too_large(i, f"{width}x{height} = {width * height:,} pixels", max_pixels)
        headers.append(header)
    return headers


def _pillow_header(data: bytes, index: int) -> ImageHeader:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data), formats=image_formats()) as img:
            fmt = (img.format or "").lower()
            return ImageHeader(img.size, img.mode, {"jpeg": "jpg"}.get(fmt, fmt))
    except (
        UnidentifiedImageError,
        OSError,
        ValueError,
        SyntaxError,
        EOFError,
        Image.DecompressionBombError,
    ):
        raise ApiError(
            422,
            "bad_image",
            f"Image {index} is not an image that can be read ({unidentified_reason(data[:16])}).",
            expected=f"a {ALLOWED_TEXT} file",
            received=f"{len(data):,} bytes starting {data[:8]!r}",
            fix="send the image file's bytes unchanged",
        ) from None


def _dicom_size(data: bytes, index: int, *, max_pixels: int, accept_dicom: bool) -> tuple[int, int]:
    from dlworkflow.store.dicom import dicom_size

    if not accept_dicom:
        raise ApiError(
            422,
            "dicom_not_accepted",
            f"Image {index} is a DICOM file; this server does not accept DICOM.",
            expected="a PNG, JPEG, TIFF, BMP, WebP or GIF file",
            received=f"{len(data):,} bytes of DICOM",
            fix="convert the image to PNG, or start the server with serve.accept_dicom: true",
        )
    try:
        return dicom_size(data, max_pixels=max_pixels, max_side=MAX_SIDE)
    except ImageTooLarge as exc:
        raise _too_large(index, exc.reason, max_pixels) from None
    except ImageDecodeError as exc:
        raise ApiError(
            422,
            "bad_image",
            f"Image {index} is a DICOM file that cannot be used: {exc.reason}.",
            expected="an uncompressed or JPEG-family DICOM file within the pixel limit",
            received=f"{len(data):,} bytes",
            fix="send the DICOM file unchanged; deflated DICOM: rewrite it uncompressed",
        ) from None


def _too_large(index: int, what: str, max_pixels: int) -> ApiError:
    return ApiError(
        413,
        "image_too_large",
        f"Image {index} has {what}.",
        expected=f"at most {max_pixels:,} pixels",
        received=clip(what),
        fix="downscale the image, or raise serve.max_image_pixels",
    )


def check_rows(rows: list[dict[str, Any]], prep: dict[str, Any]) -> None:
    """Numbers where the model expects numbers, and no field the model does not know."""
    numeric = set(prep.get("numeric") or [])
    names = sorted(numeric | set((prep.get("categories") or {}).keys()))
    known = set(names) | {"f:" + name for name in names}
    for i, row in enumerate(rows):
        unknown = [k for k in row if k not in known]
        if unknown:
            raise ApiError(
                422,
                "unknown_field",
                f"Row {i} has fields the model does not know.",
                expected=clip(", ".join(names)),
                received=clip(", ".join(unknown)),
                fix="send only the model's feature columns",
            )
        for key, value in row.items():
            name = key.removeprefix("f:")
            if name in numeric and value is not None and not _finite_number(value):
                raise ApiError(
                    422,
                    "not_a_number",
                    f"Row {i}, field {name!r} must be a number (or null for missing).",
                    expected="a finite number or null",
                    received=clip(repr(value)),
                    fix="send numbers unquoted; missing values as null",
                )
            if name in numeric and value is not None and abs(float(value)) > FLOAT32_MAX:
                raise ApiError(
                    422,
                    "number_out_of_range",
                    f"Row {i}, field {name!r} is {value:.6g}, beyond what the model's 32-bit "
                    "numbers hold.",
                    expected=f"a number between -{FLOAT32_MAX:.6g} and {FLOAT32_MAX:.6g}",
                    received=clip(repr(value)),
                    fix="send the value in the units the model was trained on",
                )
            if name not in numeric and not (
                value is None or isinstance(value, str) or _finite_number(value)
            ):
                raise ApiError(
                    422,
                    "invalid_value",
                    f"Row {i}, field {name!r} must be a string, number or null.",
                    received=clip(repr(value)),
                )


def _finite_number(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(float(value))
    except OverflowError:
        return False


#: Series problems (runtime/bundle.py, InputError context "problem") -> (status, error).
SERIES_ERRORS = {
    "structure": (422, "invalid_series"),
    "channels": (422, "wrong_channels"),
    "value": (422, "number_out_of_range"),
    "empty": (422, "empty_series"),
    "too_short": (422, "series_too_short"),
    "too_long": (413, "series_too_long"),
    "gap": (422, "gap_too_long"),
}


def check_clips(clips: list[bytes], *, max_bytes: int) -> None:
    """422 for an empty clip, 413 for one over the model's byte limit and 415 for bytes that
    are not WAV, FLAC or OGG (or a format refused by name), before anything is decoded."""
    from dlworkflow.store.audio import AudioDecodeError, sniff_format

    for i, data in enumerate(clips):
        if not data:
            raise ApiError(
                422,
                "empty_clip",
                f"Clip {i} is empty (0 bytes).",
                expected="the bytes of a WAV, FLAC or OGG file",
                received="0 bytes",
            )
        if len(data) > max_bytes:
            raise ApiError(
                413,
                "clip_too_large",
                f"Clip {i} has {len(data):,} bytes; the model takes at most {max_bytes:,}.",
                expected=f"at most {max_bytes:,} bytes per clip (data.audio.max_bytes)",
                received=f"{len(data):,} bytes",
                fix="send a shorter clip, or a compressed one (FLAC, OGG)",
            )
        try:
            sniff_format(io.BytesIO(data))
        except AudioDecodeError as exc:
            raise _unsupported_audio(i, exc.reason, data) from None


def _unsupported_audio(index: int, reason: str, data: bytes) -> ApiError:
    return ApiError(
        415,
        "unsupported_audio_format",
        f"Clip {index} cannot be used: {reason}.",
        expected="a WAV, FLAC or OGG file",
        received=f"{len(data):,} bytes starting {data[:8]!r}",
        fix="send the audio file's bytes unchanged, converted to WAV, FLAC or OGG",
    )


def input_error(exc: Any, modality: str) -> ApiError:
    """The 4xx of an InputError the bundle raised while preparing the items: a series' or a
    clip's problem gets its own status and error (too long: 413; a clip's refused format:
    415; the rest 422); other modalities 422 invalid_input."""
    context = getattr(exc, "context", {}) or {}
    if modality == "sequence" and context.get("problem") in SERIES_ERRORS:
        status, error = SERIES_ERRORS[context["problem"]]
        return ApiError.from_dlw(exc, status=status, error=error)
    if modality == "audio" and "reason" in context:
        reason = str(context["reason"])
        if reason.startswith(("too large", "too long")):
            status, error = (
                413,
                "clip_too_long" if reason.startswith("too long") else "clip_too_large",
            )
        elif "not accepted" in reason or reason.startswith("not a "):
            status, error = 415, "unsupported_audio_format"
        else:
            status, error = 422, "bad_audio"
        return ApiError.from_dlw(exc, status=status, error=error)
    return ApiError.from_dlw(exc)
