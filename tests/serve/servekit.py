"""Helpers of the serve tests (a uniquely named module, importable from every test file)."""

from __future__ import annotations

import base64
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from dlworkflow.deploy.serve.loadgen import free_port  # noqa: F401  (the tests import it from here)

TOKEN = "test-token-" + "x" * 24
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def export_version(project: Any, reason: str = "serve tests: untested 1-epoch model") -> int:
    """Export the trained model as a new version (forced: it was never tested) and make it the
    champion; return its number."""
    from dlworkflow.runtime.versions import champion, promote

    result = project.export(force=True, reason=reason)
    version = int(getattr(result, "version", None) or champion(project.root))
    if champion(project.root) != version:
        promote(project.root, version)
    return version


def load(
    port: int, token: str, bodies: list[bytes], concurrency: int
) -> tuple[float, list[float], list[int]]:
    """POST every JSON body to /v1/predict from `concurrency` keep-alive connections
    (dlworkflow/deploy/serve/loadgen.py); (seconds, latencies, statuses)."""
    from dlworkflow.deploy.serve.loadgen import predict_request, run_load

    return run_load(port, [predict_request(port, body, token) for body in bodies], concurrency)


@contextmanager
def server_process(
    cmd: list[str], *, log: Path, port: int, env: dict[str, str], timeout: float = 90
) -> Iterator[subprocess.Popen]:
    """A real `dlw serve` process (stdout and stderr into `log`) on 127.0.0.1:`port`, healthy
    when the block starts; stopped with SIGINT (then killed) when it ends."""
    import httpx

    with open(log, "wb") as out:
        process = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise AssertionError(
                    f"dlw serve exited {process.returncode}: {log.read_text()[-4000:]}"
                )
            try:
                if httpx.get(f"http://127.0.0.1:{port}/v1/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"dlw serve did not become healthy: {log.read_text()[-4000:]}")
            time.sleep(0.2)
        yield process
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
