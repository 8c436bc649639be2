"""``RemoteService``: the ``Simulator`` facade over the HTTP API (remote mode).

Set ``SIMTUI_API_URL`` and ``SIMTUI_TOKEN`` and the CLI and the dashboard talk to
`simcore serve` instead of a database. Results come back as the same types the local service
returns, and HTTP errors as the same ``simcore.errors`` exceptions (with the same field names),
so callers cannot tell the two apart except by what the token allows.

Ids are checked here before they go into a URL: a malformed id is the same ``InvalidInput`` as
in local mode, and nothing a user types can change the path of a request.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit
from uuid import UUID

import httpx
from pydantic import BaseModel, ValidationError

from simcore import __version__, rollout
from simcore.api.schemas import (
    CAMEL_FIELDS,
    PATCH_REF_PATTERN,
    ApprovalList,
    ApprovalOut,
    LogPage,
    PatchList,
    PatchOut,
    RunDetailOut,
    RunList,
    RunOut,
    SimulationList,
    SimulationOut,
    VerificationOut,
    WhoAmI,
)
from simcore.approvals import Approval
from simcore.auth import Principal
from simcore.checklist import Checklist
from simcore.config import Settings
from simcore.errors import (
    ConfigError,
    Conflict,
    DatabaseUnavailable,
    Forbidden,
    InvalidInput,
    NotFound,
    SimError,
)
from simcore.journal import Verification
from simcore.model import (
    ApprovalStatus,
    Patch,
    Role,
    Run,
    RunStatus,
    Simulation,
    SimulationCreate,
)
from simcore.service import LaunchResult, RunDetail
from simcore.tokens import Unauthenticated

M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")

_SNAKE_FIELDS = {camel: snake for snake, camel in CAMEL_FIELDS.items()}
_PATCH_REF = re.compile(PATCH_REF_PATTERN)


class ApiUnavailable(SimError):
    """The API server cannot be reached, or answered something that is not the API."""

    http_status = 503


def _uuid(value: str | UUID, field: str) -> UUID:
    if isinstance(value, UUID):
        return value
    try:
        return UUID(str(value))
    except ValueError:
        raise InvalidInput(field, f"not a valid id: {value!r}") from None


def _reason(field: str, message: str) -> str:
    prefix = f"{field}: "
    return message[len(prefix) :] if message.startswith(prefix) else message


def _server_time(now: datetime | None) -> None:
    """``now`` is a local-mode argument (tests, replays): the server uses its own clock."""
    if now is not None:
        raise InvalidInput("now", "not settable in API mode: the server uses its own clock")


class RemoteService:
    """The same operations as ``SimulatorService``, answered by the API at ``base_url``.

    The ``principal`` argument of each method is accepted for symmetry with the local
    service and not sent: the server knows who the token is (see ``whoami``).
    """

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConfigError(f"SIMTUI_API_URL: expected http(s)://host[:port], not {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(
            base_url=self.base_url,
            headers={"Authorization": f"Bearer {token}", "User-Agent": f"simcore/{__version__}"},
            timeout=timeout,
            transport=transport,
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> RemoteService:
        if not settings.api_url:
            raise ConfigError("SIMTUI_API_URL: not set")
        if not settings.token:
            raise ConfigError(
                "SIMTUI_TOKEN: required with SIMTUI_API_URL (an ops runs `simcore token create`)"
            )
        return cls(settings.api_url, settings.token)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> RemoteService:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- plumbing ---------------------------------------------------------------------------

    def _request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        fields: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        query = {k: v for k, v in (params or {}).items() if v is not None}
        send = dict(headers or {})
        if body is not None:
            send["Content-Type"] = "application/json"
        try:
            response = self._http.request(
                method,
                path,
                content=None if body is None else json.dumps(body, default=str),
                params=query,
                headers=send,
            )
        except httpx.HTTPError as exc:
            raise ApiUnavailable(f"cannot reach the API at {self.base_url}: {exc}") from None
        if response.is_success:
            return response
        raise self._error(response, fields or {})

    def _error(self, response: httpx.Response, fields: Mapping[str, str]) -> SimError:
        status = response.status_code
        try:
            detail = response.json()["error"]
            code, message = str(detail["code"]), str(detail["message"])
            field = detail.get("field")
        except (ValueError, KeyError, TypeError):
            return ApiUnavailable(
                f"{self.base_url} answered HTTP {status} without an API error body "
                f"({response.text[:200]!r})"
            )
        if status == 422 or code in ("invalid_input", "malformed_json"):
            name = str(field or "request")
            local = fields.get(name.split(".")[0], None)
            if local is not None:
                rest = name.split(".", 1)[1:] if "." in name else []
                local_name = ".".join([local, *rest])
            else:
                local_name = name
            return InvalidInput(local_name, _reason(name, message))
        if code == "hook_failed" and isinstance(detail.get("hook"), Mapping):
            # The transition was refused by the hook: the same error, with what it printed.
            try:
                return rollout.HookFailed(message, rollout.HookResult.from_json(detail["hook"]))
            except (ValueError, KeyError, TypeError):
                pass  # an unreadable hook result: still the server's message, below
        errors: dict[int, type[SimError]] = {
            401: Unauthenticated,
            403: Forbidden,
            404: NotFound,
            409: Conflict,
            503: DatabaseUnavailable,
        }
        return errors.get(status, SimError)(message)

    def _get(self, model: type[M], path: str, **kwargs: Any) -> M:
        return self._parse(model, self._request("GET", path, **kwargs))

    def _parse(self, model: type[M], response: httpx.Response) -> M:
        try:
            return model.model_validate_json(response.content)
        except ValidationError as exc:
            raise ApiUnavailable(
                f"{self.base_url} answered {response.request.url.path} with an unexpected "
                f"body: {exc.errors(include_url=False)[0]['msg']}"
            ) from None

    # -- identity ---------------------------------------------------------------------------

    def whoami(self) -> Principal:
        who = self._get(WhoAmI, "/api/simulator/whoami").principal
        return Principal(who.identity, Role(who.role), who.tenant_type, who.tenant_id)

    # -- simulations ------------------------------------------------------------------------

    def create_simulation(
        self, principal: Principal, data: SimulationCreate | dict[str, Any]
    ) -> Simulation:
        if isinstance(data, dict):
            # Validated here as the local service does, so the error names the same field.
            try:
                data = SimulationCreate.model_validate(data)
            except ValidationError as exc:
                raise InvalidInput.from_validation("simulation", exc) from None
        body = {
            "tenantType": data.tenant_type.value,
            "tenantId": data.tenant_id,
            "name": data.name,
            "description": data.description,
            "sdkLanguage": data.sdk_language.value,
            "scenario": data.scenario.to_json(),
            "patchReference": str(data.patch_reference) if data.patch_reference else None,
        }
        response = self._request("POST", "/api/simulator", body=body, fields=_SNAKE_FIELDS)
        return self._parse(SimulationOut, response).simulation

    def get_simulation(self, principal: Principal, simulation_id: str | UUID) -> Simulation:
        sid = _uuid(simulation_id, "simulation_id")
        return self._get(SimulationOut, f"/api/simulator/{sid}").simulation

    def list_simulations(self, principal: Principal, limit: int = 100) -> list[Simulation]:
        return self._get(SimulationList, "/api/simulator", params={"limit": limit}).simulations

    # -- runs -------------------------------------------------------------------------------

    def launch_run(
        self,
        principal: Principal,
        simulation_id: str | UUID,
        seed: int | None,
        idempotency_key: str | None = None,
    ) -> LaunchResult:
        sid = _uuid(simulation_id, "simulation_id")
        response = self._request(
            "POST",
            f"/api/simulator/{sid}/run",
            body={} if seed is None else {"seed": seed},
            headers={"Idempotency-Key": idempotency_key} if idempotency_key is not None else {},
            fields={"Idempotency-Key": "idempotency_key"},
        )
        return LaunchResult(self._parse(RunOut, response).run, response.status_code == 201)

    def rerun(self, principal: Principal, run_id: str | UUID) -> LaunchResult:
        rid = _uuid(run_id, "run_id")
        response = self._request("POST", f"/api/simulator/runs/{rid}/rerun")
        return LaunchResult(self._parse(RunOut, response).run, True)

    def get_run(self, principal: Principal, run_id: str | UUID) -> RunDetail:
        rid = _uuid(run_id, "run_id")
        out = self._get(RunDetailOut, f"/api/simulator/runs/{rid}")
        return RunDetail(out.run, out.simulation, [e.to_entry() for e in out.journal])

    def list_runs(
        self,
        principal: Principal,
        *,
        status: RunStatus | None = None,
        simulation_id: str | UUID | None = None,
        limit: int = 50,
    ) -> list[Run]:
        sid = _uuid(simulation_id, "simulation_id") if simulation_id is not None else None
        params = {"status": status.value if status else None, "simulation_id": sid, "limit": limit}
        return self._get(RunList, "/api/simulator/runs", params=params).runs

    def cancel_run(self, principal: Principal, run_id: str | UUID) -> Run:
        rid = _uuid(run_id, "run_id")
        return self._parse(RunOut, self._request("POST", f"/api/simulator/runs/{rid}/cancel")).run

    def read_log(
        self, principal: Principal, run_id: str | UUID, after_seq: int = -1, limit: int = 5000
    ) -> list[tuple[int, str]]:
        rid = _uuid(run_id, "run_id")
        page = self._get(
            LogPage,
            f"/api/simulator/runs/{rid}/logs",
            params={"after": after_seq, "limit": limit},
            fields={"after": "after_seq"},
        )
        return [(line.seq, line.line) for line in page.lines]

    # -- patches ----------------------------------------------------------------------------

    def list_patches(
        self, principal: Principal, *, language: str | None = None, include_inactive: bool = False
    ) -> list[Patch]:
        params = {"language": language, "include_inactive": str(include_inactive).lower()}
        return self._get(PatchList, "/api/simulator/patches", params=params).patches

    def get_patch(self, principal: Principal, ref: str | UUID) -> Patch:
        text = str(ref)
        if not _PATCH_REF.match(text):
            # No such id or slug can exist; answered as the local registry would.
            raise NotFound(f"patch {ref} not found in the registry")
        return self._get(PatchOut, f"/api/simulator/patches/{quote(text, safe='')}").patch

    def add_patch(self, principal: Principal, data: dict[str, Any]) -> Patch:
        fields = {name: f"patch.{name}" for name in data}
        response = self._request("POST", "/api/simulator/patches", body=data, fields=fields)
        return self._parse(PatchOut, response).patch

    # -- approvals --------------------------------------------------------------------------

    def list_approvals(
        self, principal: Principal, *, status: ApprovalStatus | None = None, limit: int = 100
    ) -> list[Approval]:
        params = {"status": status.value if status else None, "limit": limit}
        return self._get(ApprovalList, "/api/simulator/approvals", params=params).approvals

    def _decide(self, run_id: str | UUID, action: str, notes: str | None) -> Approval:
        rid = _uuid(run_id, "run_id")
        response = self._request(
            "POST", f"/api/simulator/runs/{rid}/{action}", body={"approval_notes": notes}
        )
        return self._parse(ApprovalOut, response).approval

    def approve_patch(
        self, principal: Principal, run_id: str | UUID, notes: str | None
    ) -> Approval:
        return self._decide(run_id, "approve-patch", notes)

    def reject_patch(self, principal: Principal, run_id: str | UUID, notes: str | None) -> Approval:
        return self._decide(run_id, "reject-patch", notes)

    # -- journal ----------------------------------------------------------------------------

    def verify_journal(self, principal: Principal) -> Verification:
        out = self._get(VerificationOut, "/api/simulator/journal/verify")
        return Verification(out.ok, out.checked, out.first_break, out.reason)

    # -- after approval: staged rollout, canary, daily checklist ----------------------------

    def _transition(
        self, run_id: str | UUID, action: str, reason: str | None, now: datetime | None
    ) -> rollout.TransitionResult:
        _server_time(now)
        rid = _uuid(run_id, "run_id")
        # Checked here as the engine does, so a blank reason is the same InvalidInput.
        why = rollout._reason(reason)
        response = self._request(
            "POST", f"/api/simulator/runs/{rid}/{action}", body={"reason": why}
        )
        return self._decode(rollout.TransitionResult.from_json, response)

    def stage_patch(
        self,
        principal: Principal,
        run_id: str | UUID,
        reason: str | None,
        *,
        now: datetime | None = None,
    ) -> rollout.TransitionResult:
        return self._transition(run_id, "stage", reason, now)

    def promote_patch(
        self,
        principal: Principal,
        run_id: str | UUID,
        reason: str | None,
        *,
        now: datetime | None = None,
    ) -> rollout.TransitionResult:
        return self._transition(run_id, "promote", reason, now)

    def rollback_patch(
        self,
        principal: Principal,
        run_id: str | UUID,
        reason: str | None,
        *,
        now: datetime | None = None,
    ) -> rollout.TransitionResult:
        return self._transition(run_id, "rollback", reason, now)

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
    ) -> tuple[rollout.Observation, rollout.Evaluation]:
        """Recorded by the server, which stamps it and names its source ``api``."""
        _server_time(now)
        if observed_at is not None:
            raise InvalidInput("observed_at", "not available in API mode: the server stamps "
                               "an observation with the time it receives it")  # fmt: skip
        rollout.check_source(source)
        rid = _uuid(run_id, "run_id")
        body: dict[str, Any] = {"success_rate": success_rate}
        if requests is not None:
            body["requests"] = requests
        response = self._request(
            "POST", f"/api/simulator/runs/{rid}/canary/observations", body=body
        )
        report = self._decode(rollout.CanaryReport.from_json, response)
        if report.recorded is None or report.evaluation is None:
            raise ApiUnavailable(
                f"{self.base_url} recorded the observation but did not return it with the "
                "rule's decision (a server older than this client?)"
            )
        return report.recorded, report.evaluation

    def evaluate_canary(
        self,
        principal: Principal,
        run_id: str | UUID,
        *,
        scrape: bool = False,
        apply: bool = False,
        now: datetime | None = None,
    ) -> rollout.CanaryReport:
        """``apply`` carries the decision out on the server; ``scrape`` is local mode only."""
        _server_time(now)
        if scrape:
            raise InvalidInput(
                "scrape",
                "not available in API mode: record observations (POST .../canary/observations) "
                "or scrape with `simcore rollout` on the server",
            )
        rid = _uuid(run_id, "run_id")
        if apply:
            response = self._request("POST", f"/api/simulator/runs/{rid}/canary/apply")
        else:
            response = self._request("GET", f"/api/simulator/runs/{rid}/canary")
        return self._decode(rollout.CanaryReport.from_json, response)

    def checklist(self, principal: Principal, *, now: datetime | None = None) -> Checklist:
        _server_time(now)
        return self._decode(Checklist.from_json, self._request("GET", "/api/simulator/checklist"))

    def _decode(self, build: Callable[[Any], T], response: httpx.Response) -> T:
        try:
            return build(response.json())
        except (ValueError, KeyError, TypeError, AttributeError, ValidationError) as exc:
            raise ApiUnavailable(
                f"{self.base_url} answered {response.request.url.path} with an unexpected "
                f"body: {type(exc).__name__}: {exc}"
            ) from None
