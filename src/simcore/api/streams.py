"""Live run logs as Server-Sent Events.

One LISTEN connection per API process (``simcore.events.Listener``) wakes the streams of the
run that has news (new log lines, a status change); each stream also re-reads once a second,
so it keeps going while that connection is down. Reading happens in the threadpool: the event
loop never waits on the database.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator
from uuid import UUID

from starlette.concurrency import run_in_threadpool
from starlette.responses import StreamingResponse

from simcore.auth import Principal
from simcore.events import LOGS_CHANNEL, RUNS_CHANNEL, Event, Listener
from simcore.service import SimulatorService
from simcore.store import Database

BATCH = 500
POLL_SECONDS = 1.0
KEEPALIVE_SECONDS = 15.0


class EventStream(StreamingResponse):
    media_type = "text/event-stream"


class LogHub:
    """Routes database notifications to the streams waiting on a run."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._lock = threading.Lock()
        self._waiters: dict[str, set[tuple[asyncio.AbstractEventLoop, asyncio.Event]]] = {}
        self._listener: Listener | None = None

    def subscribe(self, run_id: UUID) -> asyncio.Event:
        """An event set whenever the run has news; call from the event loop."""
        wake = asyncio.Event()
        entry = (asyncio.get_running_loop(), wake)
        with self._lock:
            self._waiters.setdefault(str(run_id), set()).add(entry)
            if self._listener is None:
                # Started on first use: an API that nobody follows holds no extra connection.
                self._listener = Listener(
                    self._db, [LOGS_CHANNEL, RUNS_CHANNEL], self._on_event, tick_seconds=1.0
                ).start()
        return wake

    def unsubscribe(self, run_id: UUID, wake: asyncio.Event) -> None:
        key = str(run_id)
        with self._lock:
            waiters = self._waiters.get(key, set())
            for entry in [e for e in waiters if e[1] is wake]:
                waiters.discard(entry)
            if not waiters:
                self._waiters.pop(key, None)

    def _on_event(self, event: Event) -> None:
        key = event.payload.get("run_id") or event.payload.get("id")
        if not isinstance(key, str):
            return
        with self._lock:
            targets = list(self._waiters.get(key, ()))
        for loop, wake in targets:
            # The listener runs in its own thread; asyncio objects belong to their loop.
            if not loop.is_closed():
                loop.call_soon_threadsafe(wake.set)

    @property
    def listening(self) -> bool:
        return self._listener is not None and self._listener.connected

    def close(self) -> None:
        with self._lock:
            listener, self._listener = self._listener, None
        if listener is not None:
            listener.stop(timeout=3.0)


def format_line(seq: int, line: str) -> str:
    # A data field cannot hold a line break: each piece goes on its own data line, and the
    # client joins them back with "\n" as the SSE spec says.
    pieces = line.splitlines() or [""]
    return f"id: {seq}\nevent: log\n" + "".join(f"data: {p}\n" for p in pieces) + "\n"


def format_end(status: str) -> str:
    return f"event: end\ndata: {json.dumps({'status': status})}\n\n"


async def follow(
    service: SimulatorService, who: Principal, run_id: UUID, after: int, hub: LogHub
) -> AsyncIterator[str]:
    """Log lines after ``after`` as they come; an ``end`` event once the run is final."""
    wake = hub.subscribe(run_id)
    try:
        last = after
        quiet = 0.0
        while True:
            wake.clear()
            # Status first, lines second: a run seen final here had flushed all its lines, so
            # the read that follows cannot miss the last ones.
            detail = await run_in_threadpool(service.get_run, who, run_id)
            lines = await run_in_threadpool(service.read_log, who, run_id, last, BATCH)
            if lines:
                yield "".join(format_line(seq, text) for seq, text in lines)
                last = lines[-1][0]
                quiet = 0.0
            if len(lines) == BATCH:
                continue
            if detail.run.status.terminal:
                yield format_end(detail.run.status.value)
                return
            try:
                await asyncio.wait_for(wake.wait(), POLL_SECONDS)
            except TimeoutError:
                quiet += POLL_SECONDS
                if quiet >= KEEPALIVE_SECONDS:
                    # A comment line keeps proxies from closing an idle stream.
                    yield ": keep-alive\n\n"
                    quiet = 0.0
    finally:
        hub.unsubscribe(run_id, wake)
