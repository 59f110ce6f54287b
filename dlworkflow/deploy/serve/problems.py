"""API errors: a status code and a JSON body that says what went wrong and how to fix it."""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse

from dlworkflow.errors import DlwError, scrub


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        error: str,
        message: str,
        *,
        expected: str | None = None,
        received: str | None = None,
        fix: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.error = error
        self.message = message
        self.expected = expected
        self.received = received
        self.fix = fix
        self.headers = headers

    @classmethod
    def from_dlw(
        cls, exc: DlwError, *, status: int = 422, error: str = "invalid_input"
    ) -> ApiError:
        return cls(
            status, error, exc.what, expected=exc.expected, received=exc.received, fix=exc.fix
        )

    def body(self) -> dict[str, Any]:
        """What the client reads: every text scrubbed of memory addresses and temporary paths
        (the one place error text leaves the server)."""
        body: dict[str, Any] = {"error": self.error, "message": scrub(self.message)}
        for key in ("expected", "received", "fix"):
            value = getattr(self, key)
            if value:
                body[key] = scrub(value)
        return body

    def response(self) -> JSONResponse:
        return JSONResponse(self.body(), status_code=self.status, headers=self.headers)


def unauthorized(message: str) -> ApiError:
    return ApiError(
        401,
        "unauthorized",
        message,
        expected="header `Authorization: Bearer <token>`",
        fix="use the token in .dlw/serve/token (`dlw serve` prints its path), "
        "serve.token or DLW_SERVE_TOKEN",
        headers={"WWW-Authenticate": "Bearer"},
    )


def body_too_large(limit: int, received: int | None = None) -> ApiError:
    return ApiError(
        413,
        "body_too_large",
        f"The request body is larger than {limit:,} bytes.",
        expected=f"at most {limit:,} bytes",
        received=f"{received:,} bytes" if received is not None else "more",
        fix="send fewer or smaller items per request, or raise serve.max_body_mb",
    )


def busy(limit: int, retry_after_s: int) -> ApiError:
    return ApiError(
        503,
        "busy",
        f"The server is answering {limit:,} requests already, its limit.",
        expected=f"at most {limit:,} requests at once",
        fix=f"retry after {retry_after_s} s (Retry-After), send fewer requests at once, or "
        "raise serve.max_concurrency",
        headers={"Retry-After": str(retry_after_s)},
    )


def clip(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
