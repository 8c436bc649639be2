"""simcore.api.protocol: a fixed-length response leaves in one write; nothing else changes."""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn
from starlette.types import Message, Receive, Scope, Send
from uvicorn.protocols.http import httptools_impl
from uvicorn.protocols.http.flow_control import FlowControl

from simcore.api.protocol import HTTP_PROTOCOL, _HeadWithBody

BODY = b'{"run": "x"}' * 50


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return
    path = scope["path"]
    if path == "/stream":
        # A stream's head must reach the client before its first event.
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await asyncio.sleep(0.5)
        await send({"type": "http.response.body", "body": b"event", "more_body": True})
        await send({"type": "http.response.body", "body": b""})
        return
    if path == "/echo":
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        length = str(len(body)).encode()
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-length", length)]}
        )
        await send({"type": "http.response.body", "body": body})
        return
    if path == "/empty":
        headers = [(b"content-length", b"0")]
        await send({"type": "http.response.start", "status": 204, "headers": headers})
        await send({"type": "http.response.body", "body": b""})
        return
    if path == "/fails":
        length = str(len(BODY)).encode()
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-length", length)]}
        )
        raise RuntimeError("failed between the head and the body")
    length = str(len(BODY)).encode()
    headers = [(b"content-length", length), (b"content-type", b"application/json")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": BODY})


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(
        app, http=HTTP_PROTOCOL, lifespan="off", log_level="critical", log_config=None
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    yield sock.getsockname()[1]
    server.should_exit = True
    thread.join(15)
    sock.close()


def _connect(port: int) -> socket.socket:
    conn = socket.create_connection(("127.0.0.1", port), timeout=10)
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return conn


def _read_response(conn: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        assert chunk, data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        body += conn.recv(65536)
    return head + b"\r\n\r\n" + body


def test_a_fixed_length_response_arrives_in_one_piece(port: int) -> None:
    with _connect(port) as conn:
        for _ in range(3):  # keep-alive: each response of the connection
            conn.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            time.sleep(0.05)  # the whole response is sent by now
            first = conn.recv(65536)
            assert first.startswith(b"HTTP/1.1 200 OK\r\n")
            assert first.endswith(b"\r\n\r\n" + BODY)


def test_a_request_body_and_100_continue(port: int) -> None:
    with _connect(port) as conn:
        conn.sendall(
            b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n"
        )
        assert conn.recv(65536) == b"HTTP/1.1 100 Continue\r\n\r\n"
        conn.sendall(b"hello")
        assert _read_response(conn).endswith(b"\r\n\r\nhello")


def test_a_stream_sends_its_head_before_its_first_event(port: int) -> None:
    with _connect(port) as conn:
        conn.sendall(b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")
        conn.settimeout(0.4)  # the first event comes after 0.5 s
        head = conn.recv(65536)
        assert head.startswith(b"HTTP/1.1 200 OK\r\n") and b"transfer-encoding: chunked" in head
        assert head.endswith(b"\r\n\r\n")
        conn.settimeout(10)
        rest = b""
        while not rest.endswith(b"0\r\n\r\n"):
            rest += conn.recv(65536)
        assert rest == b"5\r\nevent\r\n0\r\n\r\n"


def test_head_and_empty_responses(port: int) -> None:
    with _connect(port) as conn:
        conn.sendall(b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n")
        head = conn.recv(65536)
        assert head.startswith(b"HTTP/1.1 200 OK\r\n") and head.endswith(b"\r\n\r\n")
        assert f"content-length: {len(BODY)}".encode() in head
        conn.sendall(b"GET /empty HTTP/1.1\r\nHost: x\r\n\r\n")
        empty = conn.recv(65536)
        assert empty.startswith(b"HTTP/1.1 204 No Content\r\n") and empty.endswith(b"\r\n\r\n")
        conn.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")  # the connection goes on
        assert _read_response(conn).endswith(BODY)


def test_a_failure_between_head_and_body_still_sends_the_head(port: int) -> None:
    with _connect(port) as conn:
        conn.sendall(b"GET /fails HTTP/1.1\r\nHost: x\r\n\r\n")
        received = b""
        while chunk := conn.recv(65536):
            received += chunk
        # As uvicorn's own protocol: the head, then the connection closes.
        assert received.startswith(b"HTTP/1.1 200 OK\r\n") and received.endswith(b"\r\n\r\n")


class _Recording:
    """A transport that keeps what is written, one entry per write."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def pause_reading(self) -> None: ...

    def resume_reading(self) -> None: ...


def _cycle(transport: _Recording, method: str = "GET") -> httptools_impl.RequestResponseCycle:
    cycle = httptools_impl.RequestResponseCycle(
        scope={"method": method, "path": "/", "query_string": b"", "http_version": "1.1"},  # type: ignore[typeddict-item]
        transport=transport,  # type: ignore[arg-type]
        flow=FlowControl(transport),  # type: ignore[arg-type]
        logger=logging.getLogger("test"),
        access_logger=logging.getLogger("test.access"),
        access_log=False,
        default_headers=[],
        message_event=asyncio.Event(),
        expect_100_continue=False,
        keep_alive=True,
        on_response=lambda: None,
    )
    cycle.transport = _HeadWithBody(transport, cycle)  # type: ignore[arg-type,assignment]
    return cycle


def _response(body: bytes, *, more: bytes | None = None, length: bool = True) -> list[Message]:
    headers = [(b"content-length", str(len(body) + len(more or b"")).encode())] if length else []
    messages: list[Message] = [{"type": "http.response.start", "status": 200, "headers": headers}]
    if more is not None:
        messages.append({"type": "http.response.body", "body": body, "more_body": True})
        body = more
    messages.append({"type": "http.response.body", "body": body})
    return messages


@pytest.mark.parametrize(
    ("method", "messages", "writes"),
    [
        ("GET", _response(BODY), 1),
        ("GET", _response(BODY[:10], more=BODY[10:]), 2),  # head and first part, then the rest
        ("GET", _response(b""), 2),  # as uvicorn: the head, then an empty write
        ("HEAD", _response(BODY), 1),  # the head alone
        ("GET", _response(BODY, length=False), 2),  # chunked: the head at once
    ],
)
def test_writes_per_response(method: str, messages: list[Message], writes: int) -> None:
    transport = _Recording()
    cycle = _cycle(transport, method)

    async def respond() -> None:
        for message in messages:
            await cycle.send(message)  # type: ignore[arg-type]

    asyncio.run(respond())
    assert len(transport.writes) == writes, transport.writes
    everything = b"".join(transport.writes)
    assert everything.startswith(b"HTTP/1.1 200 OK\r\n")
    if method == "GET" and messages[0]["headers"]:
        assert everything.endswith(b"\r\n\r\n" + b"".join(m.get("body", b"") for m in messages))
