"""uvicorn's httptools protocol, writing a fixed-length response's head and body at once.

uvicorn writes the status line and headers of a response as soon as the application sends
``http.response.start``, and its body on ``http.response.body``: two ``send()`` calls, so two
TCP segments (``simcore serve`` turns Nagle's algorithm off, see ``commands.serve.listen``)
and, on the client's side, two wake-ups for one response. For the small JSON answers of the
API that is a good part of the cost of a request, on both sides of the connection.

``HttpToolsProtocol`` here hands each request's cycle a transport that holds the head of a
response that has a ``Content-Length`` and a body to come, and writes it with the first part
of that body, in one ``send()``. Everything else is written as uvicorn writes it: streamed
(chunked) responses, whose head the client must see before the first event, HEAD requests,
empty bodies, ``100 Continue``. If the application fails between the head and the body, the
head is written before the connection closes, as it was.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http import httptools_impl


class _HeadWithBody:
    """The transport of one request's cycle (it only writes, closes and asks is_closing)."""

    __slots__ = ("_cycle", "_head", "_headed", "_transport")

    def __init__(self, transport: asyncio.Transport, cycle: Any) -> None:
        self._transport = transport
        self._cycle = cycle
        self._head: bytes | None = None
        self._headed = False

    def write(self, data: bytes) -> None:
        head = self._head
        if head is not None:
            self._head = None
            self._transport.write(head + data)
            return
        cycle = self._cycle
        if not self._headed and cycle.response_started:
            # The first write once the response started is its head.
            self._headed = True
            if (
                cycle.chunked_encoding is False
                and cycle.expected_content_length > 0
                and cycle.scope["method"] != "HEAD"
            ):
                self._head = data
                return
        self._transport.write(data)

    def flush(self) -> None:
        head, self._head = self._head, None
        if head is not None and not self._transport.is_closing():
            self._transport.write(head)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def is_closing(self) -> bool:
        return self._transport.is_closing()


class HttpToolsProtocol(httptools_impl.HttpToolsProtocol):
    """uvicorn's ``httptools`` protocol, one write per fixed-length response (see the module)."""

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        cycle = self.cycle
        # The cycle just made for this request: its application task has not run yet.
        if cycle is not None and not cycle.response_started:
            cycle.transport = _HeadWithBody(self.transport, cycle)  # type: ignore[assignment]


HTTP_PROTOCOL = f"{__name__}:{HttpToolsProtocol.__qualname__}"
"""For ``uvicorn.Config(http=...)``: an import string, as each worker process imports it."""
