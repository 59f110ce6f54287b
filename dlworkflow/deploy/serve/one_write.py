"""uvicorn's httptools protocol, sending each response's status line and headers in the same
write as its first body bytes (uvicorn writes them apart: two send() calls per response, and
two wake-ups of the client, on a server whose requests are small).

    uvicorn.run(app, http=one_write_protocol() or "auto")   # None: httptools missing

Only the headers are held, and never past the next write, the response's end (a HEAD
request's or a 204's headers have no body after them), or the connection's close; a
`100 Continue` interim response goes out at once.
"""

from __future__ import annotations

from typing import Any

#: A final response's status line (uvicorn writes "HTTP/1.1 <code> <reason>"); 1xx excluded.
_FINAL = b"HTTP/1.1 "
_INTERIM = b"HTTP/1.1 1"
_END_OF_HEADERS = b"\r\n\r\n"


class OneWriteTransport:
    """Wraps the connection's transport: the headers a response starts with wait for the next
    write (its body) or `flush()`; every other call goes to the transport."""

    def __init__(self, transport: Any) -> None:
        self._transport = transport
        self._held = b""

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._held:
            data, self._held = self._held + bytes(data), b""
        elif (
            isinstance(data, bytes)
            and data.startswith(_FINAL)
            and not data.startswith(_INTERIM)
            and data.endswith(_END_OF_HEADERS)
        ):
            self._held = data
            return
        self._transport.write(data)

    def flush(self) -> None:
        if self._held:
            data, self._held = self._held, b""
            self._transport.write(data)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


def one_write_protocol() -> str | None:
    """The import string of uvicorn's HttpToolsProtocol with OneWriteTransport (a string, so
    that spawned worker processes import it too); None without httptools."""
    try:
        import uvicorn.protocols.http.httptools_impl  # noqa: F401
    except ImportError:  # uvicorn falls back to h11
        return None
    return "dlworkflow.deploy.serve.one_write_httptools:OneWriteHttpToolsProtocol"
