"""The prediction log: one JSON line per prediction, for monitoring (drift, confidence).

It holds summary statistics of each input, never the input itself: images give width, height,
mean and standard deviation of the network input; texts their length in characters, words and
tokens; rows their number of fields and missing values. Lines are written by a background
thread (the request never waits for the disk) to a rotating file under .dlw/serve/.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import math
import collections
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np


def log_path(root: Path) -> Path:
    return root / ".dlw" / "serve" / "predictions.jsonl"


class PredictionLog:
    """Entries are appended to a deque as they are (no lock, no thread wake-up: cheap for the
    request); a background thread turns them into JSON lines every `flush_s` seconds and
    writes them through a RotatingFileHandler."""

    def __init__(self, path: Path, *, max_bytes: int, backups: int,
                 flush_s: float = 0.2) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.flush_s = flush_s
        self._file = logging.handlers.RotatingFileHandler(
            path, maxBytes=max_bytes, backupCount=backups, encoding="utf-8", delay=True)
        self._file.setFormatter(logging.Formatter("%(message)s"))
        self._pending: collections.deque[tuple[Any, ...]] = collections.deque()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="dlw-prediction-log",
                                        daemon=True)
        self._thread.start()

    def write(self, *, version: int, summaries: list[dict[str, Any]],
              predictions: list[dict[str, Any]], latency_ms: float, batch: int) -> None:
        self._pending.append((time.time(), version, summaries, predictions, latency_ms, batch))

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
                logging.getLogger("dlworkflow.deploy.serve").exception("prediction log write failed")

    def close(self) -> None:
        """Write what is pending, then close the file."""
        self._stop.set()
        self._thread.join(timeout=10)
        self._file.close()


def _lines(ts: float, version: int, summaries: list[dict[str, Any]],
           predictions: list[dict[str, Any]], latency_ms: float, batch: int) -> list[str]:
    stamp = datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="milliseconds")
    return [json.dumps({
        "ts": stamp, "model_version": version, "input": summary,
        "label": prediction["label"], "confidence": round(float(prediction["confidence"]), 6),
        "latency_ms": round(latency_ms, 3), "request_items": batch,
    }, separators=(",", ":")) for summary, prediction in zip(summaries, predictions)]


def image_summaries(sizes: list[tuple[int, int]], x: np.ndarray) -> list[dict[str, Any]]:
    flat = x.reshape(len(x), -1).astype(np.float64)
    return [{"kind": "image", "width": int(w), "height": int(h),
             "mean": round(float(m), 5), "std": round(float(s), 5)}
            for (w, h), m, s in zip(sizes, flat.mean(axis=1), flat.std(axis=1))]


def text_summaries(texts: list[str], x: np.ndarray) -> list[dict[str, Any]]:
    ids = x.reshape(len(x), -1)
    return [{"kind": "text", "chars": len(text), "words": len(text.split()),
             "tokens": int(np.count_nonzero(row))} for text, row in zip(texts, ids)]


def row_summaries(rows: list[dict[str, Any]], expected: list[str] | None
                  ) -> list[dict[str, Any]]:
    out = []
    for row in rows:
        missing = sum(1 for v in row.values() if v is None or _is_nan(v))
        if expected:
            missing += sum(1 for name in expected if name not in row)
        out.append({"kind": "row", "fields": len(row), "missing": missing})
    return out


def _is_nan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)
