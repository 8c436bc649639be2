"""The dashboard's link to the engine: the simulator, who acts, live events, a local worker.

Nothing here imports Textual: the screens call a ``Session`` from thread workers, and the
session calls back (events, connection state) from its own threads; the app turns those calls
into messages. Opening is lazy and retried, so the first screen draws at once and says what
is wrong when the database or the API cannot be reached.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import threading
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeGuard, cast

from simcore.errors import ConfigError

# The engine is imported where it is used, not here: the dashboard's first screen, drawn
# from a snapshot that a child process read (simtui.prefetch), does without it, and in API
# mode the local engine is never imported at all.
if TYPE_CHECKING:
    from simcore.auth import Permission, Principal
    from simcore.config import Settings
    from simcore.enums import Role
    from simcore.events import Event, Listener
    from simcore.facade import Simulator
    from simcore.service import SimulatorService
    from simcore.snapshot import DashboardSnapshot
    from simcore.worker import Executor, Worker
    from simtui.prefetch import ChildPrefetch

_log = logging.getLogger(__name__)

ExecutorFactory = Callable[["Settings"], "Executor"]
Opener = Callable[[], tuple["Simulator", "Principal"]]

WORKER_CONCURRENCY = 2
WORKER_GRACE_SECONDS = 3.0
"""On quit, runs in hand get this long to finish before they go back to the queue."""
WORKER_POLL_SECONDS = 10.0
LISTENER_TICK_SECONDS = 5.0
"""How often the LISTEN thread wakes without a notification, to notice that it must stop."""


class _HasDashboard(Protocol):
    def dashboard(self, principal: Principal) -> DashboardSnapshot: ...


def _alive(worker: dict[str, Any]) -> bool:
    """A worker that heartbeated lately; on this host, only if its process still exists.

    A dashboard killed with its SSH session cannot mark its worker stopped, and its last
    heartbeat keeps it "alive" for 90 s: the next dashboard on the same host must not wait
    that long for a worker that is gone.
    """
    if worker.get("hostname") != socket.gethostname():
        return True
    try:
        os.kill(int(worker["pid"]), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, ValueError, TypeError, KeyError):
        return True
    return True


def _is_service(simulator: object) -> TypeGuard[SimulatorService]:
    """Whether ``simulator`` is the local engine; without importing it when it is not loaded."""
    module = sys.modules.get("simcore.service")
    return module is not None and isinstance(simulator, module.SimulatorService)


def database_error() -> type[Exception]:
    """psycopg's base error, for ``except (SimError, database_error())``.

    An except clause is evaluated only when something was raised: so the screens catch the
    driver's errors without importing it, and their first paint does not wait for it.
    """
    import psycopg

    return psycopg.Error


def local_label(settings: Settings) -> str:
    """Where a local session's data comes from, for the status line."""
    return "embedded db" if settings.database_url is None else "SIMTUI_DATABASE_URL"


def default_executor(settings: Settings) -> Executor:
    from simcore.executor import make_executor

    return make_executor(settings)


class Session:
    def __init__(
        self,
        opener: Opener,
        *,
        label: str,
        settings: Settings | None = None,
        executor_factory: ExecutorFactory | None = None,
        live_events: bool = True,
        principal: Principal | None = None,
        local_mode: bool = False,
    ) -> None:
        self._opener = opener
        self.label = label
        """Where the data comes from, for the status line."""
        self.settings = settings
        self.executor_factory = executor_factory
        """Local mode: how to build the in-process worker's executor; None: never run one."""
        self.live_events = live_events
        self._lock = threading.Lock()
        self._simulator: Simulator | None = None
        self._principal: Principal | None = principal
        """Local mode knows who acts before it connects; API mode learns it from the API."""
        self._local_mode = local_mode
        """Built for the local engine (``from_settings`` without an API URL), open or not."""
        self._listener: Listener | None = None
        self._worker: Worker | None = None
        self._worker_thread: threading.Thread | None = None
        self.worker_messages: deque[str] = deque(maxlen=50)
        self._prefetch_thread: threading.Thread | None = None
        self._prefetched: DashboardSnapshot | None = None
        self._prefetch_error: Exception | None = None
        self._closed = False
        """Closed: going live from a thread that was already on its way starts nothing."""
        self.on_event: Callable[[Event], None] | None = None
        self.on_connection: Callable[[bool], None] | None = None

    # -- construction -----------------------------------------------------------------------

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        role: Role | None = None,
        executor_factory: ExecutorFactory | None = default_executor,
    ) -> Session:
        """API mode when ``SIMTUI_API_URL`` is set, else local mode on the database."""
        if settings.api_url:
            if role is not None:
                raise ConfigError("--role: only in local mode; in API mode the token decides")
            api_url = settings.api_url

            def open_remote() -> tuple[Simulator, Principal]:
                from simcore.client import RemoteService

                remote = RemoteService.from_settings(settings)
                try:
                    return remote, remote.whoami()
                except BaseException:
                    remote.close()
                    raise

            return cls(open_remote, label=f"API {api_url}", settings=settings, live_events=False)

        return cls.for_database(
            lambda: settings,
            label=local_label(settings),
            settings=settings,
            role=role,
            executor_factory=executor_factory,
        )

    @classmethod
    def for_database(
        cls,
        load: Callable[[], Settings],
        *,
        label: str,
        settings: Settings | None = None,
        role: Role | None = None,
        executor_factory: ExecutorFactory | None = default_executor,
    ) -> Session:
        """Local mode on the database, with the settings that ``load`` gives when the session
        opens (``settings`` until then, if already read).

        The dashboard's process builds its session this way once the prefetch child has read
        the settings and found them good: reading them itself imports pydantic, which the
        first screen does without (a fifth of its start).
        """
        from simcore.auth import local_principal
        from simcore.enums import Role

        principal = local_principal(role or Role.OPS)

        def open_local() -> tuple[Simulator, Principal]:
            settings = session.settings = load()
            if settings.database_url is None:
                # First, so that a stopped server starts while the engine's modules load.
                from simcore.store import embedded

                embedded.start(Path(settings.data_dir))
            from simcore.service import SimulatorService

            service = SimulatorService(settings)
            try:
                service.start()
            except BaseException:
                service.close()
                raise
            return service, principal

        session = cls(
            open_local,
            label=label,
            settings=settings,
            executor_factory=executor_factory,
            principal=principal,
            local_mode=True,
        )
        return session

    @classmethod
    def attached(
        cls,
        simulator: Simulator,
        principal: Principal,
        *,
        label: str = "local",
        executor_factory: ExecutorFactory | None = None,
        live_events: bool = True,
    ) -> Session:
        """A session over a simulator that is already open (tests, embedding)."""
        settings = simulator.settings if _is_service(simulator) else None
        return cls(
            lambda: (simulator, principal),
            label=label,
            settings=settings,
            executor_factory=executor_factory,
            live_events=live_events,
        )

    # -- state ------------------------------------------------------------------------------

    def open(self) -> tuple[Simulator, Principal]:
        """Connect (once; a failure is raised and the next call tries again)."""
        with self._lock:
            if self._simulator is None or self._principal is None:
                self._simulator, self._principal = self._opener()
            return self._simulator, self._principal

    @property
    def is_open(self) -> bool:
        return self._simulator is not None

    @property
    def principal(self) -> Principal | None:
        return self._principal

    @property
    def simulator(self) -> Simulator:
        simulator, _ = self.open()
        return simulator

    @property
    def service(self) -> SimulatorService | None:
        """The local service (local mode), for what only it offers: events, workers."""
        simulator = self._simulator
        return simulator if _is_service(simulator) else None

    @property
    def local(self) -> bool:
        return self.service is not None

    def can(self, permission: Permission) -> bool:
        """Until the role is known nobody may write (API mode: until the session opened)."""
        return self._principal is not None and self._principal.can(permission)

    # -- live events and the worker ---------------------------------------------------------

    def start_live(self) -> bool:
        """Local mode: LISTEN for run and log changes; False if updates must be polled."""
        service = self.service
        if service is None or self._closed or not self.live_events or self.on_event is None:
            return False
        from simcore.events import LOGS_CHANNEL, RUNS_CHANNEL, Listener

        with self._lock:
            if self._closed:
                return False
            if self._listener is None:
                self._listener = Listener(
                    service.db,
                    [RUNS_CHANNEL, LOGS_CHANNEL],
                    self.on_event,
                    tick_seconds=LISTENER_TICK_SECONDS,
                    on_connection=self.on_connection,
                ).start()
        return True

    @property
    def listening(self) -> bool:
        return self._listener is not None and self._listener.connected

    @property
    def in_process_worker(self) -> bool:
        return self._worker_thread is not None and self._worker_thread.is_alive()

    def ensure_worker(self) -> bool:
        """Run a worker in this process when none is alive, so that runs progress.

        Returns whether one was started now. The in-process worker registers itself like any
        other, so a second dashboard sees it and does not start its own. Only for a role that
        may run simulations: an auditor's dashboard changes nothing.
        """
        service = self.service
        if (
            service is None
            or self._closed
            or self.executor_factory is None
            or self.in_process_worker
        ):
            return False
        from simcore import queue
        from simcore.auth import Permission

        if not self.can(Permission.RUN):
            return False  # a read-only session executes nothing, not even others' runs
        with service.db.transaction() as conn:
            if any(_alive(w) for w in queue.live_workers(conn)):
                return False
        from simcore.worker import Worker

        executor = self.executor_factory(service.settings)
        worker = Worker(
            service.db,
            executor,
            concurrency=WORKER_CONCURRENCY,
            max_run_time_ms=service.settings.max_run_time_ms,
            grace_seconds=WORKER_GRACE_SECONDS,
            # It wakes on NOTIFY when a run is queued; the poll is only the fallback.
            poll_seconds=WORKER_POLL_SECONDS,
            on_event=self.worker_messages.append,
        )
        thread = threading.Thread(target=worker.run, name="simtui-worker", daemon=True)
        with self._lock:
            if self._closed:
                return False
            self._worker, self._worker_thread = worker, thread
            thread.start()
        return True

    def workers_label(self, snapshot: DashboardSnapshot | None) -> str:
        alive = snapshot.workers_alive if snapshot is not None else None
        if self.in_process_worker:
            others = (alive or 1) - 1
            return "worker: in-process" + (f" +{others}" if others > 0 else "")
        if alive is None:
            return "workers: ?"
        return f"workers: {alive}"

    # -- reads ------------------------------------------------------------------------------

    def prefetch(self, child: ChildPrefetch | None = None) -> None:
        """Connect and read the first snapshot now, in the background.

        Called before the app starts: the database work then overlaps with building the
        screen, and the home screen's first refresh only waits for what is left of it.

        ``child``: a process forked at the start to read it (``simtui.prefetch``), used in
        local mode; its snapshot leaves this session closed, and the home screen opens it
        after the first paint. Without one (or in API mode), a thread reads it here.
        """
        if child is not None and self._local_mode:
            self._prefetch_thread = threading.Thread(
                target=self._receive, args=(child,), name="simtui-prefetch", daemon=True
            )
            self._prefetch_thread.start()
            return
        if child is not None:  # API mode: the child read nothing; reap it
            threading.Thread(target=child.answer, name="simtui-reap", daemon=True).start()

        def read() -> None:
            try:
                self._prefetched = self._read_snapshot()
            except Exception as exc:  # handed over to the first reader, who reports it
                self._prefetch_error = exc

        thread = threading.Thread(target=read, name="simtui-prefetch", daemon=True)
        self._prefetch_thread = thread
        thread.start()

    def _receive(self, child: ChildPrefetch) -> None:
        self._prefetched, self._prefetch_error = child.answer()

    def take_prefetched(self, wait: float | None = 0.0) -> DashboardSnapshot | None:
        """The snapshot that ``prefetch`` read, if it is there within ``wait`` seconds.

        ``wait=None`` waits for the prefetch to end. The session may still be closed: a
        snapshot read by the child process leaves this process to open its own.

        Else None, and the prefetch is left as it is for ``snapshot`` (which also reports
        its error, if it failed). From the thread that also calls ``snapshot``, or before
        any other does.
        """
        thread = self._prefetch_thread
        if thread is None:
            return None
        thread.join(wait)
        if thread.is_alive() or self._prefetched is None:
            return None
        self._prefetch_thread = None
        snapshot, self._prefetched = self._prefetched, None
        return snapshot

    def snapshot(self) -> DashboardSnapshot:
        thread, self._prefetch_thread = self._prefetch_thread, None
        if thread is not None:
            thread.join()
            error, self._prefetch_error = self._prefetch_error, None
            snapshot, self._prefetched = self._prefetched, None
            if error is not None:
                raise error
            if snapshot is not None:
                return snapshot
        return self._read_snapshot()

    def _read_snapshot(self) -> DashboardSnapshot:
        simulator, principal = self.open()
        dashboard = getattr(simulator, "dashboard", None)
        if callable(dashboard):
            return cast(_HasDashboard, simulator).dashboard(principal)
        # An API without the snapshot: build it from what the API lists.
        from datetime import UTC, datetime

        from simcore.dashboard import approximate
        from simcore.enums import ApprovalStatus

        runs = simulator.list_runs(principal, limit=500)
        simulations = {s.id: s for s in simulator.list_simulations(principal, limit=1000)}
        pending = simulator.list_approvals(principal, status=ApprovalStatus.PENDING, limit=50)
        decided = [
            a
            for a in simulator.list_approvals(principal, limit=200)
            if a.status is not ApprovalStatus.PENDING
        ]
        return approximate(
            datetime.now(UTC), runs, simulations, pending, decided, principal=principal
        )

    # -- shutdown ---------------------------------------------------------------------------

    def close(self) -> None:
        with self._lock:
            self._closed = True
            listener, self._listener = self._listener, None
            worker, thread = self._worker, self._worker_thread
            simulator, self._simulator = self._simulator, None
        if listener is not None:
            # Not joined: its thread notices the stop within a tick and closes its own
            # connection; quitting need not wait for that.
            listener.stop(timeout=0)
        if worker is not None and thread is not None:
            worker.stop()
            thread.join(timeout=WORKER_GRACE_SECONDS + 5)
        if simulator is not None:
            simulator.close()
