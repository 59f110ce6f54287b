"""The serving latency the benchmarks report: POST /v1/predict to the champion served in
process (FastAPI's TestClient, the bearer token, ONNX Runtime), one request at a time."""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

WARM_UP = 10


def p50_p95(
    root: Path, body: dict[str, Any], requests: int, *, token: str, force_reason: str | None = None
) -> tuple[float, float]:
    """(p50, p95) milliseconds of `requests` POSTs of `body` after WARM_UP unmeasured ones."""
    from fastapi.testclient import TestClient

    from dlworkflow.config import Serve
    from dlworkflow.deploy.serve.app import create_app

    server = create_app(root, Serve(max_wait_ms=1), token=token, force_reason=force_reason)
    headers = {"Authorization": f"Bearer {token}"}
    times = []
    try:
        with TestClient(server) as client:
            for i in range(WARM_UP + requests):
                started = time.perf_counter()
                answer = client.post("/v1/predict", headers=headers, json=body)
                elapsed = (time.perf_counter() - started) * 1000
                assert answer.status_code == 200, answer.text
                if i >= WARM_UP:
                    times.append(elapsed)
    finally:
        server.state.server.close()
    times.sort()
    return statistics.median(times), times[int(round(0.95 * (len(times) - 1)))]
