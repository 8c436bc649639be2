"""GET run status's one statement, on the event loop: no thread, no pool checkout.

The polled route (``simcore.api.hot``) cost its process more in handing the statement to a
thread and back than in the statement itself: the thread's every wait on the socket lets the
GIL go and takes it back from the event loop. ``RunReader`` sends the very statement
``SimulatorService.get_run`` sends (``simcore.service.GET_RUN_SQL``), on a few connections of
its own (psycopg's asynchronous ones, in autocommit: one statement, no BEGIN/COMMIT), and makes
the same ``RunDetail`` of its rows with the same permission and tenant checks
(``run_detail_from_rows``; ``tests/api/test_fast_reads.py`` holds both to the same answers).

Whenever the reader cannot answer (the database is away, a connection broke, a statement
failed), the request is answered the plain way, in a thread, which fails as it always did (503
and the rest) if the database really is the matter; after a failure the reader stands aside
for ``RETRY_SECONDS``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from typing import Any
from uuid import UUID

import psycopg
from psycopg.rows import tuple_row

from simcore.auth import Permission, Principal
from simcore.service import GET_RUN_SQL, RunDetail, run_detail_from_rows
from simcore.store import Database

_log = logging.getLogger("simcore.api")

RETRY_SECONDS = 1.0
DEFAULT_CONNECTIONS = 4
"""Per process: on a small machine the database answers from the same cores; more connections
would only queue there."""

Row = tuple[Any, ...]


class ReaderUnavailable(Exception):
    """The reader stands aside (a recent failure): answer the plain way."""


class RunReader:
    """Reads runs on up to ``size`` connections of its own, driven by the running loop."""

    def __init__(self, db: Database, *, size: int = DEFAULT_CONNECTIONS) -> None:
        self.db = db
        self.size = size
        self.statements = 0
        """Statements sent so far."""
        self._idle: list[psycopg.AsyncConnection[Any]] = []
        self._opened = 0
        """Connections open, or opening, including those in use."""
        self._waiting: deque[asyncio.Future[psycopg.AsyncConnection[Any] | None]] = deque()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._failed_at: float | None = None

    async def get_run(self, principal: Principal, run_id: UUID) -> RunDetail:
        """As ``SimulatorService.get_run``; ``ReaderUnavailable`` or ``psycopg.Error`` when
        this reader cannot say (answer the plain way then)."""
        principal.require(Permission.READ, "read runs")
        return run_detail_from_rows(principal, run_id, await self.rows(run_id))

    async def rows(self, run_id: UUID) -> list[Row]:
        if self._failed_at is not None:
            if time.monotonic() - self._failed_at < RETRY_SECONDS:
                raise ReaderUnavailable("a recent failure")
            self._failed_at = None
        conn = await self._acquire()
        healthy = False
        try:
            self.statements += 1
            cur = conn.cursor(row_factory=tuple_row)
            await cur.execute(GET_RUN_SQL, (run_id,))
            rows = await cur.fetchall()
            healthy = True
            return rows
        except psycopg.Error:
            self._failed_at = time.monotonic()
            raise
        finally:
            # Cancelled or failed mid-statement: what the connection holds is unknown.
            self._release(conn, healthy)

    async def _acquire(self) -> psycopg.AsyncConnection[Any]:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            # Connections belong to the loop that opened them (a test client runs a loop per
            # request): start afresh on this one.
            self._discard_all()
            self._loop = loop
        while True:
            if self._idle:
                return self._idle.pop()
            if self._opened < self.size:
                return await self._connect()
            waiter: asyncio.Future[psycopg.AsyncConnection[Any] | None] = loop.create_future()
            self._waiting.append(waiter)
            try:
                conn = await waiter
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():
                    # Handed something just as this request was cancelled: pass it on.
                    handed = waiter.result()
                    if handed is None:
                        self._wake(None)
                    else:
                        self._release(handed, True)
                raise
            if conn is not None:
                return conn
            # None: a connection was dropped; open another (or take an idle one).

    async def _connect(self) -> psycopg.AsyncConnection[Any]:
        self._opened += 1
        try:
            return await psycopg.AsyncConnection.connect(
                self.db.url,
                autocommit=True,
                connect_timeout=self.db.settings.db_connect_timeout_s,
            )
        except BaseException as exc:
            self._opened -= 1
            self._wake(None)
            if isinstance(exc, psycopg.Error):
                self._failed_at = time.monotonic()
            raise

    def _release(self, conn: psycopg.AsyncConnection[Any], healthy: bool) -> None:
        if conn.closed or conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            healthy = False
        if not healthy:
            self._opened -= 1
            _finish(conn)
            self._wake(None)
        elif not self._wake(conn):
            self._idle.append(conn)

    def _wake(self, conn: psycopg.AsyncConnection[Any] | None) -> bool:
        """Hands ``conn`` (None: a free place) to the first request waiting, if any."""
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_result(conn)
                return True
        return False

    def _discard_all(self) -> None:
        idle, self._idle = self._idle, []
        for conn in idle:
            _finish(conn)
        self._opened = 0
        self._waiting.clear()

    def close(self) -> None:
        self._discard_all()


def _finish(conn: psycopg.AsyncConnection[Any]) -> None:
    """Closes at once, without the loop (libpq's own close: a Terminate and the socket)."""
    try:
        conn.pgconn.finish()
    except Exception as exc:  # closing: nothing left to do about it
        _log.debug("run reader: closing a connection: %s", exc)
