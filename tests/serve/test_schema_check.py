"""`dlw serve` checks requests against the feature schema the export carries: a categorical
value never seen is refused (422 naming the field and the expectation); a size, number or
image kind outside what ingest saw is served, logged ("invariants") and counted."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from servekit import AUTH, b64

from dlworkflow.deploy.serve.problems import ApiError
from dlworkflow.deploy.serve.schema_check import check_items


def _png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def test_the_export_carries_the_schema_and_serve_logs_breaches(make_app, project_root, digit_pngs):
    from dlworkflow.runtime.bundle import load_bundle
    from dlworkflow.runtime.versions import champion_folder

    schema = load_bundle(champion_folder(project_root)).schema
    assert schema is not None and schema["image"]["channels"] == ["gray"]
    side = schema["image"]["width"]["max"]
    big = _png(np.zeros((side + 5, side + 5), dtype=np.uint8))
    colour = _png(np.zeros((side, side, 3), dtype=np.uint8))
    with TestClient(make_app()) as client:
        r = client.post(
            "/v1/predict",
            headers=AUTH,
            json={"images": [b64(digit_pngs[0]), b64(big), b64(colour)]},
        )
        assert r.status_code == 200, r.text
        metrics = client.get("/metrics", headers=AUTH).text
    assert "dlw_input_invariant_violations_total 2.0" in metrics
    lines = [
        json.loads(x)
        for x in (project_root / ".dlw/serve/predictions.jsonl").read_text().splitlines()
    ]
    low = schema["image"]["width"]["min"]
    assert "invariants" not in lines[0]["input"]
    assert lines[1]["input"]["invariants"] == [
        f"width outside [{low}, {side}]",
        f"height outside [{low}, {side}]",
    ]
    assert lines[2]["input"]["invariants"] == ["colour image (mode RGB) never seen"]


TABLE_SCHEMA = {
    "features": {
        "age": {"type": "number", "min": 18, "max": 90, "missing": False},
        "city": {"type": "category", "values": ["Bergen", "Oslo"], "missing": True},
        "note": {"type": "text", "values": None, "missing": True},
    }
}


def test_a_category_never_seen_is_refused_with_the_field_and_expectation():
    with pytest.raises(ApiError) as err:
        check_items(TABLE_SCHEMA, "tabular", [{"age": 30, "city": "Oslo"}, {"city": "Paris"}])
    assert err.value.status == 422 and err.value.error == "schema_violation"
    assert "Row 1, field 'city'" in err.value.message
    assert err.value.expected.startswith("rows[1].city: one of Bergen, Oslo")
    assert err.value.received == "'Paris'"


def test_numbers_out_of_range_and_missing_values_are_only_reported():
    soft = check_items(
        TABLE_SCHEMA,
        "tabular",
        [
            {"age": 30, "city": "Oslo", "note": "x"},
            {"age": 130, "city": None, "note": "free text is not checked"},
            {"city": "Bergen"},
        ],
    )
    assert soft == [[], ["age outside [18, 90]"], ["age missing (never missing at ingest)"]]
    texts = check_items({"text": {"chars": {"min": 3, "max": 10}}}, "text", ["short", "x" * 50])
    assert texts == [[], ["text length outside [3, 10] characters"]]
    assert check_items(None, "tabular", [{"city": "Paris"}]) == [[]]  # older exports: nothing


def test_a_request_image_is_opened_twice_its_header_once(make_app, digit_pngs, monkeypatch):
    """The header (size, mode, format: the pixel limit and the schema check) is read once,
    then the image decoded once (was: three opens, the schema check reading it again)."""
    from PIL import Image as PILImage

    from dlworkflow.deploy.serve.inputs import image_headers

    opens = []
    real_open = PILImage.open

    def counting_open(*args, **kwargs):
        opens.append(1)
        return real_open(*args, **kwargs)

    monkeypatch.setattr(PILImage, "open", counting_open)
    header = image_headers([digit_pngs[0]], max_pixels=10_000)[0]
    assert (header.mode, header.format) == ("L", "png") and min(header.size) > 0
    opens.clear()
    with TestClient(make_app()) as client:
        r = client.post("/v1/predict", headers=AUTH, json={"images": [b64(digit_pngs[0])]})
    assert r.status_code == 200 and len(opens) == 2
