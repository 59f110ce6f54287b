"""`dlw serve`'s uvicorn protocol sends a response's headers and body in one write, and never
holds the headers of a response without a body (HEAD, 204) nor an interim 100 Continue."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from servekit import free_port

from dlworkflow.deploy.serve.one_write import OneWriteTransport, one_write_protocol


class _Transport:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def get_extra_info(self, name: str) -> str:
        return f"info:{name}"


def test_headers_wait_for_the_body_and_go_out_with_it():
    inner = _Transport()
    transport = OneWriteTransport(inner)
    transport.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
    assert inner.writes == []
    transport.write(b"{}")
    transport.flush()  # nothing left to flush
    assert inner.writes == [b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}"]
    assert transport.get_extra_info("peername") == "info:peername"  # the rest passes through


def test_interim_responses_and_other_writes_go_out_at_once_and_close_flushes():
    inner = _Transport()
    transport = OneWriteTransport(inner)
    transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
    transport.write(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 3\r\n\r\nbad")  # one piece
    assert inner.writes == [
        b"HTTP/1.1 100 Continue\r\n\r\n",
        b"HTTP/1.1 400 Bad Request\r\ncontent-length: 3\r\n\r\nbad",
    ]
    transport.write(b"HTTP/1.1 204 No Content\r\n\r\n")
    transport.close()
    assert inner.writes[-1] == b"HTTP/1.1 204 No Content\r\n\r\n" and inner.closed


async def _app(scope, receive, send):
    if scope["type"] != "http":
        return
    if scope["method"] == "POST":
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
    else:
        body = b"hello"
    status = 204 if scope["path"] == "/empty" else 200
    headers = [(b"content-length", str(0 if status == 204 else len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if status == 204 else body})


@contextmanager
def _server() -> Iterator[int]:
    import uvicorn

    port = free_port()
    config = uvicorn.Config(
        _app, host="127.0.0.1", port=port, http=one_write_protocol(), log_level="warning"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def _exchange(sock: socket.socket, request: bytes, until: bytes) -> bytes:
    sock.sendall(request)
    data = b""
    while until not in data:
        chunk = sock.recv(65536)
        assert chunk, data
        data += chunk
    return data


def test_a_real_uvicorn_answers_get_head_204_and_100_continue_on_one_connection():
    if one_write_protocol() is None:
        pytest.skip("httptools is not installed: uvicorn's own protocol is used")
    with _server() as port, socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        got = _exchange(sock, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", b"hello")
        assert got.startswith(b"HTTP/1.1 200 OK") and got.endswith(b"\r\n\r\nhello")
        got = _exchange(sock, b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n", b"\r\n\r\n")
        assert got.startswith(b"HTTP/1.1 200 OK")  # no body follows: not held
        got = _exchange(sock, b"GET /empty HTTP/1.1\r\nHost: x\r\n\r\n", b"\r\n\r\n")
        assert got.startswith(b"HTTP/1.1 204")
        head = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n"
        assert _exchange(sock, head, b"\r\n\r\n").startswith(b"HTTP/1.1 100 Continue")
        got = _exchange(sock, b"ping", b"ping")
        assert got.startswith(b"HTTP/1.1 200 OK") and got.endswith(b"ping")
