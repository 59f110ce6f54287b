"""`dlw serve`: resolve the token, build the app, and run it under uvicorn."""

from __future__ import annotations

import gc
import ipaddress
import shlex
from collections.abc import Callable
from pathlib import Path

from dlworkflow.config import Serve
from dlworkflow.deploy.serve.token import Token, resolve_token


def is_local(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def token_notice(token: Token) -> str:
    """Where the bearer token comes from. A new one is never printed in full (terminals are
    logged and shared): its file and first 4 characters only."""
    if token.is_new:
        return (
            f"Bearer token: new, written to {token.path} (mode 600), starting "
            f"{token.value[:4]}…; read it from that file"
        )
    return f"Bearer token: from {token.source}" + (f" ({token.path})" if token.path else "")


def serve(
    root: Path,
    settings: Serve,
    *,
    host: str | None = None,
    port: int | None = None,
    force_reason: str | None = None,
    say: Callable[[str], None] = print,
) -> None:
    """Serve the champion model until interrupted (Ctrl-C)."""
    import uvicorn

    from dlworkflow.deploy.serve.app import create_app
    from dlworkflow.deploy.serve.one_write import one_write_protocol

    settings = settings.model_copy(
        update={k: v for k, v in (("host", host), ("port", port)) if v is not None}
    )
    token = resolve_token(root, settings.token)
    app = create_app(root, settings, token=token.value, force_reason=force_reason)
    server = app.state.server
    bundle = server.holder.bundle
    say(
        f"Serving model version {bundle.version} ({bundle.metadata.get('model')}, "
        f"{bundle.modality}, verdict {bundle.metadata.get('verdict')}) on "
        f"http://{settings.host}:{settings.port}"
    )
    if server.holder.forced:
        say(f"WARNING: serving a model that did not pass the test; reason: {server.holder.forced}")
    if not is_local(settings.host):
        say(f"WARNING: bound to {settings.host}: reachable from the network. Put TLS in front.")
    say(token_notice(token))
    bearer = f"$(cat {shlex.quote(str(token.path))})" if token.path else "<token>"
    say(
        f'Try: curl -H "Authorization: Bearer {bearer}" '
        f"http://{settings.host}:{settings.port}/v1/model"
    )
    gc.collect()
    gc.freeze()  # the loaded app and model stay put: later collections skip them (tail latency)
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        http=one_write_protocol() or "auto",  # a response in one write, not two
        log_level="warning",
        access_log=False,
        proxy_headers=False,  # no X-Forwarded-* parsing per request: no client address is used
        timeout_graceful_shutdown=5,
    )
