"""Helpers of the serve tests (a uniquely named module, importable from every test file)."""

from __future__ import annotations

import base64
from typing import Any

from dlworkflow.deploy.serve.loadgen import free_port  # noqa: F401  (the tests import it from here)

TOKEN = "test-token-" + "x" * 24
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def export_version(project: Any, reason: str = "serve tests: untested 1-epoch model") -> int:
    """Export the trained model as a new version (forced: it was never tested) and make it the
    champion; return its number."""
    from dlworkflow.deploy.runtime.versions import champion, promote

    result = project.export(force=True, reason=reason)
    version = int(getattr(result, "version", None) or champion(project.root))
    if champion(project.root) != version:
        promote(project.root, version)
    return version



def load(port: int, token: str, bodies: list[bytes], concurrency: int
         ) -> tuple[float, list[float], list[int]]:
    """POST every JSON body to /v1/predict from `concurrency` keep-alive connections
    (dlworkflow/deploy/serve/loadgen.py); (seconds, latencies, statuses)."""
    from dlworkflow.deploy.serve.loadgen import predict_request, run_load

    return run_load(port, [predict_request(port, body, token) for body in bodies],
                    concurrency)
