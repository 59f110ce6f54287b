"""The FastAPI app of `dlw serve`: predict, health, model, metrics. No torch is imported.

app = create_app(root, config.serve, token="...")   # loads the champion (ServeError if none)
uvicorn.run(app, host="127.0.0.1", port=8000)
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from dlworkflow.config import Serve
from dlworkflow.deploy.serve.batcher import MicroBatcher
from dlworkflow.deploy.serve.holder import ModelHolder
from dlworkflow.deploy.serve.inputs import (
    ImageHeader,
    check_clips,
    check_rows,
    image_headers,
    input_error,
    parse_items,
    read_body,
)
from dlworkflow.deploy.serve.metrics import ServerMetrics
from dlworkflow.deploy.serve.predlog import PredictionLog
from dlworkflow.deploy.serve.problems import ApiError, busy, unauthorized
from dlworkflow.deploy.serve.schema_check import check_items, with_invariants
from dlworkflow.deploy.serve.schemas import (
    Health,
    ModelInfo,
    PredictResponse,
    error_responses,
    predict_openapi,
)
from dlworkflow.runtime.bundle import Bundle, InputError
from dlworkflow.runtime.dense import MIN_SCORE_THRESHOLD, sized_predictions
from dlworkflow.runtime.observe import image_summaries, new_ids, prepare
from dlworkflow.runtime.prediction_logs import Slot, log_path

MB = 1024 * 1024
BOX_KINDS = frozenset({"detection"})  # target kinds whose predictions are scored boxes
BEARER = "HTTPBearer"
PUBLIC = frozenset({"/v1/health"})
PREDICT = "/v1/predict"
#: Texts and rows totalling at most this many bytes are prepared (tokenized, encoded) on the
#: event loop, and bodies of at most this many bytes parsed there (JSON, base64): for small
#: inputs the hand-off to a thread costs more than the work. Images are never decoded on the
#: loop: a 20 KB PNG can hold 16 M pixels (seconds of a blocked loop for a flood of them).
#: (Decoding small images on the loop, by their headers' pixel count, was measured in issue
#: 18: no less CPU per request on 2 cores, and less throughput under load.)
INLINE_BYTES = 32 * 1024
#: Seconds a client is asked to wait (Retry-After) when serve.max_concurrency is reached.
RETRY_AFTER_S = 1
log = logging.getLogger("dlworkflow.deploy.serve")
T = TypeVar("T")


class Server:
    """Everything one app holds: settings, the model, the batcher, metrics and the log."""

    def __init__(
        self, root: Path, settings: Serve, *, token: str, force_reason: str | None = None
    ) -> None:
        self.root = Path(root)
        self.settings = settings
        self.token = token.encode("utf-8")
        self.max_body = int(settings.max_body_mb * MB)
        self.metrics = ServerMetrics()
        self.slot = Slot(self.root)  # this process's own prediction log file
        self.holder = ModelHolder(
            self.root,
            threads=settings.threads or default_threads(settings.workers or default_workers()),
            force_reason=force_reason,
            on_reload=self._reloaded,
            record=self.slot.number == 0,  # forced serving recorded once, not per worker
        )
        try:
            bundle = self.holder.load()
        except BaseException:
            self.slot.release()  # no server: the next one takes the slot
            raise
        self.metrics.model_version.set(bundle.version)
        workers = max(2, min(4, os.cpu_count() or 2))
        self.prepare_pool = ThreadPoolExecutor(workers, thread_name_prefix="dlw-prepare")
        self.infer_pool = ThreadPoolExecutor(1, thread_name_prefix="dlw-infer")
        self.preparing = 0  # requests admitted and not yet handed to the batcher
        self.in_flight = 0  # requests past the token check, not yet answered (/v1/health aside)
        self.batcher = MicroBatcher(
            max_batch=settings.max_batch,
            max_wait_ms=settings.max_wait_ms,
            executor=self.infer_pool,
            on_batch=self.metrics.batch_size.observe,
            expecting=lambda: self.preparing,
            embed_features=settings.log_predictions,
        )
        self.log = (
            PredictionLog(
                log_path(self.root, self.slot.number),
                max_bytes=int(settings.log_max_mb * MB),
                backups=settings.log_backups,
                on_drop=self.metrics.prediction_log_dropped.inc,
            )
            if settings.log_predictions
            else None
        )
        self.holder.start_watching(settings.reload_interval_s)

    def _reloaded(self, outcome: str, bundle: Bundle | None) -> None:
        self.metrics.reloads.labels(outcome).inc()
        if bundle is not None:
            self.metrics.model_version.set(bundle.version)

    def close(self) -> None:
        self.holder.stop_watching()
        if self.log is not None:
            self.log.close()
            self.log = None
        self.slot.release()
        self.metrics.close()
        self.prepare_pool.shutdown(wait=False, cancel_futures=True)
        self.infer_pool.shutdown(wait=False, cancel_futures=True)

    def check_token(self, header: bytes | None) -> ApiError | None:
        """None when `Authorization: Bearer <token>` holds this server's token."""
        if not header:
            return unauthorized("This endpoint needs a bearer token.")
        scheme, _, given = header.strip().partition(b" ")
        if scheme.lower() != b"bearer" or not given.strip():
            return unauthorized("The Authorization header is not a bearer token.")
        if not secrets.compare_digest(given.strip(), self.token):
            return unauthorized("The bearer token is not valid for this server.")
        return None

    # ---- prediction -----------------------------------------------------------------------
    async def predict(self, request: Request) -> dict[str, Any]:
        """The whole request, from reading its body to the predictions, within
        serve.timeout_s (504 after that: slow uploads count too). Each prediction is
        {"id", **task.prediction(outputs row)}: classification label, confidence,
        probabilities; regression value; multi-label labels, probabilities; a dense model's
        prediction is in the request image's pixels (runtime/dense.py: boxes, or the mask at
        the image's size)."""
        start = time.perf_counter()
        threshold = requested_score_threshold(request, self.holder.bundle)
        try:
            async with asyncio.timeout(self.settings.timeout_s):  # no extra task, as wait_for
                bundle, summaries, shown, (outs, emb) = await self._predict(request)
        except TimeoutError:
            raise ApiError(
                504,
                "timeout",
                f"The prediction took longer than {self.settings.timeout_s:g} s "
                "(serve.timeout_s) and was abandoned.",
                fix="retry, send fewer items per request, or raise serve.timeout_s",
            ) from None
        ids = new_ids(len(outs))
        made = (
            sized_predictions(bundle, outs, shown, threshold=threshold)
            if shown is not None
            else bundle.predictions_of(outs)
        )
        predictions = [{"id": key, **p} for key, p in zip(ids, made)]
        latency_ms = (time.perf_counter() - start) * 1000.0
        self.metrics.request_items.observe(len(predictions))
        for p in predictions:
            for label in predicted_labels(p):
                self.metrics.predicted(label)
        if self.log is not None:  # the task's outputs (classification: the probabilities)
            self.log.write(
                bundle=bundle,
                summaries=summaries,
                probs=outs,
                emb=emb,
                ids=ids,
                latency_ms=latency_ms,
            )
        return {"model_version": bundle.version, "predictions": predictions}

    async def _predict(
        self, request: Request
    ) -> tuple[Bundle, list[dict[str, Any]], list[tuple[int, int]] | None, Any]:
        self.preparing += 1  # the batcher waits for these, and only these, to join a batch
        try:
            body = await read_body(request, self.max_body)
            bundle = self.holder.bundle  # read once: a hot reload does not change it midway
            assert bundle is not None
            parse = functools.partial(
                parse_items,
                request,
                body,
                modality=bundle.modality,
                max_batch=self.settings.max_batch,
                max_body=self.max_body,
                max_text_chars=self.settings.max_text_chars,
            )
            if len(body) <= INLINE_BYTES:
                items = await parse()
            else:  # JSON, base64 and multipart of a large body: in a thread, on its own loop
                items = await asyncio.get_running_loop().run_in_executor(
                    self.prepare_pool, _run_coroutine, parse
                )
            x, summaries, shown = await self._prepare_async(bundle, items.values)
        finally:
            self.preparing -= 1
        try:
            outs = await self.batcher.predict(bundle, x)
        except InputError as exc:
            raise ApiError.from_dlw(exc) from None
        return bundle, summaries, shown, outs

    async def _prepare_async(
        self, bundle: Bundle, values: list[Any]
    ) -> tuple[Any, list[dict], list[tuple[int, int]] | None]:
        try:
            if bundle.modality != "image" and _size(values) <= INLINE_BYTES:
                return self._prepare(bundle, values)  # a thread hop costs more than the work
            return await asyncio.get_running_loop().run_in_executor(
                self.prepare_pool, self._prepare, bundle, values
            )
        except InputError as exc:
            raise input_error(exc, bundle.modality) from None

    def _image_headers(self, values: list[bytes]) -> list[ImageHeader]:
        """Every image's header (size, mode, format); 413 past the pixel limit."""
        return image_headers(
            values,
            max_pixels=self.settings.max_image_pixels,
            accept_dicom=self.settings.accept_dicom,
        )

    def _prepare(
        self, bundle: Bundle, values: list[Any]
    ) -> tuple[Any, list[dict[str, Any]], list[tuple[int, int]] | None]:
        """(the model's input, the log's summaries, a dense model's images' (width, height)
        as shown, which its boxes and masks are scaled to; None for other models)."""
        headers = sizes = None
        if bundle.modality == "image":  # 413 past the pixel limit, before decoding
            headers = self._image_headers(values)  # read once: sizes, modes and formats
            sizes = [h.size for h in headers]
        if bundle.modality == "tabular":
            check_rows(values, bundle.preprocessing)
        if bundle.modality == "audio":  # 413 / 415 before decoding
            check_clips(values, max_bytes=bundle.clip_settings().max_bytes)
        # the feature schema: 422 for a hard breach; soft ones are served, counted and logged
        soft = check_items(bundle.schema, bundle.modality, values, headers=headers)
        n_soft = sum(1 for breaches in soft if breaches)
        if n_soft:
            self.metrics.input_invariant_violations.inc(n_soft)
        shown = None
        if bundle.modality == "image" and bundle.task.dense:
            x, shown = bundle.prepare_images_sized(values)
            summaries = image_summaries(sizes or shown, x) if self.log is not None else []
        else:
            x, summaries = prepare(bundle, values, sizes=sizes, summarise=self.log is not None)
        with_invariants(summaries, soft)
        return x, summaries, shown

    def model_info(self) -> dict[str, Any]:
        bundle = self.holder.bundle
        assert bundle is not None
        meta = bundle.metadata
        s = self.settings
        task = bundle.task
        fields = (meta.get("outputs") or {}).get("prediction") or sorted(
            task.prediction(
                bundle.outputs_of(np.zeros((1, *bundle.logits_shape), dtype=np.float32))[0],
                bundle.classes,
                bundle.target,
            )
        )
        return {
            "version": bundle.version,
            "model": meta.get("model"),
            "task": task.name,
            "modality": bundle.modality,
            "kind": task.kind,
            "classes": bundle.classes,
            "outputs": bundle.classes,
            "prediction": list(fields),
            "verdict": meta.get("verdict"),
            "forced": meta.get("forced"),
            "metric": meta.get("metric"),
            "test_value": meta.get("test_value"),
            "input": meta.get("input"),
            "loaded_at": self.holder.loaded_at,
            "limits": {
                "max_batch": s.max_batch,
                "max_body_bytes": self.max_body,
                "max_image_pixels": s.max_image_pixels,
                "timeout_s": s.timeout_s,
                "max_wait_ms": s.max_wait_ms,
                **signal_limits(bundle),
            },
            "metadata": meta,
        }


def signal_limits(bundle: Bundle) -> dict[str, Any]:
    """The limits a series or a clip is checked against (the export's preprocessing)."""
    prep = bundle.preprocessing
    if bundle.modality == "sequence":
        keys = {"max_length": "max_series_length", "min_length": "min_series_length"}
        out = {name: prep[key] for key, name in keys.items() if key in prep}
        return {**out, "max_gap": prep.get("max_gap"), "channels": prep.get("channels")}
    if bundle.modality == "audio":
        settings = bundle.clip_settings()
        return {"max_clip_bytes": settings.max_bytes, "max_clip_seconds": settings.max_seconds}
    return {}


def requested_score_threshold(request: Request, bundle: Bundle | None) -> float | None:
    """The `score_threshold` query parameter of a detection model's request (boxes at or
    above it are returned, instead of the threshold tuned on validation): a number within
    [MIN_SCORE_THRESHOLD, 1]; None when absent. 422 when malformed, out of range, or sent
    to a model that returns no scored boxes."""
    raw = request.query_params.get("score_threshold")
    if raw is None:
        return None
    expected = f"a number from {MIN_SCORE_THRESHOLD:g} to 1"
    if bundle is None or bundle.task.kind not in BOX_KINDS:
        raise ApiError(
            422,
            "invalid_request",
            "score_threshold applies to object-detection models only.",
            received=f"score_threshold={raw[:40]}",
            fix="remove the score_threshold query parameter",
        )
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not MIN_SCORE_THRESHOLD <= value <= 1.0:  # NaN fails too
        raise ApiError(
            422,
            "invalid_request",
            "score_threshold is not a score the server accepts.",
            expected=expected,
            received=raw[:40],
            fix=f"send ?score_threshold= with {expected}, or leave it out for the tuned "
            "threshold (GET /v1/model: metadata.target.score_threshold)",
        )
    return value


def predicted_labels(prediction: dict[str, Any]) -> list[str]:
    """What the dlw_predictions counter counts of one prediction: its class, or each of its
    labels, or each box's label; nothing for a value or a mask."""
    if "boxes" in prediction:
        return [str(box["label"]) for box in prediction["boxes"]]
    if "labels" in prediction:
        return [str(label) for label in prediction["labels"]]
    return [str(prediction["label"])] if "label" in prediction else []


def default_workers() -> int:
    """serve.workers: null: one process per core, at most 4 (each holds a copy of the model).
    One process's event loop keeps about one core busy: measured on 2 cores (bench/serve.py),
    a second process is what lets the server use the second one."""
    return max(1, min(4, os.cpu_count() or 1))


def default_threads(workers: int = 1) -> int:
    """Half of each worker process's share of the cores for ONNX Runtime: micro-batches are
    small, and the event loop and the decoding threads need the rest (more threads would only
    spin and wait on a small box)."""
    return max(1, (os.cpu_count() or 2) // (2 * max(1, workers)))


def _run_coroutine(factory: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine to its end on a new event loop (in a worker thread: the parsing of a
    large body, which only reads the request's headers and the body it is given)."""

    async def main() -> T:
        return await factory()

    return asyncio.run(main())


def _size(values: list[Any]) -> int:
    """About how many bytes the items took in the request (a series: 8 per value)."""
    total = 0
    for value in values:
        if isinstance(value, (bytes, str)):
            total += len(value)
        elif isinstance(value, list) and value and isinstance(value[0], list):
            total += 8 * sum(len(c) if isinstance(c, list) else 1 for c in value)
        elif isinstance(value, list):
            total += 8 * len(value)
        else:
            total += 64 * max(len(value), 1)
    return total


def create_app(
    root: Path, settings: Serve, *, token: str, force_reason: str | None = None
) -> FastAPI:
    server = Server(root, settings, token=token, force_reason=force_reason)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await server.batcher.stop()
        server.close()

    app = ServeApp(
        title="dlworkflow model server",
        version="1",
        description="Predictions of the champion model (ONNX Runtime). Every endpoint "
        "but /v1/health needs `Authorization: Bearer <token>`.",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        lifespan=lifespan,
    )
    app.state.server = server
    errors = error_responses(400, 401, 413, 415, 422, 503, 504)
    # checked by GatewayMiddleware, before routing
    secured: dict[str, Any] = {"security": [{BEARER: []}]}

    @app.post(
        "/v1/predict",
        response_model=PredictResponse,
        responses=errors,
        openapi_extra={**predict_openapi(), **secured},
        summary="Predict",
    )
    async def predict(request: Request) -> JSONResponse:
        """Images (multipart files, or base64 in JSON `images`), `texts`, `rows`,
        `series` (lists of numbers, or of channel lists) or audio `clips` (multipart
        WAV/FLAC/OGG files, or base64 in JSON `clips`); at most serve.max_batch items.
        Each prediction, by the model's task: label, confidence, probabilities
        (classification); value (regression); labels, probabilities (multi-label); boxes
        in the image's pixels with label and score, count (object detection:
        `?score_threshold=` may change the tuned threshold, from 0.05 to 1); mask_png
        (base64 PNG of class indices at the image's size), classes, class_share
        (semantic segmentation)."""
        return JSONResponse(await server.predict(request))  # built by us: no re-validation

    @app.get("/v1/health", response_model=Health, summary="Health (no token)")
    async def health() -> dict[str, Any]:
        bundle = server.holder.bundle
        return {"status": "ok", "model_version": bundle.version if bundle else None}

    @app.get(
        "/v1/model",
        response_model=ModelInfo,
        responses=error_responses(401),
        openapi_extra=secured,
        summary="The served model",
    )
    async def model() -> dict[str, Any]:
        return server.model_info()

    @app.get(
        "/metrics",
        responses=error_responses(401),
        response_class=Response,
        openapi_extra=secured,
        summary="Prometheus metrics",
    )
    async def metrics() -> Response:
        return Response(server.metrics.render(), media_type=server.metrics.content_type)

    @app.get("/openapi.json", include_in_schema=False)
    async def openapi() -> JSONResponse:
        return JSONResponse(app.openapi())

    def schema_with_bearer() -> dict[str, Any]:
        schema = app.openapi_schema
        if schema is None:
            schema = FastAPI.openapi(app)  # builds and keeps it as app.openapi_schema
            schema.setdefault("components", {})["securitySchemes"] = {
                BEARER: {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "The server's token (serve.token, DLW_SERVE_TOKEN or "
                    ".dlw/serve/token, whose path `dlw serve` prints).",
                }
            }
        return schema

    app.openapi = schema_with_bearer  # type: ignore[method-assign]
    install_handlers(app, server)
    app.predict_gateway = GatewayMiddleware(app.router, server=server)
    return app


class ServeApp(FastAPI):
    """The FastAPI app, whose POST /v1/predict enters the gateway (token, concurrency cap,
    metrics) directly, ahead of the middleware FastAPI puts around every app (server errors,
    telemetry, body limit): the gateway answers every error of that route itself, and on a
    small image those layers cost a good share of the CPU a prediction takes."""

    predict_gateway: GatewayMiddleware | None = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        gateway = self.predict_gateway
        if (
            gateway is not None
            and scope["type"] == "http"
            and scope.get("path") == PREDICT
            and scope.get("method") == "POST"
        ):
            await gateway(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def install_handlers(app: FastAPI, server: Server) -> None:
    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return exc.response()

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ())) or "request"
        return ApiError(
            422, "invalid_request", f"{where}: {first.get('msg', 'invalid')}"
        ).response()

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        error = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return ApiError(
            exc.status_code, error, str(exc.detail), headers=getattr(exc, "headers", None)
        ).response()

    @app.exception_handler(Exception)
    async def internal(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return ApiError(
            500, "internal_error", "The server failed unexpectedly; the error is in its log."
        ).response()

    app.add_middleware(GatewayMiddleware, server=server)


class GatewayMiddleware:
    """In front of every route (pure ASGI, cheap): the bearer token check (all paths but
    /v1/health), the concurrency cap (past serve.max_concurrency requests in flight: 503 with
    Retry-After; /v1/health is neither counted nor refused), and the request count by route
    and status with its latency."""

    def __init__(self, app: Any, *, server: Server) -> None:
        self.app = app
        self.metrics = server.metrics
        self.server = server
        self.limit = server.settings.max_concurrency

    async def _admitted(self, scope: Any, receive: Any, send: Any) -> None:
        server = self.server
        server.in_flight += 1  # one event loop: no lock needed
        self.metrics.in_flight.inc()
        try:
            if scope.get("path") == PREDICT and scope.get("method") == "POST":
                await self._predict(scope, receive, send)
            else:
                await self.app(scope, receive, send)
        finally:
            server.in_flight -= 1
            self.metrics.in_flight.dec()

    async def _predict(self, scope: Any, receive: Any, send: Any) -> None:
        """POST /v1/predict straight to Server.predict: the route's own handler does the
        same, through the router, FastAPI's dependency solving and exception middleware, which
        cost more CPU per request than a small image's prediction (the errors are the same:
        ApiError's body, or the 500 of `install_handlers`)."""
        try:
            response = JSONResponse(await self.server.predict(Request(scope, receive)))
        except ApiError as exc:
            response = exc.response()
        except Exception:  # noqa: BLE001 - as install_handlers' `internal`
            log.exception("unexpected error on POST %s", PREDICT)
            response = ApiError(
                500, "internal_error", "The server failed unexpectedly; the error is in its log."
            ).response()
        await response(scope, receive, send)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_wrapper(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            if scope.get("path") in PUBLIC:
                await self.app(scope, receive, send_wrapper)
            else:
                problem = self.server.check_token(_header(scope, b"authorization"))
                if problem is None and self.server.in_flight >= self.limit:
                    problem = busy(self.limit, RETRY_AFTER_S)
                if problem is not None:
                    await problem.response()(scope, receive, send_wrapper)
                else:
                    await self._admitted(scope, receive, send_wrapper)
        finally:
            self.metrics.observe_request(scope.get("path", ""), status, time.perf_counter() - start)


def _header(scope: Any, name: bytes) -> bytes | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return bytes(value)
    return None
