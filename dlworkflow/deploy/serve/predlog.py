"""The prediction log: one JSON line per prediction, for monitoring (drift, confidence).

Each line is a record of `dlworkflow.runtime.observe` (the format `dlw monitor` reads):
summary statistics of the input, never the input itself, the probabilities and a 32-number
random projection of the network's features. Lines are written by a background thread (the
request never waits for the disk) to a rotating file under .dlw/serve/.
"""

from __future__ import annotations

import collections
import json
import logging
import logging.handlers
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from dlworkflow.runtime.observe import records


def log_path(root: Path) -> Path:
    return root / ".dlw" / "serve" / "predictions.jsonl"


class PredictionLog:
    """Entries are appended to a deque as they are (no lock, no thread wake-up: cheap for the
    request); a background thread turns them into JSON lines every `flush_s` seconds and
    writes them through a RotatingFileHandler."""

    def __init__(self, path: Path, *, max_bytes: int, backups: int, flush_s: float = 0.2) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.flush_s = flush_s
        self._file = logging.handlers.RotatingFileHandler(
            path, maxBytes=max_bytes, backupCount=backups, encoding="utf-8", delay=True
        )
        self._file.setFormatter(logging.Formatter("%(message)s"))
        self._pending: collections.deque[tuple[Any, ...]] = collections.deque()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="dlw-prediction-log", daemon=True)
        self._thread.start()

    def write(
        self,
        *,
        bundle: Any,
        summaries: list[dict[str, Any]],
        probs: np.ndarray,
        emb: np.ndarray | None,
        ids: list[str],
        latency_ms: float,
    ) -> None:
        """Queue one request's records (built into JSON by the background thread)."""
        self._pending.append((time.time(), bundle, summaries, probs, emb, ids, latency_ms))

    def _run(self) -> None:
        while not self._stop.wait(self.flush_s):
            self.flush()
        self.flush()

    def flush(self) -> None:
        while self._pending:
            entry = self._pending.popleft()
            try:
                for line in _lines(*entry):
                    self._file.emit(logging.makeLogRecord({"msg": line}))
            except Exception:  # noqa: BLE001 - a full disk must not stop the server
                logging.getLogger("dlworkflow.deploy.serve").exception(
                    "prediction log write failed"
                )

    def close(self) -> None:
        """Write what is pending, then close the file."""
        self._stop.set()
        self._thread.join(timeout=10)
        self._file.close()


def _lines(
    ts: float,
    bundle: Any,
    summaries: list[dict[str, Any]],
    probs: np.ndarray,
    emb: np.ndarray | None,
    ids: list[str],
    latency_ms: float,
) -> list[str]:
    return [
        json.dumps(record, separators=(",", ":"))
        for record in records(bundle, summaries, probs, emb, ids=ids, ts=ts, latency_ms=latency_ms)
    ]
