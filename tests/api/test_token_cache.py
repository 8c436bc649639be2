"""The API's cache of verified tokens: one small shared read per request, revocation at once.

A revoked token must be refused on the very next request, whoever revoked it: this process,
`simcore token revoke` in another one, SQL by hand on another connection. Every such change
moves migration 0007's revocation generation on in its own transaction, and a cached
verification holds only at the generation it was made at, read after the request arrived.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest

from simcore import tokens
from simcore.api.state import ApiState
from simcore.api.tokengate import TokenGate
from simcore.config import Settings
from simcore.model import Role
from simcore.service import SimulatorService
from simcore.tokens import TokenCache, Unauthenticated
from tests.api.conftest import ADMIN, LiveServer, client_for, wait_ready
from tests.conftest import simcore_bin

WHOAMI = "/api/simulator/whoami"


@pytest.fixture
def verify_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The digests whose token was looked up in the database."""
    calls: list[str] = []
    real = tokens.verify

    def counting(db: Any, digest: str) -> tuple[tokens.TokenInfo, int]:
        calls.append(digest)
        return real(db, digest)

    monkeypatch.setattr(tokens, "verify", counting)
    return calls


def _gate(live: LiveServer) -> TokenGate:
    # TokenAuth is the app's middleware that holds the gate.
    stack = live.server.config.app.user_middleware  # type: ignore[attr-defined]
    gate = next(m.kwargs["gate"] for m in stack if "gate" in m.kwargs)
    assert isinstance(gate, TokenGate)
    return gate


def _sql(settings: Settings, query: str, *params: object) -> list[Any]:
    """As an administrator would in psql: another connection, no simcore code."""
    assert settings.database_url is not None
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        cur = conn.execute(query, params)
        return cur.fetchall() if cur.description else []


def _revoke_by_sql(settings: Settings, token_id: object) -> None:
    _sql(settings, "UPDATE sdk_simulator_tokens SET revoked_at = now() WHERE id = %s", token_id)


# -- the cache itself -------------------------------------------------------------------------


def _info(service: SimulatorService, name: str = "t") -> tuple[str, tokens.TokenInfo]:
    created = service.create_token(ADMIN, Role.OPS, name=name)
    return tokens.hash_token(created.token), created.info


def test_an_entry_holds_at_its_generation_only(service: SimulatorService) -> None:
    cache = TokenCache()
    digest, info = _info(service)
    cache.store(digest, info, 7)
    assert cache.lookup(digest, 7) == info.principal()
    assert cache.lookup(digest, 8) is None  # a revocation since: whichever token it was
    assert len(cache) == 0
    cache.store(digest, info, 7)  # verified before that revocation: not kept
    assert cache.lookup(digest, 8) is None
    cache.store(digest, info, 8)
    assert cache.lookup(digest, 8) == info.principal()


def test_entries_expire_and_are_keyed_by_digest(service: SimulatorService) -> None:
    cache = TokenCache(ttl=0.05, max_entries=2)
    entries = [_info(service, f"t{n}") for n in range(3)]
    for digest, info in entries:
        cache.store(digest, info, 1)
    assert len(cache) == 2 and entries[0][0] not in cache  # the oldest made room
    assert all(len(key) == 64 for key in cache._entries)
    time.sleep(0.1)
    assert cache.lookup(entries[2][0], 1) is None


# -- the gate, in process ---------------------------------------------------------------------


@pytest.fixture
def state(service: SimulatorService) -> Iterator[ApiState]:
    state = ApiState(service)
    state.ensure_started()
    try:
        yield state
    finally:
        state.close()


def test_concurrent_requests_share_the_generation_reads(
    state: ApiState, service: SimulatorService, verify_calls: list[str]
) -> None:
    created = service.create_token(ADMIN, Role.AUDITOR, name="reader")

    async def burst() -> tuple[set[Any], int]:
        gate = TokenGate(state)
        try:
            await gate.principal(created.token)
            principals = await asyncio.gather(*(gate.principal(created.token) for _ in range(50)))
            return set(principals), gate.clock.reads
        finally:
            gate.close()

    principals, reads = asyncio.run(burst())
    assert principals == {created.info.principal()}
    assert len(verify_calls) == 1
    # The 50 arrived together: at most a few reads answer them all (one on the wire, then
    # one for everyone who arrived meanwhile).
    assert reads <= 4


def test_the_gate_refuses_what_the_database_refuses(
    state: ApiState, service: SimulatorService
) -> None:
    created = service.create_token(ADMIN, Role.OPS, name="temp")

    async def check() -> None:
        gate = TokenGate(state)
        try:
            await gate.principal(created.token)
            service.revoke_token(ADMIN, created.info.id)
            with pytest.raises(Unauthenticated, match="revoked"):
                await gate.principal(created.token)
            with pytest.raises(Unauthenticated, match="unknown"):
                await gate.principal("smt_" + "A" * 43)
            with pytest.raises(Unauthenticated, match="malformed"):
                await gate.principal("smt_")
        finally:
            gate.close()

    asyncio.run(check())


# -- over HTTP, revoked from elsewhere ---------------------------------------------------------


def test_a_verified_token_is_not_looked_up_again(
    live: LiveServer, service: SimulatorService, verify_calls: list[str]
) -> None:
    created = service.create_token(ADMIN, Role.AUDITOR, name="reader")
    with client_for(live, created.token) as client:
        for _ in range(5):
            assert client.get(WHOAMI).status_code == 200
    assert len(verify_calls) == 1
    assert _gate(live).clock.reads >= 5  # one read per request arriving alone


def test_a_token_revoked_by_another_process_is_refused_on_the_next_request(
    live: LiveServer, service: SimulatorService, cli_env: dict[str, str]
) -> None:
    created = service.create_token(ADMIN, Role.OPS, name="leaving")
    with client_for(live, created.token) as client:
        for _ in range(3):
            assert client.get(WHOAMI).status_code == 200
        assert tokens.hash_token(created.token) in _gate(live).cache
        done = subprocess.run(
            [simcore_bin(), "token", "revoke", str(created.info.id)],
            env=cli_env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0 and "revoked" in done.stdout, done.stderr
        refused = client.get(WHOAMI)
    assert refused.status_code == 401
    assert "revoked" in refused.json()["error"]["message"]


def test_a_token_revoked_by_sql_on_another_connection_is_refused_on_the_next_request(
    settings: Settings, live: LiveServer, service: SimulatorService
) -> None:
    for n in range(10):
        created = service.create_token(ADMIN, Role.OPS, name=f"leaving-{n}")
        with client_for(live, created.token) as client:
            for _ in range(3):
                assert client.get(WHOAMI).status_code == 200
            _revoke_by_sql(settings, created.info.id)
            refused = client.get(WHOAMI)
        assert refused.status_code == 401, n
        assert "revoked" in refused.json()["error"]["message"]


def test_a_token_deleted_or_rescoped_by_sql_is_checked_again(
    settings: Settings, live: LiveServer, service: SimulatorService
) -> None:
    gone = service.create_token(ADMIN, Role.OPS, name="gone")
    demoted = service.create_token(ADMIN, Role.OPS, name="demoted")
    with client_for(live, gone.token) as a, client_for(live, demoted.token) as b:
        assert a.get(WHOAMI).status_code == 200 and b.get(WHOAMI).status_code == 200
        _sql(settings, "DELETE FROM sdk_simulator_tokens WHERE id = %s", gone.info.id)
        _sql(
            settings, "UPDATE sdk_simulator_tokens SET role = 'auditor' WHERE id = %s",
            demoted.info.id,
        )  # fmt: skip
        assert a.get(WHOAMI).status_code == 401
        assert b.get(WHOAMI).json()["principal"]["role"] == "auditor"


def test_refreshing_last_used_at_keeps_the_cache(
    settings: Settings, live: LiveServer, service: SimulatorService, verify_calls: list[str]
) -> None:
    created = service.create_token(ADMIN, Role.OPS, name="busy")
    with client_for(live, created.token) as client:
        assert client.get(WHOAMI).status_code == 200
        _sql(settings, "UPDATE sdk_simulator_tokens SET last_used_at = now() - interval '1 h'")
        assert client.get(WHOAMI).status_code == 200
    assert len(verify_calls) == 1


def test_without_its_connection_the_gate_verifies_the_plain_way(
    settings: Settings, live: LiveServer, service: SimulatorService, verify_calls: list[str]
) -> None:
    created = service.create_token(ADMIN, Role.OPS, name="temp")
    with client_for(live, created.token) as client:
        assert client.get(WHOAMI).status_code == 200
        gate = _gate(live)
        assert gate.clock._conn is not None
        pid = gate.clock._conn.info.backend_pid
        killed = _sql(settings, "SELECT pg_terminate_backend(%s, 10000)", pid)
        assert killed == [(True,)]
        _revoke_by_sql(settings, created.info.id)
        refused = client.get(WHOAMI)
        assert refused.status_code == 401 and "revoked" in refused.text
        # And it connects again by itself.
        other = service.create_token(ADMIN, Role.AUDITOR, name="after")
        headers = {"Authorization": f"Bearer {other.token}"}
        deadline = time.monotonic() + 10
        while gate.clock._conn is None or gate.clock._conn.closed:
            assert client.get(WHOAMI, headers=headers).status_code == 200
            assert time.monotonic() < deadline
            time.sleep(0.2)
        calls = len(verify_calls)
        for _ in range(3):
            assert client.get(WHOAMI, headers=headers).status_code == 200
        assert len(verify_calls) == calls


def test_last_used_at_is_written_at_most_once_a_minute(service: SimulatorService) -> None:
    created = service.create_token(ADMIN, Role.OPS, name="temp")

    def last_used() -> Any:
        with service.db.transaction() as conn:
            row = conn.execute(
                "SELECT last_used_at FROM sdk_simulator_tokens WHERE id = %s", (created.info.id,)
            ).fetchone()
        assert row is not None
        return row["last_used_at"]

    assert last_used() is None
    service.authenticate(created.token)  # no cache here: each call asks the database
    first = last_used()
    assert first is not None
    service.authenticate(created.token)
    assert last_used() == first


def test_a_revoked_token_is_refused_by_every_process(
    settings: Settings, service: SimulatorService, cli_env: dict[str, str]
) -> None:
    """`simcore serve --processes 2`: each process caches on its own."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = subprocess.Popen(
        [simcore_bin(), "serve", "--port", str(port), "--processes", "2", "--log-level",
         "warning"],
        env=cli_env,
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}"
        wait_ready(server, url, 60)
        created = service.create_token(ADMIN, Role.OPS, name="many")
        headers = {"Authorization": f"Bearer {created.token}"}
        # New connections are spread over both processes: each has it cached.
        for _ in range(20):
            assert httpx.get(url + WHOAMI, headers=headers, timeout=10).status_code == 200
        _revoke_by_sql(settings, created.info.id)
        for _ in range(20):
            assert httpx.get(url + WHOAMI, headers=headers, timeout=10).status_code == 401
    finally:
        server.terminate()
        server.wait(30)
