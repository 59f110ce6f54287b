"""`dlw serve` for the regression and multi-label tasks, on real data (scikit-learn's diabetes,
the first 800 genes of Yeast): each prediction is {"id", **task.prediction}, the model info
names the task and its outputs, malformed rows get a clear 4xx, and a classification model's
answers are what they always were."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from servekit import AUTH, TOKEN, b64

from dlworkflow.config import Serve
from dlworkflow.deploy.serve.schemas import PredictResponse
from dlworkflow.project import Project
from dlworkflow.runtime.bundle import load_bundle
from dlworkflow.runtime.observe import runtime_inputs, table_records
from dlworkflow.runtime.versions import champion_folder
from dlworkflow.store import load_split
from task_projects import multilabel_project, regression_project


def _served(project: Project) -> Iterator[dict[str, Any]]:
    """Tested, exported (a PASS: the champion, served without --force) and served."""
    from dlworkflow.deploy.serve.app import create_app

    assert project.test().verdict.verdict == "PASS"
    project.export()
    bundle = load_bundle(champion_folder(project.root), threads=1)
    rows = load_split(project, "val").reset_index(drop=True)
    app = create_app(project.root, Serve(), token=TOKEN)
    try:
        with TestClient(app) as client:
            yield {
                "project": project,
                "bundle": bundle,
                "rows": rows,
                "client": client,
                "records": table_records(rows, bundle.preprocessing["features"]),
            }
    finally:
        app.state.server.close()


@pytest.fixture(scope="module")
def regression(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    yield from _served(regression_project(tmp_path_factory.mktemp("regression")))


@pytest.fixture(scope="module")
def multilabel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    yield from _served(multilabel_project(tmp_path_factory.mktemp("multilabel")))


def _predict(client: TestClient, rows: list[dict[str, Any]]) -> Any:
    return client.post("/v1/predict", headers=AUTH, json={"rows": rows})


# ---- regression -----------------------------------------------------------------------------


def test_a_diabetes_row_gets_the_bundles_value_in_the_target_range(regression):
    client, bundle, rows = regression["client"], regression["bundle"], regression["rows"]
    r = _predict(client, regression["records"][:10])
    assert r.status_code == 200, r.text
    body = r.json()
    PredictResponse.model_validate(body)  # the documented response schema holds
    predictions = body["predictions"]
    assert [set(p) for p in predictions] == [{"id", "value"}] * 10
    expected = bundle.predict_outputs(runtime_inputs(bundle, rows.head(10)))[:, 0]
    assert [p["value"] for p in predictions] == pytest.approx(expected.tolist(), abs=1e-9)
    train_y = [float(t) for t in load_split(regression["project"], "train")["label"]]
    assert all(min(train_y) <= p["value"] <= max(train_y) for p in predictions)
    assert np.std([p["value"] for p in predictions]) > 5  # not a constant answer


def test_the_model_info_names_the_task_its_output_and_target_scaling(regression):
    info = regression["client"].get("/v1/model", headers=AUTH).json()
    assert info["task"] == "tabular-regression" and info["kind"] == "regression"
    assert info["classes"] == info["outputs"] == ["value"]
    assert info["prediction"] == ["value"]
    scaling = info["metadata"]["target"]
    assert set(scaling) == {"mean", "std"} and 120 < scaling["mean"] < 180


@pytest.mark.parametrize(
    ("change", "status", "error", "words"),
    [
        ("missing", 422, "invalid_input", "lack 1 feature"),
        ("string", 422, "not_a_number", "must be a number"),
        ("nan", 400, "bad_json", "not valid JSON"),
        ("unknown", 422, "unknown_field", "does not know"),
    ],
)
def test_malformed_rows_get_a_clear_4xx(regression, change, status, error, words):
    row = dict(regression["records"][0])
    if change == "missing":
        row.pop("bmi")
    elif change == "string":
        row["bmi"] = "twenty-two"
    elif change == "nan":
        row["bmi"] = float("nan")
    else:
        row["weight"] = 80
    r = regression["client"].post(
        "/v1/predict",
        headers={**AUTH, "Content-Type": "application/json"},
        content=json.dumps({"rows": [row]}).encode(),
    )
    assert r.status_code == status, r.text
    assert r.json()["error"] == error and words in r.json()["message"]


# ---- multi-label ----------------------------------------------------------------------------


def test_a_yeast_gene_gets_the_labels_whose_probability_reaches_its_threshold(multilabel):
    client, bundle = multilabel["client"], multilabel["bundle"]
    r = _predict(client, multilabel["records"][:20])
    assert r.status_code == 200, r.text
    PredictResponse.model_validate(r.json())
    info = client.get("/v1/model", headers=AUTH).json()
    assert info["kind"] == "multilabel" and info["prediction"] == ["labels", "probabilities"]
    thresholds = dict(zip(info["outputs"], info["metadata"]["target"]["thresholds"]))
    predictions = r.json()["predictions"]
    expected = bundle.predictions(runtime_inputs(bundle, multilabel["rows"].head(20)))
    for prediction, want in zip(predictions, expected):
        assert set(prediction) == {"id", "labels", "probabilities"}
        probabilities = prediction["probabilities"]
        assert prediction["labels"] == [
            n for n in info["outputs"] if probabilities[n] >= thresholds[n]
        ]
        assert prediction["labels"] == want["labels"]
        assert probabilities == pytest.approx(want["probabilities"], abs=1e-9)
    assert sum(len(p["labels"]) for p in predictions) > 20  # real label sets
    metrics = client.get("/metrics", headers=AUTH).text
    first = predictions[0]["labels"][0]
    count = sum(first in p["labels"] for p in predictions)
    assert f'dlw_predictions_total{{label="{first}"}} {float(count)}' in metrics


def test_the_openapi_schema_documents_every_tasks_prediction(multilabel):
    schema = multilabel["client"].get("/openapi.json", headers=AUTH).json()
    items = schema["components"]["schemas"]["PredictResponse"]["properties"]["predictions"]
    shapes = {ref["$ref"].rsplit("/", 1)[1] for ref in items["items"]["anyOf"]}
    assert shapes == {
        "Prediction",
        "ValuePrediction",
        "LabelsPrediction",
        "BoxesPrediction",
        "MaskPrediction",
    }
    components = schema["components"]["schemas"]
    assert set(components["ValuePrediction"]["required"]) == {"id", "value"}
    assert set(components["LabelsPrediction"]["required"]) == {"id", "labels", "probabilities"}
    assert set(components["BoxesPrediction"]["required"]) == {"id", "boxes", "count"}
    assert set(components["Box"]["required"]) == {"box", "label", "score"}
    assert set(components["MaskPrediction"]["required"]) == {
        "id",
        "mask_png",
        "classes",
        "class_share",
    }


# ---- classification: unchanged ----------------------------------------------------------------


def test_classification_answers_are_the_softmax_probabilities_as_before(
    make_app, project_root, digit_pngs
):
    bundle = load_bundle(champion_folder(project_root), threads=1)
    x = bundle.prepare_images(digit_pngs)
    proba = bundle.predict_proba(x)
    assert np.array_equal(bundle.predict_outputs(x), proba)  # bit for bit
    with TestClient(make_app()) as client:
        r = client.post(
            "/v1/predict", headers=AUTH, json={"images": [b64(d) for d in digit_pngs[:4]]}
        )
        info = client.get("/v1/model", headers=AUTH).json()
    assert r.status_code == 200
    for p, row in zip(r.json()["predictions"], proba[:4]):
        best = int(row.argmax())
        assert list(p) == ["id", "label", "confidence", "probabilities"]
        assert p["label"] == bundle.classes[best] and p["confidence"] == float(row[best])
        assert p["probabilities"] == {c: float(v) for c, v in zip(bundle.classes, row)}
    assert info["kind"] == "classification" and info["outputs"] == info["classes"]
    assert info["prediction"] == ["confidence", "label", "probabilities"]
