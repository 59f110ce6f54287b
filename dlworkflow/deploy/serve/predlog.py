"""The prediction log: one JSON line per prediction, for monitoring (drift, confidence).

Each line is a record of `dlworkflow.runtime.observe` (the format `dlw monitor` reads):
summary statistics of the input, never the input itself, the probabilities and a 32-number
random projection of the network's features. Lines are written by a background thread (the
request never waits for the disk) to a rotating file under .dlw/serve/, one per server process
(dlworkflow.runtime.prediction_logs: `serve.workers` processes never share a file).

The queue is bounded: when the disk cannot keep up, new entries are dropped and counted (the
dlw_prediction_log_dropped metric), never waited for. A failing disk (full: ENOSPC) is one
warning in the server's log, and one more only after it has recovered and failed again.
"""

from __future__ import annotations

import collections
import contextlib
import json
import logging
import logging.handlers
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from dlworkflow.runtime.observe import records

log = logging.getLogger("dlworkflow.deploy.serve")
#: Entries turned into lines per chunk of writes (bounds the memory of one flush).
FLUSH_LINES = 1024


class PredictionLog:
    """Entries are appended to a deque as they are (no lock, no thread wake-up: cheap for the
    request); a background thread turns them into JSON lines every `flush_s` seconds and
    writes them through a RotatingFileHandler. At most `max_pending` entries wait: more are
    dropped (`on_drop` is called with the number, and `dropped` counts them)."""

    def __init__(
        self,
        path: Path,
        *,
        max_bytes: int,
        backups: int,
        flush_s: float = 0.2,
        max_pending: int = 10_000,
        on_drop: Callable[[int], None] | None = None,
    ) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.flush_s = flush_s
        self.max_pending = max_pending
        self.on_drop = on_drop
        self.dropped = 0
        self.failing = False  # the last write failed: warned once, quiet until it recovers
        self._file = _Handler(
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
        """Queue one request's records (built into JSON by the background thread), or drop
        them when `max_pending` entries already wait."""
        if len(self._pending) >= self.max_pending:
            self.dropped += 1
            if self.on_drop is not None:
                self.on_drop(1)
            return
        self._pending.append((time.time(), bundle, summaries, probs, emb, ids, latency_ms))

    def _run(self) -> None:
        while not self._stop.wait(self.flush_s):
            self.flush()
        self.flush()

    def flush(self) -> None:
        """Build the pending entries' lines and write them a chunk at a time (one write, one
        size check for rotation per chunk, not per line: the disk work of a busy server)."""
        while self._pending:
            lines: list[str] = []
            while self._pending and len(lines) < FLUSH_LINES:
                entry = self._pending.popleft()
                try:
                    lines += _lines(*entry)
                except Exception:  # noqa: BLE001 - a record that cannot be built: a bug, logged
                    log.exception("prediction log: a record could not be written")
            try:
                for chunk in _chunks(lines, self._file.maxBytes):
                    self._emit(chunk)
            except OSError as exc:  # a full disk must not stop the server, nor flood its log
                self._failed(exc)
            else:
                if self.failing and lines:
                    self.failing = False
                    log.info("prediction log: writing to %s again", self.path)

    def _emit(self, line: str) -> None:
        self._file.error = None
        self._file.emit(logging.makeLogRecord({"msg": line}))
        if self._file.error is not None:  # the handler swallows it (handleError): raise it
            raise self._file.error

    def _failed(self, exc: OSError) -> None:
        with contextlib.suppress(OSError):  # reopened at the next write (a freed disk)
            self._file.close()
        if not self.failing:
            self.failing = True
            log.warning(
                "prediction log: cannot write to %s (%s); prediction lines are lost until it "
                "can be written again (this is reported once)",
                self.path,
                exc.strerror or exc,
            )

    def close(self) -> None:
        """Write what is pending, then close the file."""
        self._stop.set()
        self._thread.join(timeout=10)
        self._file.close()


class _Handler(logging.handlers.RotatingFileHandler):
    """A RotatingFileHandler that keeps the error of its last emit instead of printing a
    traceback to stderr (logging's default: one per line on a full disk)."""

    error: OSError | None = None

    def handleError(self, record: logging.LogRecord) -> None:
        exc = sys.exc_info()[1]
        self.error = exc if isinstance(exc, OSError) else OSError(str(exc))


def _chunks(lines: list[str], max_bytes: int) -> list[str]:
    """The lines joined into chunks each shorter than a log file (`max_bytes`, rotation's
    limit; 0: no limit), so a file never holds more than before: a chunk is written to the
    current file when it fits, else to a new one. A line longer than a file is its own chunk."""
    chunks: list[str] = []
    current: list[str] = []
    size = 0
    for line in lines:
        if current and max_bytes > 0 and size + len(line) + 1 >= max_bytes:
            chunks.append("\n".join(current))
            current, size = [], 0
        current.append(line)
        size += len(line) + 1
    if current:
        chunks.append("\n".join(current))
    return chunks


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
