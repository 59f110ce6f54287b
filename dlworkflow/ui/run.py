"""`dlw ui`: make the token, build the app and run it under uvicorn until interrupted."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from dlworkflow.deploy.serve.run import is_local
from dlworkflow.ui.auth import cookie_name, new_token

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765


#: Addresses that bind every interface: the address shown to open is this machine's.
ANY_ADDRESS = frozenset({"0.0.0.0", "::", ""})


def login_url(host: str, port: int, token: str) -> str:
    shown = "127.0.0.1" if host in ANY_ADDRESS else host
    shown = f"[{shown}]" if ":" in shown else shown  # an IPv6 address
    return f"http://{shown}:{port}/?token={token}"


def ui(
    root: Path,
    *,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    say: Callable[[str], None] = print,
) -> None:
    """Serve the UI of the project at `root` until Ctrl-C."""
    import uvicorn

    from dlworkflow.ui.app import create_app

    token = new_token()
    app = create_app(root, token=token, cookie=cookie_name(port))
    say(f"dlw ui for {Path(root).resolve()}: open {login_url(host, port, token)}")
    say("The token in that address is new at each start and logs a browser in (a cookie).")
    if not is_local(host):
        say(
            f"WARNING: bound to {host}: reachable from the network, over plain HTTP (the token "
            "and the cookie travel unencrypted). Put TLS in front."
        )
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        proxy_headers=False,  # as `dlw serve`: no X-Forwarded-* trusted, no client address used
        timeout_graceful_shutdown=5,
    )
