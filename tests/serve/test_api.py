"""The API on a real exported digits model: predictions, auth, limits and malformed input."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from fastapi.testclient import TestClient
from servekit import AUTH, TOKEN, b64

PROTECTED = [
    ("get", "/v1/model"),
    ("get", "/metrics"),
    ("post", "/v1/predict"),
    ("get", "/openapi.json"),
]


@pytest.fixture
def client(make_app):
    with TestClient(make_app()) as c:
        yield c


def test_health_needs_no_token_and_names_the_version(client):
    r = client.get("/v1/health")
    assert r.status_code == 200
    assert r.json() == {"status": "ok", "model_version": 1}


def test_model_reports_metadata_version_and_verdict(client):
    info = client.get("/v1/model", headers=AUTH).json()
    assert info["version"] == 1 and info["modality"] == "image"
    assert info["classes"] == [str(i) for i in range(10)]
    assert info["verdict"] in ("UNTESTED", "FAIL", "PASS")
    assert info["forced"]["reason"]  # exported with --force: shown to every client
    assert info["limits"]["max_batch"] == 32


def test_predict_base64_json_and_multipart_agree(client, digit_pngs):
    r = client.post("/v1/predict", headers=AUTH, json={"images": [b64(p) for p in digit_pngs]})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model_version"] == 1 and len(body["predictions"]) == len(digit_pngs)
    for p in body["predictions"]:
        assert p["label"] in p["probabilities"]
        assert p["confidence"] == pytest.approx(max(p["probabilities"].values()))
        assert sum(p["probabilities"].values()) == pytest.approx(1.0, abs=1e-4)
    files = [("files", (f"d{i}.png", data, "image/png")) for i, data in enumerate(digit_pngs)]
    multi = client.post("/v1/predict", headers=AUTH, files=files)
    assert multi.status_code == 200, multi.text
    assert [p["label"] for p in multi.json()["predictions"]] == [
        p["label"] for p in body["predictions"]
    ]


def test_predictions_match_the_bundle(client, digit_pngs, project_root):
    from dlworkflow.runtime.bundle import load_bundle
    from dlworkflow.runtime.versions import champion_folder

    bundle = load_bundle(champion_folder(project_root))
    expected = bundle.predict_proba(bundle.prepare_images(digit_pngs))
    r = client.post("/v1/predict", headers=AUTH, json={"images": [b64(p) for p in digit_pngs]})
    got = np.array(
        [[p["probabilities"][c] for c in bundle.classes] for p in r.json()["predictions"]]
    )
    np.testing.assert_allclose(got, expected, atol=1e-5)


@pytest.mark.parametrize("method,path", PROTECTED)
@pytest.mark.parametrize(
    "header",
    [
        None,
        "Bearer wrong-token-0123456789",
        f"Basic {TOKEN}",
        "Bearer",
        f"Bearer {TOKEN}x",
        "Bearer ünïcødé".encode("latin-1"),
    ],
)
def test_every_endpoint_but_health_needs_the_token(client, method, path, header):
    headers = {} if header is None else {"Authorization": header}
    r = getattr(client, method)(path, headers=headers)
    assert r.status_code == 401, (path, header, r.status_code)
    assert r.headers["www-authenticate"] == "Bearer"
    assert r.json()["error"] == "unauthorized"


def test_metrics_count_requests_batches_and_classes(client, digit_pngs):
    client.post("/v1/predict", headers=AUTH, json={"images": [b64(digit_pngs[0])]})
    client.get("/v1/model")  # 401
    text = client.get("/metrics", headers=AUTH).text
    assert 'dlw_requests_total{route="/v1/predict",status="200"} 1.0' in text
    assert 'dlw_requests_total{route="/v1/model",status="401"} 1.0' in text
    assert "dlw_request_latency_seconds_bucket" in text
    assert "dlw_batch_size_count 1.0" in text
    assert "dlw_predictions_total{label=" in text
    assert "dlw_model_version 1.0" in text


def _png(width: int, height: int) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    pixels = np.random.default_rng(0).integers(0, 256, (height, width), dtype=np.uint8)
    Image.fromarray(pixels, mode="L").save(buffer, format="PNG")
    return buffer.getvalue()


MALFORMED = [
    ("not json", b"{", "application/json", 400, "bad_json"),
    ("NaN literal", b'{"images": [NaN]}', "application/json", 400, "bad_json"),
    ("deep nesting", b"[" * 100_000 + b"]" * 100_000, "application/json", 400, "bad_json"),
    (
        "deep rows",
        b'{"rows": [{"a": ' + b"[" * 500 + b"]" * 500 + b"}]}",
        "application/json",
        422,
        "wrong_modality",
    ),
    ("not utf-8", b'{"images": ["\xff\xfe"]}', "application/json", 400, "bad_json"),
    ("array body", b"[1, 2]", "application/json", 422, "invalid_request"),
    ("unknown field", b'{"image": ["x"]}', "application/json", 422, "invalid_request"),
    ("wrong type", b'{"images": "abc"}', "application/json", 422, "invalid_request"),
    ("two fields", b'{"images": [], "texts": []}', "application/json", 422, "invalid_request"),
    ("no field", b"{}", "application/json", 422, "invalid_request"),
    ("wrong modality", b'{"texts": ["a digit"]}', "application/json", 422, "wrong_modality"),
    ("rows to an image model", b'{"rows": [{"a": 1}]}', "application/json", 422, "wrong_modality"),
    ("bad base64", b'{"images": ["not base64!"]}', "application/json", 422, "bad_base64"),
    (
        "not an image",
        json.dumps({"images": [b64(b"hello world")]}).encode(),
        "application/json",
        422,
        "bad_image",
    ),
    (
        "truncated png",
        json.dumps({"images": [b64(_png(64, 64)[:400])]}).encode(),
        "application/json",
        422,
        "invalid_input",
    ),
    ("empty batch", b'{"images": []}', "application/json", 422, "empty_batch"),
    (
        "too many items",
        json.dumps({"images": [b64(_png(4, 4))] * 33}).encode(),
        "application/json",
        413,
        "batch_too_large",
    ),
    ("plain text", b"hello", "text/plain", 415, "unsupported_media_type"),
    ("broken multipart", b"--x\r\nfoo", "multipart/form-data; boundary=x", 422, "empty_batch"),
    ("multipart without boundary", b"--x\r\nfoo", "multipart/form-data", 400, "bad_multipart"),
]


@pytest.mark.parametrize("name,body,kind,status,error", MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_input_gets_a_clear_4xx(client, name, body, kind, status, error):
    r = client.post("/v1/predict", content=body, headers={**AUTH, "Content-Type": kind})
    assert r.status_code == status, r.text
    payload = r.json()
    assert payload["error"] == error
    assert len(payload["message"]) > 10


def test_multipart_without_files_and_with_too_many(client):
    r = client.post("/v1/predict", headers=AUTH, files={"note": (None, "no file here")})
    assert r.status_code == 422 and r.json()["error"] == "invalid_request", r.text
    files = [("files", (f"{i}.png", _png(4, 4), "image/png")) for i in range(40)]
    r = client.post("/v1/predict", headers=AUTH, files=files)
    assert r.status_code in (400, 413), r.text


def test_body_and_pixel_limits(make_app):
    with TestClient(make_app(max_body_mb=0.05, max_image_pixels=100 * 100)) as c:
        big = c.post("/v1/predict", headers=AUTH, json={"images": ["A" * 60_000]})
        assert big.status_code == 413 and big.json()["error"] == "body_too_large"
        bomb = c.post("/v1/predict", headers=AUTH, json={"images": [b64(_png(101, 100))]})
        assert bomb.status_code == 413 and bomb.json()["error"] == "image_too_large"
        ok = c.post("/v1/predict", headers=AUTH, json={"images": [b64(_png(100, 100))]})
        assert ok.status_code == 200


def test_slow_request_times_out_with_504(make_app, digit_pngs):
    with TestClient(make_app(timeout_s=0.0005, max_wait_ms=50)) as c:
        r = c.post("/v1/predict", headers=AUTH, json={"images": [b64(digit_pngs[0])] * 8})
        assert r.status_code == 504
        assert "serve.timeout_s" in r.json()["message"]
        assert c.get("/v1/health").status_code == 200  # the server carries on


def test_unknown_route_and_method_are_json_4xx(client):
    assert client.get("/nope", headers=AUTH).status_code == 404
    r = client.get("/v1/predict", headers=AUTH)
    assert r.status_code == 405 and r.json()["error"] == "method_not_allowed"


def _encoded(mode_or_array, fmt: str, **options) -> bytes:
    from PIL import Image

    img = (
        Image.fromarray(mode_or_array)
        if isinstance(mode_or_array, np.ndarray)
        else Image.new(mode_or_array, (20, 20))
    )
    buffer = io.BytesIO()
    img.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def _frame():
    from PIL import Image

    return Image.new("P", (20, 20), 3)


_RNG = np.random.default_rng(1)
IMAGE_KINDS = [
    (
        "16-bit png",
        lambda: _encoded(_RNG.integers(0, 65535, (20, 20), dtype=np.uint16), "PNG"),
        200,
    ),
    ("float tiff", lambda: _encoded(_RNG.random((20, 20)).astype(np.float32), "TIFF"), 200),
    ("cmyk jpeg", lambda: _encoded("CMYK", "JPEG"), 200),
    ("1-bit png", lambda: _encoded("1", "PNG"), 200),
    ("animated gif", lambda: _encoded("P", "GIF", save_all=True, append_images=[_frame()]), 200),
    ("rgba webp", lambda: _encoded("RGBA", "WEBP"), 200),
    ("bmp", lambda: _encoded("RGB", "BMP"), 200),
    ("1x99 png", lambda: _encoded(np.zeros((99, 1), dtype=np.uint8), "PNG"), 200),
    (
        "eps (would run Ghostscript)",
        lambda: b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 9 9\n",
        422,
    ),
    ("ppm (not accepted)", lambda: _encoded("RGB", "PPM"), 422),
    ("svg", lambda: b"<svg xmlns='http://www.w3.org/2000/svg'/>", 422),
    ("dicom without pixels", lambda: b"\0" * 128 + b"DICM" + b"\0" * 50, 422),
]


@pytest.mark.parametrize("name,make,status", IMAGE_KINDS, ids=[k[0] for k in IMAGE_KINDS])
def test_image_formats_and_modes(client, name, make, status):
    r = client.post("/v1/predict", headers=AUTH, json={"images": [b64(make())]})
    assert r.status_code == status, r.text
