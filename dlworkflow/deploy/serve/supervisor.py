"""The parent of `serve.workers` server processes: one listening socket per worker on the same
port (SO_REUSEPORT), so that the kernel spreads new connections evenly over them, a worker
restarted when it dies, and all of them stopped together.

Why not uvicorn's own `--workers`: it hands every worker the same socket, and whichever worker
wakes first accepts every connection waiting: measured with 16 keep-alive clients, one worker
took 1,875 of 2,000 requests and the other 125, so the second core stayed idle. Each worker
here keeps its own socket through restarts (connections that arrive meanwhile wait in its
backlog).

Workers are spawned (a fresh interpreter: no ONNX Runtime or thread state is copied) and build
their app with `workers.app_from_env`.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import signal
import socket
import time
from multiprocessing.context import SpawnProcess
from typing import Any

from dlworkflow.deploy.serve.holder import ServeError

log = logging.getLogger("dlworkflow.deploy.serve")
#: A worker that exits sooner than this after its start failed to start ...
QUICK_EXIT_S = 10.0
#: ... and this many such exits in a row stop the server (a crash loop helps no one).
MAX_QUICK_EXITS = 3
STOP_TIMEOUT_S = 10.0
PR_SET_PDEATHSIG = 1  # linux/prctl.h


def listening_sockets(host: str, port: int, n: int) -> list[socket.socket]:
    """n sockets listening on host:port together (SO_REUSEPORT). The port is first checked
    free with a plain bind: SO_REUSEPORT alone would let this server join another one's port
    (a second multi-worker `dlw serve`) and split its traffic."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.bind((host, port))
    except OSError as exc:
        raise ServeError(
            f"Cannot listen on {host}:{port}: {exc.strerror or exc}.",
            fix="stop what uses that port, or pick another with --port",
        ) from None
    sockets = []
    for _ in range(n):
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        sock.listen(2048)
        sock.set_inheritable(True)
        sockets.append(sock)
    return sockets


def run_worker(options: dict[str, Any], sock: socket.socket, parent: int) -> None:
    """One worker process: uvicorn on its own socket, the app from `workers.app_from_env`.
    A second SIGTERM or a SIGINT after one (the parent's stop after a Ctrl-C that reached
    the whole process group) does not cut uvicorn's graceful shutdown short: only a second
    SIGINT does."""
    import uvicorn

    from dlworkflow.deploy.serve.workers import FACTORY

    _exit_with_parent()
    if os.getppid() != parent:  # the parent died before the line above
        return

    server = uvicorn.Server(uvicorn.Config(FACTORY, factory=True, **options))
    # Ctrl-C reaches the whole process group: uvicorn has stopped by the time it surfaces
    with contextlib.suppress(KeyboardInterrupt):
        server.run(sockets=[sock])


def _exit_with_parent() -> None:
    """Linux: SIGTERM this process when its parent dies (even by SIGKILL), so that no worker
    is left holding the port. Best effort elsewhere."""
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def supervise(options: dict[str, Any], sockets: list[socket.socket]) -> None:
    """Run one worker process per socket (uvicorn `options`) until SIGINT or SIGTERM; restart
    one that dies. The sockets are closed at the end."""
    multiprocessing.allow_connection_pickling()
    spawn = multiprocessing.get_context("spawn")

    def start(i: int) -> tuple[SpawnProcess, float]:
        process = spawn.Process(
            target=run_worker,
            args=(options, sockets[i], os.getpid()),
            name=f"dlw-serve-{i}",
            daemon=False,
        )
        process.start()
        return process, time.monotonic()

    stopping = False

    def stop(signum: int, frame: Any) -> None:
        nonlocal stopping
        stopping = True

    previous = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    processes = [start(i) for i in range(len(sockets))]
    quick_exits = 0
    try:
        while not stopping:
            time.sleep(0.2)
            for i, (process, started) in enumerate(processes):
                if stopping or process.is_alive():
                    continue
                quick = time.monotonic() - started < QUICK_EXIT_S
                quick_exits = quick_exits + 1 if quick else 0
                log.warning("server process %s exited (code %s)", process.pid, process.exitcode)
                if quick_exits >= MAX_QUICK_EXITS:
                    raise ServeError(
                        f"Server processes exited {quick_exits} times within "
                        f"{QUICK_EXIT_S:.0f} s of their start; stopping.",
                        fix="see the errors above; try `dlw serve --workers 1`",
                    )
                processes[i] = start(i)
    finally:
        for process, _ in processes:
            if process.is_alive() and process.pid is not None:
                os.kill(process.pid, signal.SIGTERM)  # uvicorn's graceful shutdown
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for process, _ in processes:
            process.join(max(0.1, deadline - time.monotonic()))
            if process.is_alive():
                process.kill()
                process.join()
        for sock in sockets:
            sock.close()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
