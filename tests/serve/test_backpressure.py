"""Server back-pressure: a concurrency cap (503 + Retry-After), decoding off the event loop,
/v1/health responsive under a flood of decompression-heavy requests, and a prediction log
whose queue is bounded and whose full disk is one warning, not one per line."""

from __future__ import annotations

import asyncio
import errno
import io
import json
import logging
import sys
import threading
import time
from pathlib import Path

import httpx
import numpy as np
from servekit import AUTH, TOKEN, b64, free_port, server_process

FLOOD = 24  # concurrent heavy requests


def _heavy_png(side: int = 3500) -> bytes:
    """A grey side x side PNG: ~16 KB on the wire, 12 M pixels to decode (the default
    serve.max_image_pixels is 16.8 M): the cheap-to-send, costly-to-decode kind."""
    from PIL import Image

    out = io.BytesIO()
    Image.new("L", (side, side), 7).save(out, "PNG", optimize=True)
    return out.getvalue()


def _serve_command(root: Path, port: int) -> list[str]:
    script = (
        "import sys, uvicorn\n"
        "from pathlib import Path\n"
        "from dlworkflow.config import Serve\n"
        "from dlworkflow.deploy.serve.app import create_app\n"
        "app = create_app(Path(sys.argv[1]), Serve(timeout_s=120), token=sys.argv[2])\n"
        "uvicorn.run(app, host='127.0.0.1', port=int(sys.argv[3]), log_level='warning')\n"
    )
    return [sys.executable, "-c", script, str(root), TOKEN, str(port)]


async def _flood_and_probe(base: str, body: bytes) -> tuple[float, list[int], list[float]]:
    """FLOOD concurrent predict requests; /v1/health asked one after another while they run.
    (flood seconds, flood statuses, health latencies)."""
    limits = httpx.Limits(max_connections=FLOOD + 4)
    async with (
        httpx.AsyncClient(base_url=base, timeout=120, limits=limits) as client,
        httpx.AsyncClient(base_url=base, timeout=120) as prober,
    ):
        assert (await prober.get("/v1/health")).status_code == 200  # connection is warm
        headers = {**AUTH, "Content-Type": "application/json"}
        start = time.perf_counter()
        flood = asyncio.gather(
            *[client.post("/v1/predict", headers=headers, content=body) for _ in range(FLOOD)]
        )
        task = asyncio.ensure_future(flood)
        latencies: list[float] = []
        await asyncio.sleep(0.3)  # the flood has arrived and is being decoded
        while not task.done():
            t0 = time.perf_counter()
            r = await prober.get("/v1/health")
            latencies.append(time.perf_counter() - t0)
            assert r.status_code == 200
            await asyncio.sleep(0.05)
        responses = await task
        return time.perf_counter() - start, [r.status_code for r in responses], latencies


def test_health_answers_within_a_second_during_a_decompression_flood(project_root, tmp_path):
    port = free_port()
    body = json.dumps({"images": [b64(_heavy_png())]}).encode()
    with server_process(
        _serve_command(project_root, port),
        log=tmp_path / "serve.log",
        port=port,
        env={"OMP_NUM_THREADS": "1", **__import__("os").environ},
    ):
        seconds, statuses, latencies = asyncio.run(
            _flood_and_probe(f"http://127.0.0.1:{port}", body)
        )
    print(
        f"\nflood of {FLOOD}: {seconds:.1f} s; health probes {len(latencies)}, "
        f"max {max(latencies or [0]) * 1000:.0f} ms, "
        f"median {np.median(latencies or [0]) * 1000:.0f} ms"
    )
    assert statuses == [200] * FLOOD
    assert latencies, "the flood ended before /v1/health could be asked"
    # decoded on the event loop, /v1/health waited for most of the flood (3.98 s of 4.4 s)
    bound = min(1.0, seconds / 3)
    assert max(latencies) < bound, (
        f"/v1/health took {max(latencies):.2f} s during a flood of {seconds:.1f} s"
    )


async def _gather(app, calls):
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await asyncio.gather(*[call(client) for call in calls])


def test_requests_past_max_concurrency_get_503_with_retry_after(make_app, digit_pngs):
    # the first two wait for their micro-batch (max_wait_ms): both are in flight when the
    # others arrive; /v1/health is neither counted nor refused
    app = make_app(max_concurrency=2, max_wait_ms=400)
    body = {"images": [b64(digit_pngs[0])]}

    def predict(client):
        return client.post("/v1/predict", headers=AUTH, json=body)

    def health(client):
        return client.get("/v1/health")

    responses = asyncio.run(_gather(app, [predict, predict, predict, health, predict]))
    statuses = [r.status_code for r in responses]
    assert statuses == [200, 200, 503, 200, 503], statuses
    busy = responses[2]
    assert int(busy.headers["Retry-After"]) >= 1
    problem = busy.json()
    assert problem["error"] == "busy" and "serve.max_concurrency" in problem["fix"]
    # the slots are given back: the next request is served
    assert asyncio.run(_gather(app, [predict]))[0].status_code == 200
    registry = app.state.server.metrics.registry
    sample = registry.get_sample_value
    assert sample("dlw_requests_total", {"route": "/v1/predict", "status": "503"}) == 2
    assert sample("dlw_requests_in_flight") == 0


def test_every_image_and_large_json_body_is_decoded_off_the_event_loop(
    make_app, digit_pngs, monkeypatch
):
    import base64 as b64module

    from dlworkflow.runtime.bundle import Bundle

    threads: dict[str, set[str]] = {"decode": set(), "json": set(), "base64": set()}
    prepare_images = Bundle.prepare_images
    loads, b64decode = json.loads, b64module.b64decode

    def spy_prepare(self, values, *args, **kwargs):
        threads["decode"].add(threading.current_thread().name)
        return prepare_images(self, values, *args, **kwargs)

    def spy_loads(s, *args, **kwargs):
        if len(s) > 100_000:
            threads["json"].add(threading.current_thread().name)
        return loads(s, *args, **kwargs)

    def spy_b64decode(s, *args, **kwargs):
        if len(s) > 100_000:
            threads["base64"].add(threading.current_thread().name)
        return b64decode(s, *args, **kwargs)

    monkeypatch.setattr(Bundle, "prepare_images", spy_prepare)
    monkeypatch.setattr(json, "loads", spy_loads)
    monkeypatch.setattr(b64module, "b64decode", spy_b64decode)
    app = make_app()
    loop_thread = threading.current_thread().name  # asyncio.run runs the app's loop here
    tiny = {"images": [b64(digit_pngs[0])]}  # a few hundred bytes: decoded inline before
    noise = np.random.default_rng(0).integers(0, 255, (300, 300, 3), dtype=np.uint8)
    from PIL import Image

    out = io.BytesIO()
    Image.fromarray(noise).save(out, "PNG")
    large = {"images": [b64(out.getvalue())]}  # ~270 KB body
    assert len(json.dumps(large)) > 200_000
    responses = asyncio.run(
        _gather(
            app,
            [lambda c, b=b: c.post("/v1/predict", headers=AUTH, json=b) for b in (tiny, large)],
        )
    )
    assert [r.status_code for r in responses] == [200, 200]
    files = [("files", ("big.png", out.getvalue(), "image/png"))] * 2  # parsed in a thread too
    upload = asyncio.run(_gather(app, [lambda c: c.post("/v1/predict", headers=AUTH, files=files)]))
    assert upload[0].status_code == 200 and len(upload[0].json()["predictions"]) == 2
    assert threads["decode"] and loop_thread not in threads["decode"], threads
    assert threads["json"] and loop_thread not in threads["json"], threads
    assert threads["base64"] and loop_thread not in threads["base64"], threads


# ---- the prediction log ------------------------------------------------------------------
def _plain_lines(monkeypatch):
    from dlworkflow.deploy.serve import predlog

    def lines(ts, bundle, summaries, probs, emb, ids, latency_ms):
        return [json.dumps({"id": i}) for i in ids]

    monkeypatch.setattr(predlog, "_lines", lines)


def _entry(log, i: int) -> None:
    log.write(
        bundle=None, summaries=[], probs=np.zeros((1, 2)), emb=None, ids=[f"r{i}"], latency_ms=1.0
    )


def test_prediction_log_queue_is_bounded_and_counts_what_it_drops(tmp_path, monkeypatch):
    from dlworkflow.deploy.serve.predlog import PredictionLog

    _plain_lines(monkeypatch)
    dropped: list[int] = []
    log = PredictionLog(
        tmp_path / "p.jsonl",
        max_bytes=10**6,
        backups=1,
        flush_s=3600,  # the writer thread does not drain it during the test
        max_pending=4,
        on_drop=dropped.append,
    )
    try:
        for i in range(10):
            _entry(log, i)
        assert log.dropped == 6 and len(dropped) == 6
    finally:
        log.close()
    written = [json.loads(line)["id"] for line in (tmp_path / "p.jsonl").read_text().splitlines()]
    assert written == ["r0", "r1", "r2", "r3"]  # the oldest kept, the overflow dropped


def test_a_dropped_log_entry_is_a_metric(make_app, digit_pngs):
    app = make_app(log_predictions=True)
    server = app.state.server
    server.log.max_pending = 0  # every entry overflows
    body = {"images": [b64(digit_pngs[0])]}
    assert (
        asyncio.run(_gather(app, [lambda c: c.post("/v1/predict", headers=AUTH, json=body)]))[
            0
        ].status_code
        == 200
    )
    assert server.metrics.registry.get_sample_value("dlw_prediction_log_dropped_total") == 1


class _Disk:
    """A log file whose disk is full (ENOSPC on every write) until `full` is False."""

    def __init__(self) -> None:
        self.full = True
        self.lines: list[str] = []

    def write(self, text: str) -> int:
        if self.full:
            raise OSError(errno.ENOSPC, "No space left on device")
        self.lines.append(text)
        return len(text)

    def flush(self) -> None:
        pass

    def tell(self) -> int:
        return 0

    def seek(self, *args) -> int:
        return 0

    def close(self) -> None:
        pass


def test_a_full_disk_is_one_warning_not_one_per_line(tmp_path, monkeypatch, caplog, capsys):
    from dlworkflow.deploy.serve.predlog import PredictionLog

    _plain_lines(monkeypatch)
    disk = _Disk()
    monkeypatch.setattr(logging.FileHandler, "_open", lambda self: disk)
    log = PredictionLog(tmp_path / "p.jsonl", max_bytes=10**6, backups=1, flush_s=3600)

    def warnings() -> list[logging.LogRecord]:
        return [r for r in caplog.records if r.levelno >= logging.WARNING]

    try:
        with caplog.at_level(logging.WARNING, logger="dlworkflow.deploy.serve"):
            for i in range(50):
                _entry(log, i)
                log.flush()
            assert len(warnings()) == 1, [r.getMessage() for r in warnings()]
            assert "No space left" in warnings()[0].getMessage()
            disk.full = False  # space again: lines are written, and the next failure warns
            for i in range(3):
                _entry(log, 100 + i)
                log.flush()
            assert len(disk.lines) == 3
            disk.full = True
            for i in range(20):
                _entry(log, 200 + i)
                log.flush()
            assert len(warnings()) == 2
    finally:
        disk.full = False
        log.close()
    assert "Logging error" not in capsys.readouterr().err  # no traceback per line either
