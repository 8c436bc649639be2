"""API tokens: shown once, stored hashed, scoped, revocable; `simcore token` and `serve`."""

from __future__ import annotations

import hashlib
import json
import signal
import socket
import subprocess

import httpx
import pytest

from simcore.auth import Principal
from simcore.errors import Forbidden, InvalidInput
from simcore.model import Role, TenantType
from simcore.service import SimulatorService
from simcore.tokens import Unauthenticated
from tests.api.conftest import wait_ready
from tests.conftest import simcore_bin

ADMIN = Principal("root", Role.OPS)


def test_a_token_is_shown_once_and_stored_hashed(service: SimulatorService) -> None:
    created = service.create_token(
        ADMIN, "dev", tenant_type="merchant", tenant_id="m-42", name="Dana"
    )
    assert created.token.startswith("smt_") and len(created.token) >= 40
    assert created.info.prefix == created.token[:12]
    with service.db.transaction() as conn:
        row = conn.execute("SELECT * FROM sdk_simulator_tokens").fetchone()
    assert row is not None
    assert created.token not in json.dumps(row, default=str)
    assert row["token_hash"] == hashlib.sha256(created.token.encode()).hexdigest()
    assert service.authenticate(created.token) == Principal(
        "Dana", Role.DEV, TenantType.MERCHANT, "m-42"
    )
    assert service.list_tokens(ADMIN)[0].last_used_at is not None


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"role": "dev"}, "tenant"),
        ({"role": "dev", "tenant_type": "merchant"}, "tenant"),
        ({"role": "ops", "tenant_id": "m-1"}, "tenant_type"),
        ({"role": "root"}, "role"),
        ({"role": "ops", "tenant_type": "planet"}, "tenant_type"),
        ({"role": "auditor", "tenant_type": "agent", "tenant_id": "a b"}, "tenant_id"),
        ({"role": "ops", "name": "x" * 201}, "name"),
    ],
)
def test_a_bad_token_request_names_the_problem(
    service: SimulatorService, kwargs: dict[str, str], field: str
) -> None:
    role = kwargs.pop("role")
    with pytest.raises(InvalidInput) as caught:
        service.create_token(ADMIN, role, **kwargs)
    assert caught.value.field == field


def test_only_ops_manage_tokens(service: SimulatorService) -> None:
    for role in (Role.DEV, Role.AUDITOR, Role.SIRA):
        who = Principal("x", role, TenantType.MERCHANT, "m")
        with pytest.raises(Forbidden):
            service.create_token(who, "ops")
        with pytest.raises(Forbidden):
            service.list_tokens(who)


@pytest.mark.parametrize("token", ["", "smt_", "Bearer smt_abc", "x" * 50, "smt_" + "é" * 40])
def test_what_cannot_be_a_token_is_refused(service: SimulatorService, token: str) -> None:
    with pytest.raises(Unauthenticated, match="malformed"):
        service.authenticate(token)


def test_revoked_and_unknown_tokens_are_refused(service: SimulatorService) -> None:
    created = service.create_token(ADMIN, "auditor", name="temp")
    info, changed = service.revoke_token(ADMIN, created.info.prefix + "…")
    assert changed and info.revoked
    assert service.revoke_token(ADMIN, created.info.id)[1] is False
    with pytest.raises(Unauthenticated, match="revoked"):
        service.authenticate(created.token)
    with pytest.raises(Unauthenticated, match="unknown"):
        service.authenticate("smt_" + "A" * 43)


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [simcore_bin(), *args], env=env, capture_output=True, text=True, timeout=60
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_token_commands_and_serve(cli_env: dict[str, str]) -> None:
    refused = _cli(cli_env, "token", "create", "--role", "dev")
    assert refused.returncode == 2
    assert "dev token must be scoped to one tenant" in refused.stderr

    made = _cli(cli_env, "token", "create", "--role", "ops", "--name", "alice")
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip()
    assert token.startswith("smt_") and "\n" not in token
    assert "only time the token is shown" in made.stderr

    listed = _cli(cli_env, "token", "list")
    assert listed.returncode == 0 and token[:12] in listed.stdout
    assert token not in listed.stdout and "active" in listed.stdout

    port = _free_port()
    server = subprocess.Popen(
        [simcore_bin(), "serve", "--port", str(port), "--log-level", "info"],
        env=cli_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_ready(server, url, 30)
        me = httpx.get(f"{url}/api/simulator/whoami", headers={"Authorization": f"Bearer {token}"})
        assert me.json()["principal"]["actor"] == "ops:alice"
        token_id = json.loads(_cli(cli_env, "token", "list", "--json").stdout)[0]["id"]
        revoked = _cli(cli_env, "token", "revoke", token_id)
        assert revoked.returncode == 0 and "revoked" in revoked.stdout
        again = httpx.get(
            f"{url}/api/simulator/whoami", headers={"Authorization": f"Bearer {token}"}
        )
        assert again.status_code == 401
    finally:
        server.send_signal(signal.SIGTERM)
        _, err = server.communicate(timeout=30)
    # uvicorn shuts down gracefully, then ends by the signal it received (as -15).
    assert server.returncode in (0, -signal.SIGTERM), err
    assert "Application shutdown complete" in err
