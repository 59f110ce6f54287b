"""Issue 14, items 1 and 8 at the server: DICOM is opt-in and its header is checked against
serve.max_image_pixels (frames and samples counted) before any pixel; deflated DICOM is
refused; each text has a size limit; non-finite or float32-overflowing table values get 422."""

from __future__ import annotations

import asyncio
import json
import struct
import zlib
from typing import Any

import pytest
from servekit import AUTH, b64
from starlette.testclient import TestClient

from dlworkflow.deploy.serve.inputs import check_rows, image_headers, parse_items
from dlworkflow.deploy.serve.problems import ApiError
from modality_data import helpers

dicom_bytes = helpers("store/test_decode_hardening.py").dicom_bytes


def sizes_of(images, **options):
    """(width, height) of each image from its header (inputs.image_headers)."""
    return [header.size for header in image_headers(images, **options)]


def _png_header(width: int, height: int) -> bytes:
    """The first 128 bytes of a 'PNG': signature, IHDR and the start of an IDAT chunk (all
    Pillow needs to report a size), padded with zeros: a DICOM preamble may hold it."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    chunk = struct.pack(">I", len(ihdr)) + b"IHDR" + ihdr
    chunk += struct.pack(">I", zlib.crc32(b"IHDR" + ihdr) & 0xFFFFFFFF)
    head = b"\x89PNG\r\n\x1a\n" + chunk + struct.pack(">I", 1000) + b"IDAT"
    return head + b"\0" * (128 - len(head))


def _refusal(call: Any) -> ApiError:
    with pytest.raises(ApiError) as info:
        call()
    return info.value


# ---- DICOM ----------------------------------------------------------------------------------
def test_dicom_is_refused_unless_accepted() -> None:
    data = dicom_bytes(16, 16)
    error = _refusal(lambda: sizes_of([data], max_pixels=10_000))
    assert error.status == 422 and error.error == "dicom_not_accepted"
    assert "serve.accept_dicom" in (error.fix or "")
    assert sizes_of([data], max_pixels=10_000, accept_dicom=True) == [(16, 16)]


def test_dicom_header_is_checked_against_the_serve_limit() -> None:
    tiny = b"\0" * 64
    for data, words in (
        (dicom_bytes(60_000, 60_000, pixels=tiny), "60000x60000"),
        (dicom_bytes(100, 100, frames=10_000, pixels=tiny), "10,000 frames"),
        (dicom_bytes(80, 80, samples=3), "3 samples"),
    ):
        error = _refusal(lambda data=data: sizes_of([data], max_pixels=16_000, accept_dicom=True))
        assert error.status == 413 and error.error == "image_too_large", error.message
        assert words in error.message and "16,000" in (error.expected or "")


def test_deflated_dicom_is_refused_at_the_server(monkeypatch: pytest.MonkeyPatch) -> None:
    import types

    import pydicom.filereader

    inflated: list[int] = []
    spy = types.SimpleNamespace(decompress=lambda *a: inflated.append(1), MAX_WBITS=15)
    monkeypatch.setattr(pydicom.filereader, "zlib", spy)
    data = dicom_bytes(16, 16, deflated=True)
    error = _refusal(lambda: sizes_of([data], max_pixels=10_000, accept_dicom=True))
    assert error.status == 422 and "deflated" in error.message.lower()
    assert inflated == []


def test_a_png_header_in_the_preamble_does_not_smuggle_dicom() -> None:
    """A DICOM whose preamble starts like a 10x10 PNG: Pillow reports 10x10, but the decoder
    goes by the 'DICM' magic. It is DICOM, refused when DICOM is off, checked when on."""
    data = dicom_bytes(100, 100, frames=10_000, pixels=b"\0" * 64, preamble=_png_header(10, 10))
    assert _refusal(lambda: sizes_of([data], max_pixels=16_000)).error == "dicom_not_accepted"
    error = _refusal(lambda: sizes_of([data], max_pixels=16_000, accept_dicom=True))
    assert error.status == 413


def test_the_app_passes_accept_dicom_and_the_serve_limit(make_app: Any) -> None:
    data = dicom_bytes(28, 28)
    with TestClient(make_app()) as client:
        r = client.post("/v1/predict", headers=AUTH, json={"images": [b64(data)]})
        assert r.status_code == 422 and "accept_dicom" in r.text, r.text
    with TestClient(make_app(accept_dicom=True)) as client:
        r = client.post("/v1/predict", headers=AUTH, json={"images": [b64(data)]})
        assert r.status_code == 200, r.text
    with TestClient(make_app(accept_dicom=True, max_image_pixels=700)) as client:
        big = dicom_bytes(10, 10, frames=8)  # 800 pixels with its frames
        r = client.post("/v1/predict", headers=AUTH, json={"images": [b64(big)]})
        assert r.status_code == 413 and "8 frames" in r.text, r.text


# ---- texts ----------------------------------------------------------------------------------
class _Request:
    """What parse_items reads of a request: its headers."""

    def __init__(self) -> None:
        self.headers = {"content-type": "application/json"}


def _parse(body: dict[str, Any], modality: str, **limits: Any) -> Any:
    raw = json.dumps(body).encode()
    return asyncio.run(
        parse_items(
            _Request(),  # type: ignore[arg-type]
            raw,
            modality=modality,
            max_batch=64,
            max_body=10_000_000,
            **limits,
        )
    )


def test_each_text_has_a_size_limit() -> None:
    texts = ["short", "x" * 101]
    assert _parse({"texts": texts}, "text", max_text_chars=101).values == texts
    error = _refusal(lambda: _parse({"texts": ["ok", "x" * 102]}, "text", max_text_chars=101))
    assert error.status == 413 and error.error == "text_too_long"
    assert "Text 1" in error.message and "101" in (error.expected or "")
    assert "102" in (error.received or "")


def test_the_default_text_limit_is_the_config_default() -> None:
    from dlworkflow.config import Serve

    limit = Serve().max_text_chars
    _parse({"texts": ["y" * limit]}, "text")
    assert _refusal(lambda: _parse({"texts": ["y" * (limit + 1)]}, "text")).status == 413


# ---- tables ---------------------------------------------------------------------------------
PREP = {"numeric": ["age", "dose"], "categories": {"site": ["a", "b"]}}


@pytest.mark.parametrize(
    "text",
    ['{"age": 1e39}', '{"age": -1e39}', '{"age": 1e400}', '{"dose": -1e400}'],
)
def test_overflowing_table_values_get_422_naming_row_and_column(text: str) -> None:
    row = json.loads(text)  # Python's json: 1e400 -> inf; 1e39 is finite but not a float32
    rows = [{"age": 3, "dose": 0.5, "site": "a"}, row]
    error = _refusal(lambda: check_rows(rows, PREP))
    assert error.status == 422
    column = next(iter(row))
    assert "Row 1" in error.message and repr(column) in error.message


def test_nan_and_infinity_literals_are_refused() -> None:
    for literal in ("NaN", "Infinity", "-Infinity"):
        raw = ('{"rows": [{"age": ' + literal + "}]}").encode()
        error = _refusal(
            lambda raw=raw: asyncio.run(
                parse_items(
                    _Request(),  # type: ignore[arg-type]
                    raw,
                    modality="tabular",
                    max_batch=8,
                    max_body=10_000,
                )
            )
        )
        assert error.status == 400


def test_large_but_representable_values_pass() -> None:
    check_rows([{"age": 3.0e38, "dose": -3.0e38, "site": 12}, {"age": None}], PREP)
    check_rows([{"age": 10**30}], PREP)
