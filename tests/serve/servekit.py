"""Helpers of the serve tests (a uniquely named module, importable from every test file)."""

from __future__ import annotations

import base64
import socket
from typing import Any

TOKEN = "test-token-" + "x" * 24
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def export_version(project: Any, reason: str = "serve tests: untested 1-epoch model") -> int:
    """Export the trained model as a new version (forced: it was never tested) and make it the
    champion; return its number."""
    from dlworkflow.runtime.versions import champion, promote

    result = project.export(force=True, reason=reason)
    version = int(getattr(result, "version", None) or champion(project.root))
    if champion(project.root) != version:
        promote(project.root, version)
    return version



async def _user(port: int, requests: list[bytes], out: list[tuple[float, int]]) -> None:
    import asyncio
    import time

    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for raw in requests:
            start = time.perf_counter()
            try:
                writer.write(raw)
                head = await reader.readuntil(b"\r\n\r\n")
                status = int(head.split(b" ", 2)[1])
                length = next(int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                              if line.lower().startswith(b"content-length:"))
                await reader.readexactly(length)
            except (OSError, asyncio.IncompleteReadError, ValueError, StopIteration):
                status = -1
                writer.close()
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
            out.append((time.perf_counter() - start, status))
    finally:
        writer.close()


def load(port: int, token: str, bodies: list[bytes], concurrency: int
         ) -> tuple[float, list[float], list[int]]:
    """POST every JSON body to /v1/predict from `concurrency` keep-alive connections (a minimal
    HTTP/1.1 client: cheap, so the numbers are the server's); (seconds, latencies, statuses)."""
    import asyncio
    import time

    requests = [(f"POST /v1/predict HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                 f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
                 f"Content-Length: {len(body)}\r\n\r\n").encode() + body for body in bodies]
    out: list[tuple[float, int]] = []

    async def main() -> None:
        await asyncio.gather(*[_user(port, requests[i::concurrency], out)
                               for i in range(concurrency)])

    start = time.perf_counter()
    asyncio.run(main())
    return time.perf_counter() - start, [s for s, _ in out], [c for _, c in out]
