"""A closed-loop HTTP/1.1 load generator for POST /v1/predict: `concurrency` keep-alive
connections, each sending its share of the requests one after another. Minimal on purpose
(raw sockets, no HTTP library), so the time measured is the server's. Used by the load test
(tests/serve) and bench/serve.py; torch-free like the rest of dlworkflow.deploy.serve."""

from __future__ import annotations

import asyncio
import socket
import time


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def predict_request(port: int, body: bytes, token: str | None) -> bytes:
    """The raw bytes of a JSON POST /v1/predict (with the bearer token, if any)."""
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    return (
        f"POST /v1/predict HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{auth}"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body


async def _user(port: int, requests: list[bytes], out: list[tuple[float, int]]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for raw in requests:
            start = time.perf_counter()
            try:
                writer.write(raw)
                head = await reader.readuntil(b"\r\n\r\n")
                status = int(head.split(b" ", 2)[1])
                length = next(
                    int(line.split(b":", 1)[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                )
                await reader.readexactly(length)
            except (OSError, asyncio.IncompleteReadError, ValueError, StopIteration):
                status = -1  # a broken connection counts as an error; reconnect
                writer.close()
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
            out.append((time.perf_counter() - start, status))
    finally:
        writer.close()


def run_load(
    port: int, requests: list[bytes], concurrency: int
) -> tuple[float, list[float], list[int]]:
    """Send every raw request; (wall seconds, per-request latencies in s, HTTP statuses, -1
    for a broken connection)."""
    out: list[tuple[float, int]] = []

    async def main() -> None:
        await asyncio.gather(
            *[_user(port, requests[i::concurrency], out) for i in range(concurrency)]
        )

    start = time.perf_counter()
    asyncio.run(main())
    return time.perf_counter() - start, [s for s, _ in out], [c for _, c in out]
