"""uvicorn's httptools protocol with OneWriteTransport (see one_write.py); imported by name
(`one_write_protocol()`) only where httptools is installed."""

from __future__ import annotations

from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from dlworkflow.deploy.serve.one_write import OneWriteTransport


class OneWriteHttpToolsProtocol(HttpToolsProtocol):
    def connection_made(self, transport: Any) -> None:
        self.one_write = OneWriteTransport(transport)
        super().connection_made(self.one_write)  # type: ignore[arg-type]

    def on_response_complete(self) -> None:
        self.one_write.flush()  # a response without body bytes (HEAD, 204, 304)
        super().on_response_complete()
