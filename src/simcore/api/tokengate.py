"""Bearer tokens checked at the cost of one small shared read, with revocation still immediate.

Verifying a token costs a round trip of its own (and did cost four). An API process keeps
the tokens it verified in a ``TokenCache``; what makes a cached verification safe is the
revocation generation of migration 0007, which every revocation (by anyone: this API,
`simcore token revoke`, SQL by hand) moves on in its own transaction. A request is let through
on a cached verification only if the generation, read *after the request arrived*, is still
the one the token was verified at; so a token revoked before a request arrives is refused by
that request, in every process.

That read is ``RevocationClock.read``: a one-row SELECT on a connection of its own, driven by
the event loop (libpq's asynchronous calls; no thread hop, no pool checkout). Requests that
arrive while a read is on the wire wait for the next one, which all of them then share: the
read answers for every request that arrived before it was sent, never for a later one.

Whenever the clock cannot answer (the database is away, the read is slow), the request is
verified the plain way, in a thread, and fails as it always did (503) if that fails too.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import psycopg
from psycopg import pq

from simcore import tokens
from simcore.api.state import ApiState
from simcore.auth import Principal
from simcore.errors import SimError
from simcore.store import Database

_log = logging.getLogger("simcore.api")

READ_TIMEOUT_SECONDS = 2.0
RETRY_SECONDS = 1.0
"""After a failed read, requests are verified the plain way for this long."""


class RevocationClock:
    """Reads the revocation generation for the requests waiting for it (see the module)."""

    def __init__(self, db: Database, *, timeout: float = READ_TIMEOUT_SECONDS) -> None:
        self.db = db
        self.timeout = timeout
        self.reads = 0
        """Reads sent so far (requests served: more, as they share reads)."""
        self._conn: psycopg.Connection[Any] | None = None
        self._waiting: list[asyncio.Future[int]] = []
        self._reader: asyncio.Task[None] | None = None
        self._failed_at: float | None = None

    async def read(self) -> int:
        """The generation, read by a query sent after this call began."""
        if self._failed_at is not None and time.monotonic() - self._failed_at < RETRY_SECONDS:
            raise psycopg.OperationalError("revocation clock unavailable (recent failure)")
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[int] = loop.create_future()
        self._waiting.append(waiter)
        if self._reader is None:
            self._reader = loop.create_task(self._serve())
        return await waiter

    async def _serve(self) -> None:
        try:
            while self._waiting:
                # Everyone waiting now arrived before the query below is sent.
                batch, self._waiting = self._waiting, []
                try:
                    generation = await asyncio.wait_for(self._query(), self.timeout)
                except Exception as exc:  # handed to every waiter
                    self._failed_at = time.monotonic()
                    self._drop()
                    for waiter in batch:
                        if not waiter.done():
                            waiter.set_exception(exc)
                    continue
                self._failed_at = None
                for waiter in batch:
                    if not waiter.done():
                        waiter.set_result(generation)
        finally:
            self._reader = None

    async def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is not None:
            return self._conn
        connected = await asyncio.to_thread(self.db.connect, autocommit=True)
        self._conn = connected
        return connected

    async def _query(self) -> int:
        pgconn = (await self._connection()).pgconn
        loop = asyncio.get_running_loop()
        self.reads += 1
        pgconn.send_query(tokens.GENERATION_SQL.encode())
        while pgconn.flush():  # 1: more to send
            await _ready(loop, pgconn.socket, write=True)
        results = []
        while True:
            pgconn.consume_input()
            if pgconn.is_busy():
                await _ready(loop, pgconn.socket, write=False)
                continue
            result = pgconn.get_result()
            if result is None:
                break
            results.append(result)
        if len(results) != 1 or results[0].status != pq.ExecStatus.TUPLES_OK:
            message = results[-1].error_message.decode(errors="replace") if results else ""
            raise psycopg.OperationalError(f"reading the revocation generation: {message}")
        value = results[0].get_value(0, 0) if results[0].ntuples == 1 else None
        if value is None:
            raise psycopg.OperationalError("the revocation generation is missing")
        return int(value)

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except psycopg.Error:
                pass

    def close(self) -> None:
        self._drop()


async def _ready(loop: asyncio.AbstractEventLoop, fd: int, *, write: bool) -> None:
    ready: asyncio.Future[None] = loop.create_future()

    def wake() -> None:
        if not ready.done():
            ready.set_result(None)

    if write:
        loop.add_writer(fd, wake)
    else:
        loop.add_reader(fd, wake)
    try:
        await ready
    finally:
        if write:
            loop.remove_writer(fd)
        else:
            loop.remove_reader(fd)


class TokenGate:
    """The principal of a bearer token, for the API's ``TokenAuth`` middleware."""

    def __init__(self, state: ApiState, cache: tokens.TokenCache | None = None) -> None:
        self.state = state
        self.cache = cache or tokens.TokenCache()
        self.clock = RevocationClock(state.service.db)

    async def principal(self, token: str) -> Principal:
        if not self.state.started:
            # Starts the service (migrations) or says why it cannot: the plain way.
            return await self.state.call_db(self.state.authenticate, token)
        digest = tokens.hash_token(tokens.check_shape(token))
        try:
            generation = await self.clock.read()
        except (psycopg.Error, OSError, SimError, TimeoutError) as exc:
            _log.debug("token cache bypassed: %s", exc)
            return await self.state.call_db(self.state.authenticate, token)
        principal = self.cache.lookup(digest, generation)
        if principal is not None:
            return principal
        info, verified_at = await self.state.call_db(tokens.verify, self.state.service.db, digest)
        self.cache.store(digest, info, verified_at)
        return info.principal()

    def close(self) -> None:
        self.clock.close()
