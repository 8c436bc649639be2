"""Change events over LISTEN/NOTIFY, with reconnection and a polling fallback.

Channels: ``simtui_runs`` (a run was queued or changed status; JSON payload) and
``simtui_logs`` (new log lines for a run; payload: the run id). A listener that loses its
connection keeps calling back on a timer (``on_tick``) so that a caller polling as a fallback
still refreshes while the database is away, and it reconnects with backoff.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from simcore.errors import SimError
from simcore.store import Database

RUNS_CHANNEL = "simtui_runs"
LOGS_CHANNEL = "simtui_logs"

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Event:
    channel: str
    payload: dict[str, Any]


def _parse(channel: str, payload: str) -> Event:
    if channel == LOGS_CHANNEL:
        return Event(channel, {"run_id": payload})
    try:
        data = json.loads(payload)
    except json.JSONDecodeError:
        data = {"raw": payload}
    return Event(channel, data if isinstance(data, dict) else {"raw": data})


class Listener:
    """Calls ``on_event`` for each notification, from a daemon thread."""

    def __init__(
        self,
        db: Database,
        channels: Sequence[str],
        on_event: Callable[[Event], None],
        *,
        on_tick: Callable[[], None] | None = None,
        tick_seconds: float = 2.0,
        on_connection: Callable[[bool], None] | None = None,
    ) -> None:
        self.db = db
        self.channels = tuple(channels)
        self.on_event = on_event
        self.on_tick = on_tick
        self.tick_seconds = tick_seconds
        self.on_connection = on_connection
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="simcore-listener", daemon=True)
        self.connected = False

    def start(self) -> Listener:
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

    def _set_connected(self, value: bool) -> None:
        if value != self.connected:
            self.connected = value
            if self.on_connection:
                self.on_connection(value)

    def _run(self) -> None:
        backoff = 0.5
        while not self._stop.is_set():
            try:
                with self.db.connect(autocommit=True) as conn:
                    for channel in self.channels:
                        conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
                    self._set_connected(True)
                    backoff = 0.5
                    while not self._stop.is_set():
                        for note in conn.notifies(timeout=self.tick_seconds, stop_after=64):
                            self.on_event(_parse(note.channel, note.payload))
                        if self.on_tick:
                            self.on_tick()
            except (psycopg.Error, SimError, OSError) as exc:
                _log.debug("listener connection lost: %s", exc)
                self._set_connected(False)
                if self.on_tick:
                    self.on_tick()
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 10.0)
