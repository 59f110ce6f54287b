"""Micro-batching under concurrency, and a prediction log that never holds the raw input."""

from __future__ import annotations

import asyncio
import json
import re

import httpx
import numpy as np
from servekit import AUTH, b64


async def _concurrent(app, bodies):
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await asyncio.gather(
            *[client.post("/v1/predict", headers=AUTH, json=body) for body in bodies]
        )


def _batch_sizes(app) -> tuple[float, float]:
    registry = app.state.server.metrics.registry
    return (
        registry.get_sample_value("dlw_batch_size_count"),
        registry.get_sample_value("dlw_batch_size_sum"),
    )


def test_concurrent_requests_share_one_onnx_call(make_app, digit_pngs):
    app = make_app(max_wait_ms=200, max_batch=32)
    bodies = [{"images": [b64(png)]} for png in digit_pngs[:16]]
    responses = asyncio.run(_concurrent(app, bodies))
    assert [r.status_code for r in responses] == [200] * 16
    calls, items = _batch_sizes(app)
    assert items == 16
    assert calls < 16, f"{calls} ONNX calls for 16 concurrent requests: nothing was batched"
    assert items / calls > 1
    # each request still gets its own answer: the same as asking alone
    alone = asyncio.run(_concurrent(app, bodies[3:4]))[0].json()["predictions"][0]
    shared = responses[3].json()["predictions"][0]
    assert shared.pop("id") != alone.pop("id")  # every prediction has its own id
    assert shared == alone


def test_the_next_batch_collects_while_one_runs_and_starts_when_the_model_is_free():
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from dlworkflow.deploy.serve.batcher import MicroBatcher

    release, sizes = threading.Event(), []

    class SlowModel:  # what infer_outputs calls of a bundle (no embeddings)
        modality = "image"

        def _check_array(self, x):
            return x

        def predict_outputs(self, x):
            sizes.append(len(x))
            release.wait(5)
            return x * 2

    coming = [0]  # requests admitted and still being decoded (Server.preparing)

    async def main():
        batcher = MicroBatcher(
            max_batch=32,
            max_wait_ms=10_000,  # without a batch in the model, the batcher would wait for them
            executor=ThreadPoolExecutor(1),
            expecting=lambda: coming[0],
            embed_features=False,
        )
        model, x = SlowModel(), np.ones((1, 2), dtype=np.float32)
        first = asyncio.ensure_future(batcher.predict(model, x))
        while not sizes:  # the first batch is in the model
            await asyncio.sleep(0.01)
        coming[0] = 1  # one more is on its way, and stays so
        others = [asyncio.ensure_future(batcher.predict(model, x + i)) for i in range(5)]
        await asyncio.sleep(0.05)
        release.set()
        results = await asyncio.wait_for(asyncio.gather(first, *others), timeout=3)
        await batcher.stop()
        return results

    results = asyncio.run(main())
    assert sizes == [1, 5]  # the 5 ready ones went as one batch the moment the model was free
    assert [float(out[0, 0]) for out, _ in results] == [2.0, 2.0, 4.0, 6.0, 8.0, 10.0]


def test_batches_never_exceed_max_batch(make_app, digit_pngs):
    app = make_app(max_wait_ms=200, max_batch=8)
    bodies = [{"images": [b64(p) for p in digit_pngs[i : i + 3]]} for i in range(0, 18, 3)]
    responses = asyncio.run(_concurrent(app, bodies))
    assert all(r.status_code == 200 for r in responses)
    text = app.state.server.metrics.render().decode()
    assert 'dlw_batch_size_bucket{le="8.0"} ' in text
    le8 = float(re.search(r'dlw_batch_size_bucket\{le="8.0"\} (\S+)', text).group(1))
    count = float(re.search(r"dlw_batch_size_count (\S+)", text).group(1))
    assert le8 == count  # every call had at most 8 items


def test_prediction_log_has_summaries_not_inputs(make_app, digit_pngs, project_root):
    app = make_app()
    bodies = [{"images": [b64(png) for png in digit_pngs[:4]]}]
    response = asyncio.run(_concurrent(app, bodies))[0]
    assert response.status_code == 200
    app.state.server.close()  # flushes the log
    path = project_root / ".dlw" / "serve" / "predictions.jsonl"
    text = path.read_text()
    lines = [json.loads(line) for line in text.splitlines()]
    assert len(lines) == 4
    predictions = response.json()["predictions"]
    for line, prediction in zip(lines, predictions):
        assert set(line) == {
            "ts",
            "id",
            "model_version",
            "input",
            "label",
            "confidence",
            "probs",
            "emb",
            "latency_ms",
            "request_items",
        }
        assert line["model_version"] == 1 and line["label"] == prediction["label"]
        assert line["id"] == prediction["id"]  # labels arriving later join on the id
        assert line["input"]["kind"] == "image"
        assert line["input"]["width"] == 16 and line["input"]["height"] == 16
        assert np.isfinite(line["input"]["mean"]) and line["input"]["std"] >= 0
        assert len(line["input"]["channel_means"]) == 1
        assert len(line["emb"]) == 32 and all(np.isfinite(line["emb"]))
        assert abs(sum(line["probs"]) - 1) < 1e-3 and len(line["probs"]) == 10
        assert 0 < line["confidence"] <= 1 and line["latency_ms"] > 0
    for png in digit_pngs[:4]:  # no raw input, in any encoding
        assert b64(png)[:24] not in text
        assert png[:16].hex() not in text
    assert len(text) < 900 * len(lines)  # summaries, 10 probabilities, 32-d embedding


def test_prediction_log_rotates(make_app, digit_pngs, project_root):
    app = make_app(log_max_mb=0.002, log_backups=2)  # ~2 KB per file
    bodies = [{"images": [b64(png) for png in digit_pngs]}] * 6  # 120 lines, ~24 KB
    assert all(r.status_code == 200 for r in asyncio.run(_concurrent(app, bodies)))
    app.state.server.close()
    folder = project_root / ".dlw" / "serve"
    names = sorted(p.name for p in folder.glob("predictions*.jsonl*"))
    assert names == ["predictions.jsonl", "predictions.jsonl.1", "predictions.jsonl.2"]
    for path in folder.glob("predictions*.jsonl*"):
        assert path.stat().st_size <= 2100
        assert all(json.loads(line)["model_version"] == 1 for line in path.read_text().splitlines())


def test_data_urls_are_accepted(make_app, digit_pngs):
    app = make_app()
    url = "data:image/png;base64," + b64(digit_pngs[0])
    plain, data = asyncio.run(
        _concurrent(app, [{"images": [b64(digit_pngs[0])]}, {"images": [url]}])
    )
    assert data.status_code == 200
    assert _without_ids(data.json()) == _without_ids(plain.json())


def _without_ids(body):
    return {
        **body,
        "predictions": [{k: v for k, v in p.items() if k != "id"} for p in body["predictions"]],
    }
