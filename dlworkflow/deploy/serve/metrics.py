"""Prometheus metrics of one server (its own registry, so several apps can live in a process).

With several server processes (serve.workers), `dlw serve` points PROMETHEUS_MULTIPROC_DIR at
an emptied .dlw/serve/metrics/ before it starts them: each process's values live in its own
memory-mapped files there, and /metrics, whichever process answers, sums them all (the
client library's multiprocess mode). Gauges say how: requests in flight add up over the live
processes, the model version is the highest a live process serves.
"""

from __future__ import annotations

import os
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

#: Set (by `dlw serve` with several workers) before prometheus_client is imported.
MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"


def multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROCESS_ENV) or None


ROUTES = ("/v1/predict", "/v1/health", "/v1/model", "/metrics", "/openapi.json", "/docs")
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


class ServerMetrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "dlw_requests",
            "HTTP requests by route and status code.",
            ("route", "status"),
            registry=r,
        )
        self.latency = Histogram(
            "dlw_request_latency_seconds",
            "Request latency by route.",
            ("route",),
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.batch_size = Histogram(
            "dlw_batch_size",
            "Items per ONNX Runtime call (micro-batches of concurrent requests).",
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        self.request_items = Histogram(
            "dlw_request_items", "Items per predict request.", buckets=BATCH_BUCKETS, registry=r
        )
        self.predictions = Counter(
            "dlw_predictions", "Predictions by predicted class.", ("label",), registry=r
        )
        self.model_version = Gauge(
            "dlw_model_version",
            "Version of the served model.",
            registry=r,
            multiprocess_mode="livemax",
        )
        self.in_flight = Gauge(
            "dlw_requests_in_flight",
            "Requests being answered (counted against serve.max_concurrency, per process).",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.prediction_log_dropped = Counter(
            "dlw_prediction_log_dropped",
            "Prediction log entries dropped: its queue was full (the disk fell behind).",
            registry=r,
        )
        self.input_invariant_violations = Counter(
            "dlw_input_invariant_violations",
            "Items served although outside the feature schema's soft expectations (a number "
            "or size outside the range seen at ingest, ...): logged with the prediction.",
            registry=r,
        )
        self.reloads = Counter(
            "dlw_model_reloads", "Hot reloads by outcome.", ("outcome",), registry=r
        )
        self._children: dict[tuple[str, int], tuple[Any, Any]] = {}
        self._predicted: dict[str, Any] = {}

    def observe_request(self, path: str, status: int, seconds: float) -> None:
        route = path if path in ROUTES else "other"
        children = self._children.get((route, status))
        if children is None:  # looked up once per route and status (labels() takes a lock)
            children = (self.requests.labels(route, str(status)), self.latency.labels(route))
            self._children[(route, status)] = children
        children[0].inc()
        children[1].observe(seconds)

    def predicted(self, label: str) -> None:
        """Count one prediction of `label` (dlw_predictions)."""
        child = self._predicted.get(label)
        if child is None:
            child = self._predicted[label] = self.predictions.labels(label)
        child.inc()

    def render(self) -> bytes:
        folder = multiprocess_dir()
        if folder is None:
            return generate_latest(self.registry)
        from prometheus_client.multiprocess import MultiProcessCollector

        every_process = CollectorRegistry()
        MultiProcessCollector(every_process, path=folder)
        return generate_latest(every_process)

    def close(self) -> None:
        """This process's live gauges stop counting (multiprocess mode only)."""
        if multiprocess_dir() is not None:
            from prometheus_client.multiprocess import mark_process_dead

            mark_process_dead(os.getpid())
