"""A real uvicorn server on 127.0.0.1 over the test's database, and a token per role."""

from __future__ import annotations

import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from psycopg import conninfo

from simcore import queue
from simcore.api import create_app
from simcore.auth import Principal
from simcore.commands.serve import http_protocol
from simcore.config import Settings
from simcore.model import Role, RunStatus
from simcore.service import SimulatorService
from tests.conftest import TEMPLATE_DB, create_database, drop_database

ADMIN = Principal("admin", Role.OPS)
"""Creates the tokens, as `simcore token create` would on the server's machine."""
LAUNCHER = Principal("launcher", Role.OPS)
"""Launches runs in fixtures, so that every ops token may decide on their patches."""


class LiveServer:
    """uvicorn in a thread, on a port the kernel picked."""

    def __init__(self, app: FastAPI) -> None:
        # IPPROTO_TCP explicitly: asyncio only turns Nagle off (TCP_NODELAY) on sockets that
        # say they are TCP, and uvicorn's h11 writes headers and body separately, so a
        # keep-alive request would otherwise wait ~40 ms for a delayed ACK.
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        port = self._sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        config = uvicorn.Config(
            app,
            lifespan="on",
            ws="none",
            log_level="warning",
            access_log=False,
            log_config=None,
            http=http_protocol(),  # as `simcore serve`
        )
        self.server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self._sock]}, daemon=True
        )

    def start(self) -> LiveServer:
        self._thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self._thread.join(15)
        self._sock.close()


@dataclass(frozen=True)
class Tokens:
    ops: str
    ops2: str
    dev_a: str
    dev_b: str
    auditor: str
    sira: str
    revoked: str

    def for_role(self, name: str) -> str:
        value: str = getattr(self, name)
        return value


TENANT_A = ("merchant", "m-a")
TENANT_B = ("merchant", "m-b")


def make_tokens(service: SimulatorService) -> Tokens:
    def new(role: Role, identity: str, tenant: tuple[str, str] | None = None) -> str:
        return service.create_token(
            ADMIN,
            role,
            tenant_type=tenant[0] if tenant else None,
            tenant_id=tenant[1] if tenant else None,
            name=identity,
        ).token

    revoked = service.create_token(ADMIN, Role.OPS, name="gone")
    service.revoke_token(ADMIN, revoked.info.id)
    return Tokens(
        ops=new(Role.OPS, "alice"),
        ops2=new(Role.OPS, "bob"),
        dev_a=new(Role.DEV, "dana", TENANT_A),
        dev_b=new(Role.DEV, "dmitri", TENANT_B),
        auditor=new(Role.AUDITOR, "audrey"),
        sira=new(Role.SIRA, "sira-bot"),
        revoked=revoked.token,
    )


@dataclass(frozen=True)
class Env:
    settings: Settings
    service: SimulatorService
    tokens: Tokens
    live: LiveServer


@contextmanager
def open_env(pg_admin_url: str, data_dir: Path) -> Iterator[Env]:
    """A database of its own, the service, a token per role, and a server over them."""
    name = create_database(pg_admin_url, TEMPLATE_DB)
    try:
        settings = Settings(
            database_url=conninfo.make_conninfo(pg_admin_url, dbname=name), data_dir=data_dir
        )
        with SimulatorService(settings) as service:
            tokens = make_tokens(service)
            live = LiveServer(create_app(settings, service=service)).start()
            try:
                yield Env(settings, service, tokens, live)
            finally:
                live.stop()
    finally:
        drop_database(pg_admin_url, name)


@pytest.fixture(scope="module")
def shared(
    pg_admin_url: str, template_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Env]:
    """One environment for a whole module, for tests that do not depend on what others wrote:
    a server and a database per test would cost more than most of those tests."""
    with open_env(pg_admin_url, tmp_path_factory.mktemp("api")) as env:
        yield env


@pytest.fixture
def service(settings: Settings) -> Iterator[SimulatorService]:
    with SimulatorService(settings) as svc:
        yield svc


@pytest.fixture
def tokens(service: SimulatorService) -> Tokens:
    return make_tokens(service)


@pytest.fixture
def live(settings: Settings, service: SimulatorService) -> Iterator[LiveServer]:
    server = LiveServer(create_app(settings, service=service)).start()
    try:
        yield server
    finally:
        server.stop()


def client_for(live: LiveServer, token: str | None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(base_url=live.url, headers=headers, timeout=30)


@pytest.fixture
def ops(live: LiveServer, tokens: Tokens) -> Iterator[httpx.Client]:
    with client_for(live, tokens.ops) as client:
        yield client


def finish_run(
    service: SimulatorService,
    run_id: UUID,
    status: RunStatus = RunStatus.SUCCESS,
    metrics: dict[str, Any] | None = None,
) -> None:
    """Take a queued run through the queue's own claim-like update and finish, as a worker
    would, without executing anything (and without touching other queued runs)."""
    with service.db.transaction() as conn:
        conn.execute("SELECT set_config('simtui.journaled', 'on', true)")
        conn.execute(
            "UPDATE sdk_simulation_runs SET status = 'running', worker_id = 'test-worker', "
            "lease_until = now() + interval '1 minute', started_at = now(), attempts = 1 "
            "WHERE id = %s AND status = 'queued'",
            (run_id,),
        )
    done = queue.finish(
        service.db,
        run_id,
        "test-worker",
        queue.Outcome(
            status,
            metrics=metrics
            if metrics is not None
            else {"success_rate": 0.92, "avg_latency_ms": 187, "total_requests": 100},
        ),
    )
    assert done


def wait_ready(server: subprocess.Popen[str], url: str, seconds: float) -> None:
    """Until `simcore serve` at ``url`` answers /readyz 200; fails if it exits or is late."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert server.poll() is None and time.monotonic() < deadline, "serve did not start"
        time.sleep(0.1)
