"""The runbook's routes, and the ones the dashboard and the remote client need.

Every decision about who may do what is taken by ``SimulatorService``; a route only turns
HTTP into a service call and the result into JSON. Static paths (``/runs``, ``/patches``...)
are declared before ``/{simulation_id}`` so that they are never read as an id; an id that is
not a UUID is then a 422 naming the parameter.
"""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response, Security
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from simcore.api import streams
from simcore.api.errors import responses
from simcore.api.schemas import (
    CAMEL_FIELDS,
    PATCH_REF_PATTERN,
    ApprovalList,
    ApprovalOut,
    DecisionBody,
    Health,
    JournalEntryOut,
    LogLine,
    LogPage,
    ObservationBody,
    PatchCreateBody,
    PatchList,
    PatchOut,
    PrincipalOut,
    ReasonBody,
    RejectionBody,
    RunBody,
    RunDetailOut,
    RunList,
    RunOut,
    SimulationCreateBody,
    SimulationList,
    SimulationOut,
    VerificationOut,
    WhoAmI,
)
from simcore.api.state import ApiState
from simcore.auth import Principal
from simcore.errors import InvalidInput, NotFound, SimError
from simcore.metrics import CONTENT_TYPE, exposition
from simcore.model import ApprovalStatus, RunStatus, SdkLanguage, SimulationCreate, TenantType
from simcore.service import RunDetail, SimulatorService
from simcore.store import migrate
from simcore.tokens import Unauthenticated

bearer = HTTPBearer(
    auto_error=False,
    scheme_name="token",
    description="An API token from `simcore token create` (shown once, stored hashed).",
)


async def current_state(request: Request) -> ApiState:
    state: ApiState = request.app.state.api
    return state


async def current_principal(
    request: Request,
    _credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)],
) -> Principal:
    # The TokenAuth middleware authenticated the request; this dependency hands its result to
    # the route and declares the bearer scheme in the OpenAPI document.
    principal = getattr(request.state, "principal", None)
    if not isinstance(principal, Principal):
        raise Unauthenticated("missing bearer token")
    return principal


async def current_service(state: Annotated[ApiState, Depends(current_state)]) -> SimulatorService:
    return state.service


Who = Annotated[Principal, Depends(current_principal)]
Service = Annotated[SimulatorService, Depends(current_service)]
State = Annotated[ApiState, Depends(current_state)]
SimulationId = Annotated[UUID, Path(description="A simulation id (UUID).")]
RunId = Annotated[UUID, Path(description="A run id (UUID).")]
Limit = Annotated[int, Query(ge=1, le=1000)]

# Error statuses by kind of operation, for the OpenAPI document.
READ = responses(401, 403, 422, 503)
READ_ONE = responses(401, 403, 404, 422, 503)
WRITE = responses(400, 401, 403, 404, 409, 413, 422, 503)
TRANSITION = responses(400, 401, 403, 404, 409, 413, 422, 502, 503)
"""A rollout step runs the hook: its failure is a 502 that leaves the state as it was."""

_KNOWN_QUERY = "_simcore_query_names"
"""Kept on each route object (each app includes its own copies of the routes)."""


def _query_names(dependant: Dependant) -> set[str]:
    names = {param.alias for param in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _query_names(sub)
    return names


async def no_unknown_query(request: Request) -> None:
    """A query parameter the route does not know is an error, as an unknown body field is:
    ``?statu=failed`` must not quietly list every run."""
    if not request.query_params:
        return
    route = request.scope.get("route")
    if not isinstance(route, APIRoute):
        return
    known: frozenset[str] | None = getattr(route, _KNOWN_QUERY, None)
    if known is None:
        known = frozenset(_query_names(route.dependant))
        setattr(route, _KNOWN_QUERY, known)
    unknown = sorted(set(request.query_params) - known)
    if unknown:
        expected = ", ".join(sorted(known)) or "none"
        raise InvalidInput(unknown[0], f"unknown query parameter (this route takes: {expected})")


public = APIRouter(tags=["operations"], dependencies=[Depends(no_unknown_query)])
router = APIRouter(
    prefix="/api/simulator",
    dependencies=[Depends(current_principal), Depends(no_unknown_query)],
)


def _json(model: BaseModel, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    # Serialised by pydantic in one pass; the route's response_model documents the same shape.
    return Response(
        model.model_dump_json(),
        status_code=status,
        media_type="application/json",
        headers=headers,
    )


def _detail(detail: RunDetail) -> RunDetailOut:
    return RunDetailOut(
        run=detail.run,
        simulation=detail.simulation,
        journal=[JournalEntryOut.of(e) for e in detail.journal],
    )


# -- public: probes and metrics ---------------------------------------------------------------


@public.get("/healthz", response_model=Health, summary="The process is up")
async def healthz() -> Health:
    return Health(status="ok")


@public.get(
    "/readyz",
    response_model=Health,
    summary="The database answers and its schema is current",
    responses=responses(503),
)
def readyz(state: State) -> Response:
    state.ensure_started()
    # Another process may have migrated further, or someone rolled the schema back by hand:
    # read the bookkeeping again rather than trusting this process's start-up.
    migrations = migrate.status(state.service.db)
    pending = [m.migration for m in migrations if not m.applied]
    if pending:
        raise migrate.MigrationError(
            f"migration {pending[0].version:04d}_{pending[0].name} is not applied: "
            "run `simcore db migrate`"
        )
    return _json(Health(status="ready", migrations=len(migrations)))


_METRICS_DOC: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {CONTENT_TYPE.split(";")[0]: {"schema": {"type": "string"}}},
        "description": "Prometheus text exposition format 0.0.4.",
    }
}


def _metrics(state: ApiState) -> Response:
    try:
        state.ensure_started()
    except SimError:
        pass  # the collector reports molam_simulator_database_up 0
    return Response(exposition(state.registry), media_type=CONTENT_TYPE)


@public.get(
    "/api/simulator/metrics",
    response_class=Response,
    responses=_METRICS_DOC,
    summary="Prometheus metrics (no token: aggregates only)",
)
def api_metrics(state: State) -> Response:
    return _metrics(state)


@public.get(
    "/metrics",
    response_class=Response,
    responses=_METRICS_DOC,
    summary="Prometheus metrics (same as /api/simulator/metrics)",
)
def metrics(state: State) -> Response:
    return _metrics(state)


# -- simulations ------------------------------------------------------------------------------


@router.get("", response_model=SimulationList, responses=READ, summary="Simulations")
def list_simulations(who: Who, svc: Service, limit: Limit = 100) -> Response:
    return _json(SimulationList(simulations=svc.list_simulations(who, limit)))


@router.post(
    "",
    status_code=201,
    response_model=SimulationOut,
    responses=WRITE,
    summary="Create a simulation (runbook step 1)",
)
def create_simulation(body: SimulationCreateBody, who: Who, svc: Service) -> Response:
    data = SimulationCreate(
        name=body.name,
        description=body.description,
        # Unsaid, the tenant is the token's own: a dev token scoped to merchant/m-42 creates
        # in merchant/m-42 without repeating it.
        tenant_type=body.tenant_type or who.tenant_type or TenantType.INTERNAL,
        tenant_id=body.tenant_id or who.tenant_id or "default",
        sdk_language=body.sdk_language,
        scenario=body.scenario,
        patch_reference=body.patch_reference,
    )
    try:
        sim = svc.create_simulation(who, data)
    except InvalidInput as exc:
        # Name the field as the client wrote it.
        raise InvalidInput(CAMEL_FIELDS.get(exc.field, exc.field), exc.reason) from None
    return _json(
        SimulationOut(simulation=sim),
        201,
        {"Location": f"/api/simulator/{sim.id}"},
    )


# -- identity ---------------------------------------------------------------------------------


@router.get(
    "/checklist",
    responses=READ,
    summary="The runbook's daily checklist, each item with its figures",
)
def checklist(who: Who, svc: Service) -> Response:
    return _plain(svc.checklist(who).to_json())


@router.get("/whoami", response_model=WhoAmI, responses=READ, summary="The token's principal")
def whoami(who: Who) -> Response:
    return _json(
        WhoAmI(
            principal=PrincipalOut(
                identity=who.identity,
                role=who.role.value,
                tenant_type=who.tenant_type,
                tenant_id=who.tenant_id,
                actor=who.actor,
            )
        )
    )


# -- runs -------------------------------------------------------------------------------------


@router.get("/runs", response_model=RunList, responses=READ, summary="Recent runs")
def list_runs(
    who: Who,
    svc: Service,
    status: RunStatus | None = None,
    simulation_id: UUID | None = None,
    limit: Limit = 50,
) -> Response:
    runs = svc.list_runs(who, status=status, simulation_id=simulation_id, limit=limit)
    return _json(RunList(runs=runs))


# The two run-status routes are the ones polled (the runbook's step 3, the dashboard). Their
# requests are answered by simcore.api.hot before FastAPI's routing, through run_status; these
# declarations document them and answer what hot leaves to them (a query string, an id that is
# not a canonical UUID...), through the same run_status.


async def run_status(
    state: ApiState, who: Principal, run_id: UUID, simulation_id: UUID | None = None
) -> Response:
    """The run, its simulation and its journal; 404 if it is not in ``simulation_id``."""
    detail = await state.get_run(who, run_id)
    if simulation_id is not None and detail.run.simulation_id != simulation_id:
        raise NotFound(f"run {run_id} not found in simulation {simulation_id}")
    return _json(_detail(detail))


@router.get("/runs/{run_id}", response_model=RunDetailOut, responses=READ_ONE, summary="A run")
async def get_run(run_id: RunId, who: Who, state: State) -> Response:
    return await run_status(state, who, run_id)


@router.post(
    "/runs/{run_id}/approve-patch",
    response_model=ApprovalOut,
    responses=WRITE,
    summary="Approve the patch of a successful run (runbook step 4; ops, four eyes)",
)
def approve_patch(
    run_id: RunId, who: Who, svc: Service, body: DecisionBody | None = None
) -> Response:
    notes = body.approval_notes if body else None
    return _json(ApprovalOut(approval=svc.approve_patch(who, run_id, notes)))


@router.post(
    "/runs/{run_id}/reject-patch",
    response_model=ApprovalOut,
    responses=WRITE,
    summary="Reject the patch of a successful run (ops; approval_notes required)",
)
def reject_patch(run_id: RunId, body: RejectionBody, who: Who, svc: Service) -> Response:
    return _json(ApprovalOut(approval=svc.reject_patch(who, run_id, body.approval_notes)))


@router.post(
    "/runs/{run_id}/cancel",
    response_model=RunOut,
    responses=WRITE,
    summary="Cancel a queued run, or ask the worker to kill a running one",
)
def cancel_run(run_id: RunId, who: Who, svc: Service) -> Response:
    return _json(RunOut(run=svc.cancel_run(who, run_id)))


@router.post(
    "/runs/{run_id}/rerun",
    status_code=201,
    response_model=RunOut,
    responses=WRITE,
    summary="Launch the run's simulation again with the same seed",
)
def rerun(run_id: RunId, who: Who, svc: Service) -> Response:
    run = svc.rerun(who, run_id).run
    location = f"/api/simulator/{run.simulation_id}/runs/{run.id}"
    return _json(RunOut(run=run), 201, {"Location": location})


@router.get(
    "/runs/{run_id}/logs",
    response_model=LogPage,
    responses=READ_ONE,
    summary="The run's log lines after a sequence number",
)
def read_log(
    run_id: RunId,
    who: Who,
    svc: Service,
    after: Annotated[int, Query(ge=-1, le=2**31 - 1)] = -1,
    limit: Annotated[int, Query(ge=1, le=5000)] = 1000,
) -> Response:
    lines = svc.read_log(who, run_id, after, limit)
    return _json(
        LogPage(
            lines=[LogLine(seq=seq, line=line) for seq, line in lines],
            next_after=lines[-1][0] if lines else after,
        )
    )


_SSE_DOC: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {"text/event-stream": {"schema": {"type": "string"}}},
        "description": "Server-Sent Events: `log` events (id = sequence number, data = the "
        "line), then one `end` event with the final status.",
    },
    # Errors come before the stream starts, as JSON; said explicitly, since the route's own
    # media type would otherwise be assumed for them.
    **{
        status: {
            "description": entry["description"],
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}},
            **({"headers": entry["headers"]} if "headers" in entry else {}),
        }
        for status, entry in READ_ONE.items()
    },
}


@router.get(
    "/runs/{run_id}/logs/follow",
    response_class=streams.EventStream,
    responses=_SSE_DOC,
    summary="Follow the run's log live until the run ends",
)
async def follow_log(
    run_id: RunId,
    who: Who,
    state: State,
    after: Annotated[int, Query(ge=-1, le=2**31 - 1)] = -1,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID", max_length=20)] = None,
) -> streams.EventStream:
    # A reconnecting EventSource sends the last id it saw; resume after it.
    if last_event_id is not None and last_event_id.strip().isdigit():
        after = max(after, int(last_event_id.strip()))
    # Authorise (403/404) before the 200 and the stream start.
    await run_in_threadpool(state.service.get_run, who, run_id)
    return streams.EventStream(
        streams.follow(state.service, who, run_id, after, state.hub),
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


# -- patches ----------------------------------------------------------------------------------


@router.get("/patches", response_model=PatchList, responses=READ, summary="The patch registry")
def list_patches(
    who: Who,
    svc: Service,
    language: SdkLanguage | None = None,
    include_inactive: bool = False,
) -> Response:
    patches = svc.list_patches(
        who, language=language.value if language else None, include_inactive=include_inactive
    )
    return _json(PatchList(patches=patches))


@router.post(
    "/patches",
    status_code=201,
    response_model=PatchOut,
    responses=WRITE,
    summary="Add a patch to the registry (ops)",
)
def add_patch(body: PatchCreateBody, who: Who, svc: Service) -> Response:
    try:
        patch = svc.add_patch(who, body.model_dump(mode="json"))
    except InvalidInput as exc:
        # The service names fields "patch.slug"; the body calls it "slug".
        raise InvalidInput(exc.field.removeprefix("patch."), exc.reason) from None
    return _json(PatchOut(patch=patch), 201, {"Location": f"/api/simulator/patches/{patch.id}"})


@router.get(
    "/patches/{patch}",
    response_model=PatchOut,
    responses=READ_ONE,
    summary="A patch, by id or slug",
)
def get_patch(
    patch: Annotated[str, Path(pattern=PATCH_REF_PATTERN, description="Patch id or slug.")],
    who: Who,
    svc: Service,
) -> Response:
    return _json(PatchOut(patch=svc.get_patch(who, patch)))


# -- approvals and journal --------------------------------------------------------------------


@router.get("/approvals", response_model=ApprovalList, responses=READ, summary="Patch approvals")
def list_approvals(
    who: Who, svc: Service, status: ApprovalStatus | None = None, limit: Limit = 100
) -> Response:
    return _json(ApprovalList(approvals=svc.list_approvals(who, status=status, limit=limit)))


@router.get(
    "/journal/verify",
    response_model=VerificationOut,
    responses=READ,
    summary="Walk the audit journal's hash chain",
)
def verify_journal(who: Who, svc: Service) -> Response:
    return _json(VerificationOut.of(svc.verify_journal(who)))


# -- one simulation (after the static paths) --------------------------------------------------


@router.get(
    "/{simulation_id}", response_model=SimulationOut, responses=READ_ONE, summary="A simulation"
)
def get_simulation(simulation_id: SimulationId, who: Who, svc: Service) -> Response:
    return _json(SimulationOut(simulation=svc.get_simulation(who, simulation_id)))


@router.post(
    "/{simulation_id}/run",
    status_code=201,
    response_model=RunOut,
    responses={
        200: {"model": RunOut, "description": "This Idempotency-Key launched this run before."},
        **WRITE,
    },
    summary="Launch a run (runbook step 2)",
)
def launch_run(
    simulation_id: SimulationId,
    body: RunBody,
    who: Who,
    svc: Service,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            min_length=1,
            max_length=255,
            # Visible ASCII with inner spaces: what survives every HTTP stack unchanged.
            pattern=r"^[!-~]([ -~]*[!-~])?$",
            description="The same key returns the same run (200) instead of a new one (201).",
        ),
    ] = None,
) -> Response:
    launch = svc.launch_run(who, simulation_id, body.seed, idempotency_key)
    run = launch.run
    location = f"/api/simulator/{run.simulation_id}/runs/{run.id}"
    return _json(RunOut(run=run), 201 if launch.created else 200, {"Location": location})


@router.get(
    "/{simulation_id}/runs",
    response_model=RunList,
    responses=READ_ONE,
    summary="The runs of a simulation",
)
def list_simulation_runs(
    simulation_id: SimulationId,
    who: Who,
    svc: Service,
    status: RunStatus | None = None,
    limit: Limit = 50,
) -> Response:
    svc.get_simulation(who, simulation_id)  # 404 outside the caller's scope
    runs = svc.list_runs(who, status=status, simulation_id=simulation_id, limit=limit)
    return _json(RunList(runs=runs))


@router.get(
    "/{simulation_id}/runs/{run_id}",
    response_model=RunDetailOut,
    responses=READ_ONE,
    summary="Poll a run (runbook step 3): status, metrics, journal",
)
async def get_simulation_run(
    simulation_id: SimulationId, run_id: RunId, who: Who, state: State
) -> Response:
    return await run_status(state, who, run_id, simulation_id)


# -- after approval: staged rollout, canary, daily checklist ------------------------------------


def _plain(data: dict[str, Any], status: int = 200) -> Response:
    import json

    return Response(
        json.dumps(data, default=str), status_code=status, media_type="application/json"
    )


@router.post(
    "/runs/{run_id}/stage",
    responses=TRANSITION,
    summary="Stage an approved patch at the first rollout step (ops)",
)
def stage_patch(run_id: RunId, body: ReasonBody, who: Who, svc: Service) -> Response:
    return _plain(svc.stage_patch(who, run_id, body.reason).to_json())


@router.post(
    "/runs/{run_id}/promote",
    responses=TRANSITION,
    summary="Move a staged patch to its next rollout step, up to deployed (ops)",
)
def promote_patch(run_id: RunId, body: ReasonBody, who: Who, svc: Service) -> Response:
    return _plain(svc.promote_patch(who, run_id, body.reason).to_json())


@router.post(
    "/runs/{run_id}/rollback",
    responses=TRANSITION,
    summary="Roll back a staged or deployed patch (ops)",
)
def rollback_patch(run_id: RunId, body: ReasonBody, who: Who, svc: Service) -> Response:
    return _plain(svc.rollback_patch(who, run_id, body.reason).to_json())


@router.post(
    "/runs/{run_id}/canary/observations",
    responses=WRITE,
    status_code=201,
    summary="Record a production observation of the patch's success rate (ops)",
)
def record_observation(run_id: RunId, body: ObservationBody, who: Who, svc: Service) -> Response:
    observation, _ = svc.record_canary_observation(
        who, run_id, body.success_rate, requests=body.requests
    )
    # ``recorded``: the observation this request added, which the client returns as such.
    report = dataclasses.replace(svc.evaluate_canary(who, run_id), recorded=observation)
    return _plain(report.to_json(), 201)


@router.get(
    "/runs/{run_id}/canary",
    responses=READ_ONE,
    summary="The canary rule's decision (promote, wait, roll back) with its figures",
)
def evaluate_canary(run_id: RunId, who: Who, svc: Service) -> Response:
    return _plain(svc.evaluate_canary(who, run_id).to_json())


@router.post(
    "/runs/{run_id}/canary/apply",
    responses=TRANSITION,
    summary="Evaluate the canary and apply its decision (ops)",
)
def apply_canary(run_id: RunId, who: Who, svc: Service) -> Response:
    return _plain(svc.evaluate_canary(who, run_id, apply=True).to_json())
