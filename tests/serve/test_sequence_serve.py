"""`dlw serve` of a series model: JSON series in, the ONNX model's predictions out (the same
numbers as PyTorch), each malformed request refused with its 4xx. Real data: GunPoint."""

from __future__ import annotations

import json

import numpy as np
import pytest
from servekit import AUTH, TOKEN

from dlworkflow.config import Serve
from dlworkflow.store.series import nan_padded
from modality_data import helpers

kit = helpers("serve/signalkit.py")
MAX_LENGTH = 200


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """(model, TestClient) of a one-channel GunPoint resnet1d, and of a two-channel one."""
    from fastapi.testclient import TestClient

    from dlworkflow.deploy.serve.app import create_app

    out = {}
    for channels in (1, 2):
        root = tmp_path_factory.mktemp(f"series-serve-{channels}")
        model = kit.series_model(channels=channels)
        kit.export_signal_model(
            root,
            model,
            modality="sequence",
            classes=kit.GUNPOINT_CLASSES,
            preprocessing={"max_gap": 3, "min_length": 2, "max_length": MAX_LENGTH},
        )
        app = create_app(root, Serve(), token=TOKEN)
        out[channels] = (model, TestClient(app))
    yield out
    for _, client in out.values():
        client.app.state.server.close()


def predict(client, body, **headers):
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return client.post(
        "/v1/predict",
        content=data,
        headers={**AUTH, "Content-Type": "application/json", **headers},
    )


def probabilities(response, classes):
    return np.array([[p["probabilities"][c] for c in classes] for p in response["predictions"]])


def test_json_series_get_the_models_predictions(served):
    model, client = served[1]
    series, _ = kit.gunpoint()
    values = [series[0][0].tolist(), series[1][0, :80].tolist()]  # ragged lengths
    response = predict(client, {"series": values})
    assert response.status_code == 200, response.text
    body = response.json()
    got = probabilities(body, kit.GUNPOINT_CLASSES)
    expected = kit.torch_probabilities(model, nan_padded([series[0], series[1][:, :80]]))
    assert np.abs(got - expected).max() < 1e-4
    assert [p["label"] for p in body["predictions"]] == [
        kit.GUNPOINT_CLASSES[i] for i in expected.argmax(1)
    ]
    info = client.get("/v1/model", headers=AUTH).json()
    assert info["modality"] == "sequence"
    assert info["input"]["shape"] == ["batch", 1, "length"]
    assert info["limits"]["max_gap"] == 3 and info["limits"]["max_series_length"] == MAX_LENGTH


def test_channel_lists_of_a_multichannel_model(served):
    model, client = served[2]
    series, _ = kit.gunpoint()
    two = [np.repeat(s[:, :120], 2, axis=0) for s in series[:3]]
    response = predict(client, {"series": [s.tolist() for s in two]})
    assert response.status_code == 200, response.text
    got = probabilities(response.json(), kit.GUNPOINT_CLASSES)
    assert np.abs(got - kit.torch_probabilities(model, nan_padded(two))).max() < 1e-4


def test_a_short_gap_is_filled_and_served(served):
    model, client = served[1]
    series, _ = kit.gunpoint()
    gappy = series[2][0].tolist()
    gappy[50:53] = [None, None, None]  # max_gap 3
    response = predict(client, {"series": [gappy]})
    assert response.status_code == 200, response.text
    filled = series[2].copy()
    filled[0, 50:53] = np.interp([50, 51, 52], [49, 53], [series[2][0, 49], series[2][0, 53]])
    got = probabilities(response.json(), kit.GUNPOINT_CLASSES)
    assert np.abs(got - kit.torch_probabilities(model, filled[None])).max() < 1e-4


GOOD = [0.0, 1.0, 2.0, 1.0]


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        ({"series": [GOOD, [[1.0, 2.0], [3.0, 4.0]]]}, 422, "wrong_channels"),
        ({"series": [GOOD, []]}, 422, "empty_series"),
        ({"series": [GOOD, [1.0]]}, 422, "series_too_short"),
        ({"series": [[1.0] * (MAX_LENGTH + 1)]}, 413, "series_too_long"),
        ({"series": [GOOD, [1.0, None, None, None, None, 2.0]]}, 422, "gap_too_long"),
        ({"series": [GOOD, [1.0, "2", 3.0]]}, 422, "invalid_series"),
        ({"series": [GOOD, [[1.0, 2.0], [3.0]]]}, 422, "invalid_series"),
        ({"series": [GOOD, [1.0, 1e39, 2.0]]}, 422, "number_out_of_range"),
        ('{"series": [[1.0, 1e400, 2.0]]}', 422, "number_out_of_range"),  # parsed as inf
        ({"series": [GOOD, {"a": 1}]}, 422, "invalid_series"),
        ({"series": []}, 422, "empty_batch"),
        ({"series": "1,2,3"}, 422, "invalid_request"),
        ({"series": [GOOD], "texts": ["x"]}, 422, "invalid_request"),
        ({"clips": ["AAAA"]}, 422, "wrong_modality"),
        ({"series": [GOOD] * 33}, 413, "batch_too_large"),
        ('{"series": [[1.0, NaN, 2.0]]}', 400, "bad_json"),
    ],
)
def test_malformed_series_requests_get_their_4xx(served, body, status, error):
    _, client = served[1]
    response = predict(client, body)
    assert response.status_code == status, response.text
    answer = response.json()
    assert answer["error"] == error
    assert answer["message"]


def test_the_token_is_still_required(served):
    _, client = served[1]
    response = client.post("/v1/predict", json={"series": [GOOD]})
    assert response.status_code == 401


def test_openapi_shows_series_and_clips(served):
    _, client = served[1]
    schema = client.get("/openapi.json", headers=AUTH).json()
    body = schema["paths"]["/v1/predict"]["post"]["requestBody"]["content"]
    fields = body["application/json"]["schema"]["properties"]
    assert {"series", "clips"} <= set(fields)
    assert "anyOf" in json.dumps(fields["series"])
    assert "audio" in body["multipart/form-data"]["schema"]["properties"]["files"]["description"]


def test_the_batcher_joins_series_of_different_lengths(served):
    """Requests of different lengths share one ONNX call, NaN-padded: the same numbers."""
    from dlworkflow.deploy.serve.batcher import Job, concatenate, is_series

    _, client = served[1]
    bundle = client.app.state.server.holder.bundle
    series, _ = kit.gunpoint()
    a = bundle.prepare_series([series[0][0, :70].tolist()])
    b = bundle.prepare_series([series[1][0].tolist(), series[2][0, :90].tolist()])
    assert is_series(bundle, a)
    assert Job(bundle, a, None).fits(Job(bundle, b, None))  # type: ignore[arg-type]
    joined = concatenate([a, b], series=True)
    assert joined.shape == (3, 1, 150) and np.isnan(joined[0, 0, 70:]).all()
    together = bundle.predict_proba(joined)
    apart = np.concatenate([bundle.predict_proba(a), bundle.predict_proba(b)])
    assert np.abs(together - apart).max() < 1e-5
