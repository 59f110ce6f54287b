"""`dlw serve` of an audio model: WAV/FLAC/OGG uploads (multipart) or base64 in JSON, the ONNX
model's predictions out (the same numbers as PyTorch on the training decoding), each malformed
request refused with its 4xx. Real data: sonic-pi clips."""

from __future__ import annotations

import io

import numpy as np
import pytest
from servekit import AUTH, TOKEN, b64

from dlworkflow.config import Serve
from dlworkflow.store.clips import ClipSettings, decode_clip
from modality_data import helpers

kit = helpers("serve/signalkit.py")
CLASSES = ["a", "b", "c"]
#: Limits of the exported model: the two largest of the chosen clips (102,586 and 167,775
#: bytes) are over MAX_BYTES.
MAX_BYTES, MAX_SECONDS = 100_000, 10.0


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    from fastapi.testclient import TestClient

    from dlworkflow.deploy.serve.app import create_app

    root = tmp_path_factory.mktemp("audio-serve")
    model = kit.audio_model()
    settings = ClipSettings(duration=1.0, max_bytes=MAX_BYTES, max_seconds=MAX_SECONDS)
    kit.export_signal_model(
        root, model, modality="audio", classes=CLASSES, preprocessing=settings.as_dict()
    )
    client = TestClient(create_app(root, Serve(), token=TOKEN))
    yield model, client, settings
    client.app.state.server.close()


@pytest.fixture(scope="module")
def small_clips():
    return [p for p, _ in kit.sonic_clips() if p.stat().st_size <= MAX_BYTES]


def probabilities(response):
    return np.array([[p["probabilities"][c] for c in CLASSES] for p in response["predictions"]])


def expected(model, settings, paths):
    return kit.torch_probabilities(model, np.stack([decode_clip(p, settings) for p in paths]))


def test_base64_clips_get_the_models_predictions(served, small_clips):
    model, client, settings = served
    response = client.post(
        "/v1/predict", json={"clips": [b64(p.read_bytes()) for p in small_clips]}, headers=AUTH
    )
    assert response.status_code == 200, response.text
    got = probabilities(response.json())
    assert got.shape == (len(small_clips), 3)
    assert np.abs(got - expected(model, settings, small_clips)).max() < 1e-4
    info = client.get("/v1/model", headers=AUTH).json()
    assert info["input"]["shape"] == ["batch", "samples"]
    assert info["limits"]["max_clip_bytes"] == MAX_BYTES
    assert info["metadata"]["preprocessing"]["sample_rate"] == 16000


def test_multipart_uploads_get_the_same_predictions(served, small_clips):
    model, client, settings = served
    files = [("files", (p.name, p.read_bytes(), "audio/flac")) for p in small_clips[:2]]
    response = client.post("/v1/predict", files=files, headers=AUTH)
    assert response.status_code == 200, response.text
    got = probabilities(response.json())
    assert np.abs(got - expected(model, settings, small_clips[:2])).max() < 1e-4


def _wav(seconds: float, rate: int = 16000) -> bytes:
    import soundfile as sf

    noise = 0.1 * np.random.default_rng(0).standard_normal(int(seconds * rate))
    buffer = io.BytesIO()
    sf.write(buffer, noise.astype(np.float32), rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def test_a_generated_wav_of_another_rate_is_served(served):
    _, client, _ = served
    response = client.post("/v1/predict", json={"clips": [b64(_wav(1.3, 22050))]}, headers=AUTH)
    assert response.status_code == 200, response.text
    assert response.json()["predictions"][0]["label"] in CLASSES


PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


@pytest.mark.parametrize(
    ("make", "status", "error"),
    [
        (
            lambda big: {"clips": [b64(b"plain text, not audio at all")]},
            415,
            "unsupported_audio_format",
        ),
        (lambda big: {"clips": [b64(PNG)]}, 415, "unsupported_audio_format"),
        (lambda big: {"clips": [b64(big)]}, 413, "clip_too_large"),
        (lambda big: {"clips": [b64(_wav(MAX_SECONDS + 2, 1000))]}, 413, "clip_too_long"),
        (lambda big: {"clips": [""]}, 422, "empty_clip"),
        (lambda big: {"clips": ["not base64 !"]}, 422, "bad_base64"),
        (lambda big: {"clips": [b64(b"RIFF\x00\x00\x00\x00WAVEfmt ")]}, 422, "bad_audio"),
        (lambda big: {"series": [[1.0, 2.0]]}, 422, "wrong_modality"),
        (lambda big: {"clips": []}, 422, "empty_batch"),
    ],
)
def test_malformed_audio_requests_get_their_4xx(served, make, status, error):
    _, client, _ = served
    big = max((p for p, _ in kit.sonic_clips()), key=lambda p: p.stat().st_size).read_bytes()
    response = client.post("/v1/predict", json=make(big), headers=AUTH)
    assert response.status_code == status, response.text
    answer = response.json()
    assert answer["error"] == error
    assert answer["message"]


def test_multipart_non_audio_and_oversized_uploads(served):
    _, client, _ = served
    response = client.post(
        "/v1/predict", files=[("files", ("x.wav", b"not audio", "audio/wav"))], headers=AUTH
    )
    assert response.status_code == 415 and "not a WAV, FLAC or OGG" in response.json()["message"]
    small = Serve(max_body_mb=0.05)  # a body over the server's limit: 413 before parsing
    from dlworkflow.deploy.serve.app import create_app

    app = create_app(client.app.state.server.root, small, token=TOKEN)
    try:
        from fastapi.testclient import TestClient

        response = TestClient(app).post(
            "/v1/predict", files=[("files", ("x.wav", _wav(3.0), "audio/wav"))], headers=AUTH
        )
        assert response.status_code == 413 and response.json()["error"] == "body_too_large"
    finally:
        app.state.server.close()
