"""``Simulator``: the operations the CLI and the dashboard call, whatever answers them.

``SimulatorService`` answers them on this machine's database; ``RemoteService`` forwards them
to ``simcore serve`` over HTTP. Both satisfy this Protocol (mypy checks it, see
tests/api/test_facade.py), so a screen or a command written against ``Simulator`` works the
same in local and in API mode. The principal is passed in both modes: the local service
enforces its role and scope, the remote one is told who it is by the API (the token decides,
the argument is for symmetry and is not trusted).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol
from uuid import UUID

from simcore.approvals import Approval
from simcore.auth import Principal
from simcore.journal import Verification
from simcore.model import (
    ApprovalStatus,
    Patch,
    Run,
    RunStatus,
    Simulation,
    SimulationCreate,
)
from simcore.service import LaunchResult, RunDetail

if TYPE_CHECKING:  # annotations only: the rollout engine loads what a scrape needs
    from simcore.checklist import Checklist
    from simcore.rollout import CanaryReport, Evaluation, Observation, TransitionResult


class Simulator(Protocol):
    def close(self) -> None: ...

    # simulations
    def create_simulation(
        self, principal: Principal, data: SimulationCreate | dict[str, Any]
    ) -> Simulation: ...

    def get_simulation(self, principal: Principal, simulation_id: str | UUID) -> Simulation: ...

    def list_simulations(self, principal: Principal, limit: int = 100) -> list[Simulation]: ...

    # runs
    def launch_run(
        self,
        principal: Principal,
        simulation_id: str | UUID,
        seed: int | None,
        idempotency_key: str | None = None,
    ) -> LaunchResult:
        """Queue a run. ``seed`` None draws one; with a key used before, it matches that
        run's seed (a retry typed without a seed finds its run)."""
        ...

    def rerun(self, principal: Principal, run_id: str | UUID) -> LaunchResult: ...

    def get_run(self, principal: Principal, run_id: str | UUID) -> RunDetail: ...

    def list_runs(
        self,
        principal: Principal,
        *,
        status: RunStatus | None = None,
        simulation_id: str | UUID | None = None,
        limit: int = 50,
    ) -> list[Run]: ...

    def cancel_run(self, principal: Principal, run_id: str | UUID) -> Run: ...

    def read_log(
        self, principal: Principal, run_id: str | UUID, after_seq: int = -1, limit: int = 5000
    ) -> list[tuple[int, str]]: ...

    # patches
    def list_patches(
        self, principal: Principal, *, language: str | None = None, include_inactive: bool = False
    ) -> list[Patch]: ...

    def get_patch(self, principal: Principal, ref: str | UUID) -> Patch: ...

    def add_patch(self, principal: Principal, data: dict[str, Any]) -> Patch: ...

    # approvals
    def list_approvals(
        self, principal: Principal, *, status: ApprovalStatus | None = None, limit: int = 100
    ) -> list[Approval]: ...

    def approve_patch(
        self, principal: Principal, run_id: str | UUID, notes: str | None
    ) -> Approval: ...

    def reject_patch(
        self, principal: Principal, run_id: str | UUID, notes: str | None
    ) -> Approval: ...

    # journal
    def verify_journal(self, principal: Principal) -> Verification: ...

    # after approval: the staged rollout, its canary, the daily checklist
    def stage_patch(
        self,
        principal: Principal,
        run_id: str | UUID,
        reason: str | None,
        *,
        now: datetime | None = None,
    ) -> TransitionResult: ...

    def promote_patch(
        self,
        principal: Principal,
        run_id: str | UUID,
        reason: str | None,
        *,
        now: datetime | None = None,
    ) -> TransitionResult: ...

    def rollback_patch(
        self,
        principal: Principal,
        run_id: str | UUID,
        reason: str | None,
        *,
        now: datetime | None = None,
    ) -> TransitionResult: ...

    def record_canary_observation(
        self,
        principal: Principal,
        run_id: str | UUID,
        success_rate: float,
        *,
        requests: int | None = None,
        source: str = "api",
        observed_at: datetime | None = None,
        now: datetime | None = None,
    ) -> tuple[Observation, Evaluation]: ...

    def evaluate_canary(
        self,
        principal: Principal,
        run_id: str | UUID,
        *,
        scrape: bool = False,
        apply: bool = False,
        now: datetime | None = None,
    ) -> CanaryReport: ...

    def checklist(self, principal: Principal, *, now: datetime | None = None) -> Checklist: ...
