"""POST a monitoring alert as JSON to a webhook (urllib, no extra dependency).

http and https only; a 10 s timeout; a bearer token from the environment variable that
`monitor.webhook_token_env` names (a DLW_ variable; never from the config file, never logged),
sent only over https (or plain http to this machine: 127.0.0.1, ::1, localhost): with a token
configured, an alert to another http:// URL is refused, nothing sent. Redirects are
not followed, so the token and the alert go to the configured host only. Failures (refused
connection, timeout, 4xx/5xx, bad URL, missing token variable) come back as a `Delivery`
with the reason: the monitor reports them and keeps its own exit code; it never crashes on
them. Only scheme, host and port of the URL are ever shown (the path of many chat webhooks
is itself a secret).
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

TIMEOUT_S = 10.0
USER_AGENT = "dlworkflow-monitor"


@dataclass
class Delivery:
    target: str  # scheme://host[:port] only
    ok: bool
    status: int | None = None  # HTTP status
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"target": self.target, "ok": self.ok, "status": self.status, "error": self.error}

    def describe(self) -> str:
        if self.ok:
            return f"sent to {self.target} (HTTP {self.status})"
        return f"NOT sent to {self.target}: {self.error}"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(
        self, req: Any, fp: Any, code: int, msg: str, headers: Any, newurl: str
    ) -> None:
        return None  # urllib then raises HTTPError with the 3xx status


def redact(url: str) -> str:
    """scheme://host[:port] of a URL (no user info, path or query)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or "?"
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "(invalid URL)"
    host = f"[{host}]" if ":" in host else host
    return f"{parts.scheme or '?'}://{host}{port}"


def _loopback(host: str) -> bool:
    """A host on this machine (a token sent there crosses no network)."""
    import ipaddress

    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def post_alert(
    url: str, payload: dict[str, Any], *, token_env: str | None = None, timeout: float = TIMEOUT_S
) -> Delivery:
    """POST `payload` as JSON; the outcome, never an exception."""
    target = redact(url)
    try:
        parts = urlsplit(url)
        valid = parts.scheme in ("http", "https") and bool(parts.hostname)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        valid = False
    if not valid:
        return Delivery(
            target, False, error="the webhook must be an http:// or https:// URL with a host"
        )
    headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT}
    if token_env and parts.scheme != "https" and not _loopback(parts.hostname or ""):
        return Delivery(
            target,
            False,
            error=f"the bearer token of {token_env} (monitor.webhook_token_env) goes "
            "only over https; use an https:// webhook (http only to this machine: "
            "127.0.0.1, ::1, localhost), or remove monitor.webhook_token_env",
        )
    if token_env:
        token = os.environ.get(token_env)
        if not token:
            return Delivery(
                target,
                False,
                error=f"the environment variable {token_env} "
                "(monitor.webhook_token_env) is not set",
            )
        headers["Authorization"] = f"Bearer {token}"
    body = json.dumps(payload, default=str).encode("utf-8")
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(request, timeout=timeout) as response:
            status = int(response.status)
    except urllib.error.HTTPError as exc:
        return Delivery(
            target,
            False,
            status=int(exc.code),
            error=f"the receiver answered HTTP {exc.code} {exc.reason}",
        )
    except urllib.error.URLError as exc:
        return Delivery(target, False, error=f"cannot reach it: {exc.reason}")
    except (TimeoutError, OSError, ValueError) as exc:
        return Delivery(target, False, error=f"{type(exc).__name__}: {exc}"[:300])
    return Delivery(
        target,
        200 <= status < 300,
        status=status,
        error=None if 200 <= status < 300 else f"HTTP {status}",
    )


def alert_payload(
    *,
    project: str,
    version: int,
    status: str,
    headline: str,
    checks: list[dict[str, Any]],
    report: str | None,
    n_live: int,
    window: tuple[str | None, str | None],
    time: str,
) -> dict[str, Any]:
    """The JSON a receiver gets: what alerted, on which model, where the report is."""
    failed = [
        {
            k: c.get(k)
            for k in ("name", "group", "test", "p_value", "effect", "threshold", "sentence")
        }
        for c in checks
        if c.get("alert")
    ]
    return {
        "event": "dlworkflow.monitor.alert",
        "project": project,
        "model_version": version,
        "status": status,
        "headline": headline,
        "time": time,
        "n_live": n_live,
        "window": {"first": window[0], "last": window[1]},
        "failed_checks": failed,
        "report": report,
    }
