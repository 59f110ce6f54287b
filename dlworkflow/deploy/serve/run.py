"""`dlw serve`: resolve the token, build the app, and run it under uvicorn."""

from __future__ import annotations

import gc
import ipaddress
import shlex
from collections.abc import Callable
from pathlib import Path
from typing import Any

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
    workers: int | None = None,
    force_reason: str | None = None,
    say: Callable[[str], None] = print,
) -> None:
    """Serve the champion model until interrupted (Ctrl-C)."""
    import uvicorn

    from dlworkflow.deploy.serve.one_write import one_write_protocol

    settings = settings.model_copy(
        update={
            k: v for k, v in (("host", host), ("port", port), ("workers", workers)) if v is not None
        }
    )
    if settings.workers is None:
        from dlworkflow.deploy.serve.app import default_workers

        settings = settings.model_copy(update={"workers": default_workers()})
    assert settings.workers is not None
    token = resolve_token(root, settings.token)
    if settings.workers > 1:
        holder, app = _checked_model(root, force_reason), None
    else:
        from dlworkflow.deploy.serve.app import create_app

        app = create_app(root, settings, token=token.value, force_reason=force_reason)
        holder = app.state.server.holder
    bundle = holder.bundle
    processes = f" in {settings.workers} processes" if settings.workers > 1 else ""
    say(
        f"Serving model version {bundle.version} ({bundle.metadata.get('model')}, "
        f"{bundle.modality}, verdict {bundle.metadata.get('verdict')}) on "
        f"http://{settings.host}:{settings.port}{processes}"
    )
    if holder.forced:
        say(f"WARNING: serving a model that did not pass the test; reason: {holder.forced}")
    if not is_local(settings.host):
        say(f"WARNING: bound to {settings.host}: reachable from the network. Put TLS in front.")
    say(token_notice(token))
    bearer = f"$(cat {shlex.quote(str(token.path))})" if token.path else "<token>"
    say(
        f'Try: curl -H "Authorization: Bearer {bearer}" '
        f"http://{settings.host}:{settings.port}/v1/model"
    )
    common: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "http": one_write_protocol() or "auto",  # a response in one write, not two
        "log_level": "warning",
        "access_log": False,
        "proxy_headers": False,  # no X-Forwarded-* parsing per request: no client address used
        "timeout_graceful_shutdown": 5,
    }
    if app is None:
        import shutil

        from dlworkflow.deploy.serve.supervisor import listening_sockets, supervise
        from dlworkflow.deploy.serve.workers import prepare_workers

        del holder, bundle  # each worker loads its own
        sockets = listening_sockets(common.pop("host"), common.pop("port"), settings.workers)
        metrics = prepare_workers(root, settings, token=token.value, force_reason=force_reason)
        try:
            supervise(common, sockets)
        finally:
            shutil.rmtree(metrics, ignore_errors=True)
        return
    gc.collect()
    gc.freeze()  # the loaded app and model stay put: later collections skip them (tail latency)
    uvicorn.run(app, **common)


def _checked_model(root: Path, force_reason: str | None) -> Any:
    """The champion loaded once here, through the same gate as the workers (so that a
    model that may not be served stops `dlw serve` before any worker starts), not recorded:
    the first worker records a forced serving."""
    from dlworkflow.deploy.serve.holder import ModelHolder

    holder = ModelHolder(root, threads=1, force_reason=force_reason, record=False)
    holder.load()
    return holder
