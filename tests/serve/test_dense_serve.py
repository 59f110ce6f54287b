"""`dlw serve` for dense models: object detection answers JSON boxes in the REQUEST image's
pixels (its own width and height, whatever the model's input size), with labels and scores
at or above the tuned threshold (`?score_threshold=` may change it within [0.05, 1]);
semantic segmentation answers the mask as a base64 PNG at the request image's size and each
class's share of it. The prediction log records box counts, sizes and scores, or class
shares. Serving never imports torch. Real images: NEON tree crops, MNIST digit mosaics."""

from __future__ import annotations

import base64
import io
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from servekit import AUTH, TOKEN, b64

from dense_exports import (
    DETECTION_CLASSES,
    SEGMENTATION_CLASSES,
    detector,
    digit_mosaics,
    png,
    torch_outputs,
    tree_images,
    unet,
    write_export,
)
from dlworkflow.config import Serve
from dlworkflow.deploy.serve.schemas import PredictResponse
from dlworkflow.runtime.bundle import load_bundle


def _client(root: Path) -> Iterator[TestClient]:
    from dlworkflow.deploy.serve.app import create_app

    app = create_app(root, Serve(max_wait_ms=1), token=TOKEN)
    try:
        with TestClient(app) as client:
            yield client
    finally:
        app.state.server.close()


@pytest.fixture(scope="module")
def det_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("det")
    write_export(root, "detection")
    return root


@pytest.fixture(scope="module")
def seg_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("seg")
    write_export(root, "segmentation")
    return root


@pytest.fixture(scope="module")
def det(det_root: Path) -> Iterator[TestClient]:
    yield from _client(det_root)


@pytest.fixture(scope="module")
def seg(seg_root: Path) -> Iterator[TestClient]:
    yield from _client(seg_root)


def _expected_boxes(root: Path, image: bytes, threshold: float) -> list[tuple[Any, ...]]:
    """The PyTorch model's boxes (numpy decode + NMS of its maps) at or above the threshold,
    scaled by the image's own width and height."""
    bundle = load_bundle(root / "models" / "v1", threads=1)
    x, [(width, height)] = bundle.prepare_images_sized([image])
    out = torch_outputs(detector(), bundle.task, x, bundle.target)[0]
    kept = out[(out[:, 5] >= 0) & (out[:, 4] >= threshold)]
    kept = kept[np.argsort(-kept[:, 4], kind="stable")]
    scale = np.array([width, height, width, height])
    return [(*np.clip(k[:4] * scale, 0, scale), DETECTION_CLASSES[int(k[5])], k[4]) for k in kept]


def _check_boxes(got: dict[str, Any], expected: list[tuple[Any, ...]]) -> None:
    assert got["count"] == len(got["boxes"]) == len(expected)
    for box, want in zip(got["boxes"], expected):
        assert box["box"] == pytest.approx(list(want[:4]), abs=0.011)
        assert box["label"] == want[4]
        assert box["score"] == pytest.approx(want[5], abs=1e-4)


def test_detection_answers_boxes_in_the_request_images_pixels(det, det_root):
    images = tree_images()  # 400x400 and 300x180, the model sees 128x128
    response = det.post("/v1/predict", headers=AUTH, json={"images": [b64(i) for i in images]})
    assert response.status_code == 200, response.text
    body = response.json()
    PredictResponse.model_validate(body)
    first, second = body["predictions"]
    assert first["count"] > 5 and second["count"] > 5  # real boxes, not empty lists
    _check_boxes(first, _expected_boxes(det_root, images[0], 0.3))
    _check_boxes(second, _expected_boxes(det_root, images[1], 0.3))
    xs = [b["box"][2] for b in second["boxes"]]
    ys = [b["box"][3] for b in second["boxes"]]
    assert max(xs) <= 300 and max(ys) <= 180 and max(xs) > 128  # the image's pixels
    assert all(b["score"] >= 0.3 for p in (first, second) for b in p["boxes"])
    assert all(b["box"][0] < b["box"][2] and b["box"][1] < b["box"][3] for b in first["boxes"])


def test_detection_takes_a_lower_score_threshold_within_limits(det, det_root):
    image = tree_images()[1]
    files = {"files": ("soap.png", image, "image/png")}
    tuned = det.post("/v1/predict", headers=AUTH, files=files).json()["predictions"][0]
    lower = det.post("/v1/predict?score_threshold=0.2", headers=AUTH, files=files)
    assert lower.status_code == 200, lower.text
    more = lower.json()["predictions"][0]
    assert more["count"] > tuned["count"]
    _check_boxes(more, _expected_boxes(det_root, image, 0.2))
    for bad in ("0.01", "1.5", "abc", "nan"):
        refused = det.post(f"/v1/predict?score_threshold={bad}", headers=AUTH, files=files)
        assert refused.status_code == 422, bad
        assert "0.05 to 1" in refused.json()["expected"]


def test_a_black_image_has_no_box_and_malformed_requests_keep_their_errors(det):
    black = png(np.zeros((64, 96, 3), dtype=np.uint8))
    response = det.post("/v1/predict", headers=AUTH, json={"images": [b64(black)]})
    assert response.json()["predictions"][0] | {"id": ""} == {"id": "", "boxes": [], "count": 0}
    assert det.post("/v1/predict", headers=AUTH, json={"texts": ["a tree"]}).status_code == 422
    not_image = det.post("/v1/predict", headers=AUTH, json={"images": [b64(b"not an image")]})
    assert not_image.status_code == 422 and not_image.json()["error"] == "bad_image"
    huge = det.post(
        "/v1/predict",
        headers={**AUTH, "Content-Type": "application/json"},
        content=b" " * (17 * 1024 * 1024),  # serve.max_body_mb: 16
    )
    assert huge.status_code == 413


def test_detection_model_info_and_the_prediction_log(det, det_root):
    info = det.get("/v1/model", headers=AUTH).json()
    assert info["kind"] == "detection" and info["prediction"] == ["boxes", "count"]
    assert info["metadata"]["target"]["score_threshold"] == 0.3
    det.post("/v1/predict", headers=AUTH, json={"images": [b64(tree_images()[0])]})
    det.app.state.server.log.flush()  # type: ignore[attr-defined]
    records = [json.loads(line) for line in (det_root / ".dlw/serve/predictions.jsonl").open()]
    last = records[-1]
    assert last["count"] == len(last["scores"]) == len(last["boxes"])
    assert last["count"] > 5 and min(last["scores"]) >= 0.3
    assert last["label"] in DETECTION_CLASSES
    assert last["confidence"] == pytest.approx(max(last["scores"]), abs=1e-5)
    for x1, y1, x2, y2, label, score in last["boxes"]:  # normalised, as monitor reads them
        assert 0 <= x1 < x2 <= 1 and 0 <= y1 < y2 <= 1
        assert label in DETECTION_CLASSES and score in last["scores"]
    assert len(last["emb"]) == 32 and last["input"]["width"] == 400


def test_segmentation_answers_the_mask_at_the_request_images_size(seg, seg_root):
    mosaic = digit_mosaics(1)[0]
    big = np.asarray(Image.fromarray(mosaic).resize((112, 84), Image.Resampling.BILINEAR))
    response = seg.post("/v1/predict", headers=AUTH, json={"images": [b64(png(big))]})
    assert response.status_code == 200, response.text
    body = response.json()
    PredictResponse.model_validate(body)
    prediction = body["predictions"][0]
    assert prediction["classes"] == SEGMENTATION_CLASSES
    with Image.open(io.BytesIO(base64.b64decode(prediction["mask_png"]))) as img:
        assert img.format == "PNG" and img.mode == "L" and img.size == (112, 84)
        mask = np.asarray(img)
    bundle = load_bundle(seg_root / "models" / "v1", threads=1)
    x = bundle.prepare_images([png(big)])
    network = torch_outputs(unet(), bundle.task, x, bundle.target)[0].argmax(axis=0)
    rows, cols = (np.arange(84) + 0.5) * 56 / 84, (np.arange(112) + 0.5) * 56 / 112
    expected = network[rows.astype(int)][:, cols.astype(int)]  # nearest, pixel centres
    assert (mask == expected).mean() >= 0.999
    counts = np.bincount(mask.ravel(), minlength=11)
    assert prediction["class_share"] == pytest.approx(
        {n: c / mask.size for n, c in zip(SEGMENTATION_CLASSES, counts)}, abs=1e-6
    )
    assert sum(prediction["class_share"].values()) == pytest.approx(1.0, abs=1e-5)
    assert len([c for c in counts if c]) >= 2  # a real mask, not one class


def test_segmentation_log_records_class_shares_and_thresholds_are_refused(seg, seg_root):
    files = {"files": ("m.png", png(digit_mosaics(2)[1]), "image/png")}
    assert seg.post("/v1/predict", headers=AUTH, files=files).status_code == 200
    seg.app.state.server.log.flush()  # type: ignore[attr-defined]
    lines = (seg_root / ".dlw/serve/predictions.jsonl").read_text().splitlines()
    last = json.loads(lines[-1])
    shares = last["class_share"]  # {class: share}, as monitor reads it
    assert list(shares) == SEGMENTATION_CLASSES
    assert sum(shares.values()) == pytest.approx(1, abs=1e-4)
    assert last["label"] in SEGMENTATION_CLASSES[1:] or shares["background"] == 1.0
    refused = seg.post("/v1/predict?score_threshold=0.2", headers=AUTH, files=files)
    assert refused.status_code == 422 and "object-detection" in refused.json()["message"]


def test_serving_a_detection_request_never_imports_torch(det_root):
    code = f"""
import sys
from fastapi.testclient import TestClient
from dlworkflow.config import Serve
from dlworkflow.deploy.serve.app import create_app
app = create_app({str(det_root)!r}, Serve(), token={TOKEN!r})
image = open({str(_tree_png())!r}, "rb").read()
with TestClient(app) as client:
    r = client.post("/v1/predict", headers={AUTH!r}, files={{"files": ("t.png", image)}})
app.state.server.close()
assert r.status_code == 200, r.text
assert r.json()["predictions"][0]["count"] > 0, r.text
bad = [m for m in sys.modules if m == "torch" or m.startswith("torch.")]
print(bad)
sys.exit(1 if bad else 0)
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def _tree_png() -> Path:
    from dense_exports import TREES, data_file

    return data_file(TREES)
