"""RemoteService over a real server answers exactly what SimulatorService answers locally."""

from __future__ import annotations

import json
import socket
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from simcore import queue
from simcore.auth import Principal
from simcore.client import ApiUnavailable, RemoteService
from simcore.errors import Conflict, Forbidden, InvalidInput, NotFound
from simcore.model import ApprovalStatus, Role, RunStatus
from simcore.service import SimulatorService
from simcore.templates import get_template
from simcore.tokens import Unauthenticated
from tests.api.conftest import LiveServer, Tokens, finish_run
from tests.conftest import simcore_bin

ALICE = Principal("alice", Role.OPS)
"""The local twin of the `alice` ops token: the same actor in the journal."""
BOB = Principal("bob", Role.OPS)


@pytest.fixture
def remote(live: LiveServer, tokens: Tokens) -> Iterator[RemoteService]:
    with RemoteService(live.url, tokens.ops) as client:
        yield client


@pytest.fixture
def remote_bob(live: LiveServer, tokens: Tokens) -> Iterator[RemoteService]:
    with RemoteService(live.url, tokens.ops2) as client:
        yield client


def sim_data(**change: Any) -> dict[str, Any]:
    return {
        "name": "remote",
        "sdk_language": "python",
        "scenario": get_template("signature_mismatch").scenario,
        **change,
    }


def test_whoami_is_the_tokens_principal(remote: RemoteService, live: LiveServer) -> None:
    assert remote.whoami() == ALICE


def test_simulations_and_runs_match(remote: RemoteService, service: SimulatorService) -> None:
    patch = service.list_patches(ALICE, language="python")[0]
    made_remotely = remote.create_simulation(ALICE, sim_data(patch_reference=patch.id))
    made_locally = service.create_simulation(ALICE, sim_data(name="local"))
    for sim in (made_remotely, made_locally):
        assert remote.get_simulation(ALICE, sim.id) == service.get_simulation(ALICE, sim.id)
    assert remote.list_simulations(ALICE) == service.list_simulations(ALICE)
    assert remote.list_simulations(ALICE, limit=1) == service.list_simulations(ALICE, limit=1)

    first = remote.launch_run(ALICE, made_remotely.id, 12345, "ops-test-001")
    again = remote.launch_run(ALICE, str(made_remotely.id), 12345, "ops-test-001")
    local_again = service.launch_run(ALICE, made_remotely.id, 12345, "ops-test-001")
    assert first.created and not again.created and not local_again.created
    assert first.run == again.run == local_again.run
    assert first.run.launched_by == "ops:alice"

    queue.append_log(service.db, first.run.id, 0, ["one", "two", "three"])
    assert remote.read_log(ALICE, first.run.id) == service.read_log(ALICE, first.run.id)
    assert remote.read_log(ALICE, first.run.id, 0, 1) == [(1, "two")]
    finish_run(service, first.run.id)

    detail, local = remote.get_run(ALICE, first.run.id), service.get_run(ALICE, first.run.id)
    assert detail == local
    assert [e.action for e in detail.journal] == ["queued", "completed"]

    rerun = remote.rerun(ALICE, first.run.id)
    assert rerun.created and rerun.run.seed == 12345 and rerun.run.id != first.run.id
    cancelled = remote.cancel_run(ALICE, rerun.run.id)
    assert cancelled == service.get_run(ALICE, rerun.run.id).run
    assert cancelled.status is RunStatus.CANCELLED

    for kwargs in (
        {},
        {"status": RunStatus.SUCCESS},
        {"simulation_id": made_remotely.id},
        {"simulation_id": str(made_locally.id), "limit": 3},
    ):
        assert remote.list_runs(ALICE, **kwargs) == service.list_runs(ALICE, **kwargs)


def test_patches_approvals_and_journal_match(
    remote: RemoteService, remote_bob: RemoteService, service: SimulatorService
) -> None:
    for kwargs in ({}, {"language": "node"}, {"include_inactive": True}):
        assert remote.list_patches(ALICE, **kwargs) == service.list_patches(ALICE, **kwargs)
    builtin = service.list_patches(ALICE, language="python")[0]
    assert remote.get_patch(ALICE, builtin.id) == builtin
    assert remote.get_patch(ALICE, str(builtin.slug)) == builtin
    added = remote.add_patch(
        ALICE,
        {
            "sdk_language": "python",
            "error_signature": "signature_mismatch",
            "patch_code": "ctx.retry()\n",
            "slug": "remote-added",
        },
    )
    assert service.get_patch(ALICE, "remote-added") == added

    sim = service.create_simulation(ALICE, sim_data(patch_reference=added.id))
    runs = [remote.launch_run(ALICE, sim.id, seed).run.id for seed in (1, 2)]
    for run_id in runs:
        finish_run(service, run_id)
    assert remote.list_approvals(ALICE) == service.list_approvals(ALICE)
    approved = remote_bob.approve_patch(BOB, runs[0], "looks right")
    rejected = remote_bob.reject_patch(BOB, runs[1], "flaky")
    assert (approved.status, rejected.status) == (ApprovalStatus.APPROVED, ApprovalStatus.REJECTED)
    assert approved.decided_by == "ops:bob"
    for status in (None, ApprovalStatus.APPROVED):
        assert remote.list_approvals(ALICE, status=status) == service.list_approvals(
            ALICE, status=status
        )
    assert remote.verify_journal(ALICE) == service.verify_journal(ALICE)


def _same_error(remote_call: Any, local_call: Any, kind: type[Exception]) -> None:
    with pytest.raises(kind) as from_remote:
        remote_call()
    with pytest.raises(kind) as from_local:
        local_call()
    if isinstance(from_local.value, InvalidInput):
        assert isinstance(from_remote.value, InvalidInput)
        assert from_remote.value.field == from_local.value.field


def test_errors_come_back_as_the_same_exceptions(
    remote: RemoteService, service: SimulatorService, live: LiveServer, tokens: Tokens
) -> None:
    import uuid

    sim = service.create_simulation(ALICE, sim_data())
    unknown = uuid.uuid4()
    cases: list[tuple[str, tuple[Any, ...], type[Exception]]] = [
        ("get_simulation", (unknown,), NotFound),
        ("get_simulation", ("not-a-uuid",), InvalidInput),
        ("get_run", (unknown,), NotFound),
        ("get_run", ("../../metrics",), InvalidInput),
        ("get_patch", ("no-such-patch",), NotFound),
        ("get_patch", ("a/../b",), NotFound),
        ("cancel_run", (unknown,), NotFound),
        ("launch_run", (sim.id, -1), InvalidInput),
        ("create_simulation", (sim_data(name=""),), InvalidInput),
        ("create_simulation", (sim_data(patch_reference=unknown),), InvalidInput),
        ("create_simulation", (sim_data(sdk_language="ruby"),), InvalidInput),
        ("reject_patch", (unknown, None), InvalidInput),
    ]
    for method, args, kind in cases:
        _same_error(
            lambda m=method, a=args: getattr(remote, m)(ALICE, *a),
            lambda m=method, a=args: getattr(service, m)(ALICE, *a),
            kind,
        )
    remote.launch_run(ALICE, sim.id, 1, "key-1")
    _same_error(
        lambda: remote.launch_run(ALICE, sim.id, 2, "key-1"),
        lambda: service.launch_run(ALICE, sim.id, 2, "key-1"),
        Conflict,
    )
    auditor = Principal("audrey", Role.AUDITOR)
    with RemoteService(live.url, tokens.auditor) as as_auditor:
        _same_error(
            lambda: as_auditor.create_simulation(auditor, sim_data()),
            lambda: service.create_simulation(auditor, sim_data()),
            Forbidden,
        )
    with RemoteService(live.url, tokens.revoked) as revoked, pytest.raises(Unauthenticated):
        revoked.list_runs(ALICE)


def test_an_unreachable_api_is_one_clear_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with (
        RemoteService(f"http://127.0.0.1:{port}", "smt_x", timeout=2) as dead,
        pytest.raises(ApiUnavailable, match="cannot reach the API"),
    ):
        dead.list_simulations(ALICE)


def test_the_cli_works_in_remote_mode(
    live: LiveServer, tokens: Tokens, service: SimulatorService, cli_env: dict[str, str]
) -> None:
    sim = service.create_simulation(ALICE, sim_data(name="over http"))
    # No database for the CLI: only the API's address and a token.
    env = {k: v for k, v in cli_env.items() if k != "SIMTUI_DATABASE_URL"}
    env.update(SIMTUI_API_URL=live.url, SIMTUI_TOKEN=tokens.dev_a)
    listed = subprocess.run(
        [simcore_bin(), "sim", "list", "--json"], env=env, capture_output=True, text=True
    )
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout) == []  # dev_a's tenant holds nothing yet
    env["SIMTUI_TOKEN"] = tokens.ops
    shown = subprocess.run(
        [simcore_bin(), "sim", "show", str(sim.id)], env=env, capture_output=True, text=True
    )
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["name"] == "over http"
    env["SIMTUI_TOKEN"] = tokens.auditor
    refused = subprocess.run(
        [simcore_bin(), "sim", "run", str(sim.id), "--seed", "1"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert refused.returncode == 2
    assert refused.stderr.strip() == "simcore: error: role auditor may not launch runs"
