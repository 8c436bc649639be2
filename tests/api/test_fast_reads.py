"""GET run status, the polled route: what it costs the database, and that its fast path
(simcore.api.hot, before FastAPI's routing) answers exactly as the declared route does."""

from __future__ import annotations

import asyncio
import gc
import itertools
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any
from uuid import UUID, uuid4

import httpx
import psycopg
import pytest

from simcore.api import create_app, runreader
from simcore.api.hot import RUN_STATUS_PATH
from simcore.api.runreader import RunReader
from simcore.config import Settings
from simcore.errors import SimError
from simcore.model import Role
from simcore.service import SimulatorService
from simcore.templates import get_template
from tests.api.conftest import ADMIN, LAUNCHER, Env, LiveServer, client_for, finish_run as finish
from tests.api.test_authz import ROLES, TOKEN_OF, World, build_world


@pytest.fixture(scope="module")
def env(shared: Env) -> Env:
    return shared


@pytest.fixture(scope="module")
def world(env: Env) -> World:
    return build_world(env.service)


def _paths(world: World) -> dict[str, str]:
    """Cases of GET run status, by name: paths written with canonical UUIDs."""
    own, other = world.runs["own"], world.runs["other"]
    return {
        "own": f"/api/simulator/{world.sims['own']}/runs/{own}",
        "other tenant": f"/api/simulator/{world.sims['other']}/runs/{other}",
        "wrong simulation": f"/api/simulator/{world.sims['other']}/runs/{own}",
        "unknown run": f"/api/simulator/{world.sims['own']}/runs/{uuid4()}",
        "unknown simulation": f"/api/simulator/{uuid4()}/runs/{own}",
        "by run id": f"/api/simulator/runs/{own}",
        "by run id, other tenant": f"/api/simulator/runs/{other}",
    }


def _as_route_only(path: str) -> str:
    """The same ids as 32 hex digits: a UUID to the declared route, not to the fast path."""
    return re.sub(
        r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
        lambda m: m[0].replace("-", ""),
        path,
    )


@pytest.mark.parametrize("role", ROLES)
def test_the_fast_path_answers_as_the_declared_route(role: str, env: Env, world: World) -> None:
    token = env.tokens.for_role(TOKEN_OF[role])
    with client_for(env.live, token) as client:
        for case, path in _paths(world).items():
            assert RUN_STATUS_PATH.match(path) and not RUN_STATUS_PATH.match(_as_route_only(path))
            fast, routed = client.get(path), client.get(_as_route_only(path))
            assert (fast.status_code, case) == (routed.status_code, case)
            assert fast.json() == routed.json(), case
            for header in ("content-type", "content-length", "www-authenticate"):
                assert fast.headers.get(header) == routed.headers.get(header), (case, header)
    expected = {"ops": 200, "dev": 200, "auditor": 200, "sira": 403}[role]
    with client_for(env.live, token) as client:
        assert client.get(_paths(world)["own"]).status_code == expected


def test_the_fast_path_answers_the_runbook_poll(env: Env, world: World) -> None:
    with client_for(env.live, env.tokens.ops) as client:
        body = client.get(_paths(world)["own"]).json()
    assert body["run"]["status"] == "success"
    assert body["run"]["metrics"]["success_rate"] == 0.92
    assert body["simulation"]["id"] == str(world.sims["own"])
    assert [e["action"] for e in body["journal"]][:1] == ["queued"]
    assert body["journal"] == sorted(body["journal"], key=lambda e: e["id"])


def test_what_the_fast_path_does_not_take_the_route_answers(env: Env, world: World) -> None:
    own = _paths(world)["own"]
    with client_for(env.live, env.tokens.ops) as client:
        unknown = client.get(own + "?verbose=1")
        assert unknown.status_code == 422 and unknown.json()["error"]["field"] == "verbose"
        not_uuid = client.get(f"/api/simulator/{world.sims['own']}/runs/42")
        assert not_uuid.status_code == 422 and not_uuid.json()["error"]["field"] == "run_id"
        assert client.post(own).status_code == 405
    anonymous = httpx.get(env.live.url + own, timeout=10)
    assert anonymous.status_code == 401
    assert anonymous.headers["WWW-Authenticate"].startswith("Bearer")


def test_a_run_without_journal_entries(env: Env, world: World) -> None:
    run_id = world.new_run("own")
    with env.service.db.transaction() as conn:
        # As if the journal had been archived away: the run still answers, with no entries.
        conn.execute("ALTER TABLE sdk_simulation_journal DISABLE TRIGGER USER")
        try:
            conn.execute("DELETE FROM sdk_simulation_journal WHERE run_id = %s", (run_id,))
        finally:
            conn.execute("ALTER TABLE sdk_simulation_journal ENABLE TRIGGER USER")
    detail = env.service.get_run(LAUNCHER, run_id)
    assert detail.journal == [] and detail.run.id == run_id
    with client_for(env.live, env.tokens.ops) as client:
        body = client.get(f"/api/simulator/runs/{run_id}").json()
    assert body["journal"] == [] and body["run"]["id"] == str(run_id)


# -- round trips --------------------------------------------------------------------------------


class Traced:
    """libpq's trace of the pool's connections opened meanwhile, one file per connection."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.conns: list[psycopg.Connection[Any]] = []
        self._files: list[IO[str]] = []

    def start(self, conn: psycopg.Connection[Any]) -> None:
        trace = (self.folder / f"{id(conn)}.trace").open("a")  # open until the test ends
        self._files.append(trace)
        conn.pgconn.trace(trace.fileno())
        conn.pgconn.set_trace_flags(psycopg.pq.Trace.SUPPRESS_TIMESTAMPS)

    def messages(self) -> list[str]:
        """Statements sent since the last call: simple Query or extended-protocol Execute."""
        found: list[str] = []
        for conn in self.conns:
            conn.pgconn.untrace()  # flushes
            path = self.folder / f"{id(conn)}.trace"
            for line in path.read_text(errors="replace").splitlines():
                parts = line.split("\t")
                if len(parts) > 2 and parts[0] == "F" and parts[2] in ("Query", "Execute"):
                    found.append(" ".join(parts[2:]))
            path.write_text("")
            self.start(conn)
        return found

    def close(self) -> None:
        for trace in self._files:
            trace.close()


@pytest.fixture
def traced(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Traced]:
    traced = Traced(tmp_path)
    real = psycopg.Connection.connect

    def connect(*args: Any, **kwargs: Any) -> psycopg.Connection[Any]:
        conn = real(*args, **kwargs)
        if not kwargs.get("autocommit"):  # the pool's, not the dedicated ones
            traced.start(conn)
            traced.conns.append(conn)
        return conn

    monkeypatch.setattr(psycopg.Connection, "connect", connect)
    yield traced
    traced.close()


@pytest.fixture
def traced_reader(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Traced]:
    """The run reader's connections (runreader: psycopg's asynchronous ones)."""
    traced = Traced(tmp_path / "reader")
    traced.folder.mkdir()
    real = psycopg.AsyncConnection.connect

    async def connect(*args: Any, **kwargs: Any) -> psycopg.AsyncConnection[Any]:
        conn = await real(*args, **kwargs)
        traced.start(conn)  # type: ignore[arg-type]
        traced.conns.append(conn)  # type: ignore[arg-type]
        return conn

    monkeypatch.setattr(psycopg.AsyncConnection, "connect", connect)
    yield traced
    traced.close()


@pytest.fixture
def fresh(settings: Settings) -> Iterator[tuple[str, UUID, UUID]]:
    with SimulatorService(settings) as service:
        token = service.create_token(ADMIN, Role.OPS, name="poller").token
        sim = service.create_simulation(
            LAUNCHER,
            {"name": "poll", "sdk_language": "python",
             "scenario": get_template("signature_mismatch").scenario},
        )  # fmt: skip
        run = service.launch_run(LAUNCHER, sim.id, 1).run
        finish(service, run.id)
        yield token, sim.id, run.id


def test_polling_a_run_costs_one_statement_on_the_reader(
    settings: Settings, fresh: tuple[str, UUID, UUID], traced: Traced, traced_reader: Traced
) -> None:
    token, sim_id, run_id = fresh
    service = SimulatorService(settings)
    live = LiveServer(create_app(settings, service=service)).start()
    try:
        with client_for(live, token) as client:
            path = f"/api/simulator/{sim_id}/runs/{run_id}"
            assert client.get(path).status_code == 200  # verifies the token: one statement
            traced.messages(), traced_reader.messages()
            for _ in range(3):
                assert client.get(path).status_code == 200
            pooled, read = traced.messages(), traced_reader.messages()
    finally:
        live.stop()
        service.close()
    # One statement per request, on the reader's connections (no thread, no checkout): no
    # BEGIN/COMMIT, no token lookup (the revocation generation is read on the gate's own
    # connection, not traced here), nothing on the pool.
    assert pooled == [], pooled
    assert len(read) == 3, read
    assert not any("sdk_simulator_tokens" in m or "BEGIN" in m for m in read), read


def test_the_reader_answers_as_the_service(env: Env, world: World) -> None:
    """The reader (its own connections, the same statement and row reading) answers as
    ``SimulatorService.get_run``: same detail, same error."""
    tokens_by_role = {role: env.tokens.for_role(TOKEN_OF[role]) for role in ROLES}
    principals = {role: env.service.authenticate(t) for role, t in tokens_by_role.items()}
    run_ids = [world.runs["own"], world.runs["other"], world.new_run("own"), uuid4()]
    reader = RunReader(env.service.db, size=2)

    def outcome(fn: Any) -> Any:
        try:
            return fn()
        except SimError as exc:
            return (type(exc), str(exc))

    async def compare() -> list[str]:
        diffs = []
        for (role, who), run_id in itertools.product(principals.items(), run_ids):
            expected = outcome(lambda who=who, run_id=run_id: env.service.get_run(who, run_id))
            read: Any
            try:
                read = await reader.get_run(who, run_id)
            except SimError as exc:
                read = (type(exc), str(exc))
            if read != expected:
                diffs.append(f"{role} {run_id}: {read!r} != {expected!r}")
        return diffs

    try:
        assert asyncio.run(compare()) == []
    finally:
        reader.close()


def test_the_reader_steps_aside_when_its_connections_fail(
    settings: Settings, fresh: tuple[str, UUID, UUID], traced_reader: Traced
) -> None:
    token, sim_id, run_id = fresh
    service = SimulatorService(settings)
    app = create_app(settings, service=service)
    live = LiveServer(app).start()
    path = f"/api/simulator/{sim_id}/runs/{run_id}"
    try:
        with client_for(live, token) as client:
            first = client.get(path)
            assert first.status_code == 200
            pids = [conn.info.backend_pid for conn in traced_reader.conns]
            assert settings.database_url is not None
            with psycopg.connect(settings.database_url, autocommit=True) as admin:
                for pid in pids:
                    admin.execute("SELECT pg_terminate_backend(%s, 10000)", (pid,))
            # The reader's connection is gone: this request is answered the plain way.
            again = client.get(path)
            assert again.status_code == 200 and again.json() == first.json()
            reader = app.state.api.reader
            statements = reader.statements
            assert client.get(path).status_code == 200  # within RETRY_SECONDS: plain way
            assert reader.statements == statements
            reader._failed_at = time.monotonic() - runreader.RETRY_SECONDS
            assert client.get(path).json() == first.json()  # the reader again, reconnected
            assert reader.statements == statements + 1
    finally:
        live.stop()
        service.close()


def test_a_pooled_connection_the_server_dropped_is_replaced_at_checkout(
    settings: Settings, fresh: tuple[str, UUID, UUID]
) -> None:
    token, _, run_id = fresh
    with SimulatorService(settings) as service:
        principal = service.authenticate(token)
        service.get_run(principal, run_id)
        with service.db.transaction() as conn:
            pid = conn.info.backend_pid
        assert settings.database_url is not None
        with psycopg.connect(settings.database_url, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s, 10000)", (pid,))
        # The idle connection is readable (an error, then end of file): replaced, not used.
        assert service.get_run(principal, run_id).run.id == run_id


def test_a_served_app_freezes_what_it_holds_once_started(settings: Settings) -> None:
    service = SimulatorService(settings)
    gc.unfreeze()
    live = LiveServer(create_app(settings, service=service, freeze_gc=True)).start()
    try:
        assert gc.get_freeze_count() > 0
    finally:
        live.stop()
        service.close()
        gc.unfreeze()  # this test process serves more than one app
