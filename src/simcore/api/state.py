"""State shared by the routes of one API process."""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar
from uuid import UUID

import psycopg

from simcore.api.runreader import ReaderUnavailable, RunReader
from simcore.api.streams import LogHub
from simcore.auth import Principal
from simcore.errors import DatabaseUnavailable, SimError
from simcore.metrics import build_registry
from simcore.service import RunDetail, SimulatorService

_log = logging.getLogger("simcore.api")

START_RETRY_SECONDS = 2.0

P = ParamSpec("P")
T = TypeVar("T")


class ApiState:
    """What the routes share: the service, its start-up, the metrics registry, the log hub."""

    def __init__(self, service: SimulatorService) -> None:
        self.service = service
        self.registry = build_registry(service.dashboard_metrics)
        self.hub = LogHub(service.db)
        self.started = False
        self.db_threads = ThreadPoolExecutor(
            max_workers=service.settings.db_pool_max, thread_name_prefix="api-db"
        )
        """For the token checks' and the polled routes' database calls: no more threads than
        pooled connections (more would only queue for one), and fewer threads fighting over
        the GIL than in the framework's 40-thread pool."""
        self.reader = RunReader(service.db, size=min(service.settings.db_pool_max, 4))
        """GET run status's statement, on the event loop (see runreader)."""
        self._lock = threading.Lock()
        self._last_failure: tuple[float, SimError] | None = None

    def ensure_started(self) -> None:
        """Migrate and load the built-in patches once; retried while the database is away.

        A failure is remembered for a moment, so that a burst of requests during an outage
        gets 503s at once instead of queueing behind connection timeouts.
        """
        if self.started:
            return
        with self._lock:
            if self.started:
                return
            if self._last_failure and time.monotonic() - self._last_failure[0] < (
                START_RETRY_SECONDS
            ):
                raise self._last_failure[1]
            try:
                self.service.start()
            except SimError as exc:
                self._last_failure = (time.monotonic(), exc)
                raise
            except psycopg.Error as exc:
                failure = DatabaseUnavailable(f"database not ready: {exc}".strip())
                self._last_failure = (time.monotonic(), failure)
                raise failure from None
            self._last_failure = None
            self.started = True

    def authenticate(self, token: str) -> Principal:
        self.ensure_started()
        return self.service.authenticate(token)

    async def call_db(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """``fn(*args, **kwargs)`` (blocking database work) in one of ``db_threads``."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.db_threads, functools.partial(fn, *args, **kwargs))

    async def get_run(self, principal: Principal, run_id: UUID) -> RunDetail:
        """``SimulatorService.get_run``: on the event loop when the reader can, else in a
        thread (which answers, or fails, as it always did)."""
        if self.started:
            try:
                return await self.reader.get_run(principal, run_id)
            except (ReaderUnavailable, psycopg.Error, OSError) as exc:
                _log.debug("run reader bypassed: %s", exc)
        return await self.call_db(self.service.get_run, principal, run_id)

    def close(self) -> None:
        self.reader.close()
        self.db_threads.shutdown(wait=True, cancel_futures=True)
        self.hub.close()
