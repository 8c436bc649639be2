"""State shared by the routes of one API process."""

from __future__ import annotations

import threading
import time

import psycopg

from simcore.api.streams import LogHub
from simcore.auth import Principal
from simcore.errors import DatabaseUnavailable, SimError
from simcore.metrics import build_registry
from simcore.service import SimulatorService

START_RETRY_SECONDS = 2.0


class ApiState:
    """What the routes share: the service, its start-up, the metrics registry, the log hub."""

    def __init__(self, service: SimulatorService) -> None:
        self.service = service
        self.registry = build_registry(service.dashboard_metrics)
        self.hub = LogHub(service.db)
        self.started = False
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
