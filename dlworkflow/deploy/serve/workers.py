"""`serve.workers` > 1: uvicorn's supervisor starts that many processes on one listening
socket, and each builds its own app here (`app_from_env`, a factory named by import string:
the processes are spawned, not forked, so no ONNX Runtime or thread state is copied).

The parent passes the project, the settings, the token and the --force reason in one
environment variable (the children's environment is readable by the same user only, as the
token file is), and points PROMETHEUS_MULTIPROC_DIR at an emptied .dlw/serve/metrics/<its pid>/
so that /metrics sums every process.
"""

from __future__ import annotations

import gc
import json
import os
import shutil
from pathlib import Path
from typing import Any

from dlworkflow.config import Serve
from dlworkflow.deploy.serve.metrics import MULTIPROCESS_ENV
from dlworkflow.ledger import pid_alive

WORKER_ENV = "DLW_SERVE_WORKER"
FACTORY = "dlworkflow.deploy.serve.workers:app_from_env"


def prepare_workers(root: Path, settings: Serve, *, token: str, force_reason: str | None) -> Path:
    """Set this process's environment for the workers it is about to spawn; the metrics
    folder of this server (.dlw/serve/metrics/<pid>: another server on the same project
    keeps its own), emptied, is returned. Folders of servers no longer running go."""
    parent = Path(root) / ".dlw" / "serve" / "metrics"
    if parent.is_dir():
        for old in parent.iterdir():
            if not (old.name.isdigit() and pid_alive(int(old.name))):
                shutil.rmtree(old, ignore_errors=True)
    metrics = parent / str(os.getpid())
    shutil.rmtree(metrics, ignore_errors=True)  # the client library needs it empty at start
    metrics.mkdir(parents=True)
    os.environ[MULTIPROCESS_ENV] = str(metrics)
    os.environ[WORKER_ENV] = json.dumps(
        {
            "root": str(root),
            "settings": settings.model_dump(mode="json"),
            "token": token,
            "force_reason": force_reason,
        }
    )
    return metrics


def app_from_env() -> Any:
    """The app of one worker process (uvicorn calls it in each)."""
    from dlworkflow.deploy.serve.app import create_app

    spec = json.loads(os.environ[WORKER_ENV])
    app = create_app(
        Path(spec["root"]),
        Serve.model_validate(spec["settings"]),
        token=spec["token"],
        force_reason=spec["force_reason"],
    )
    gc.collect()
    gc.freeze()  # the loaded app and model stay put: later collections skip them
    return app
