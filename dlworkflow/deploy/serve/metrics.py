"""Prometheus metrics of one server (its own registry, so several apps can live in a process)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

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
        self.model_version = Gauge("dlw_model_version", "Version of the served model.", registry=r)
        self.in_flight = Gauge(
            "dlw_requests_in_flight",
            "Requests being answered (counted against serve.max_concurrency).",
            registry=r,
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

    def observe_request(self, path: str, status: int, seconds: float) -> None:
        route = path if path in ROUTES else "other"
        self.requests.labels(route, str(status)).inc()
        self.latency.labels(route).observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)
