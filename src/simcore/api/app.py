"""The FastAPI application: one ``SimulatorService``, bearer tokens, JSON errors, metrics.

Endpoints are plain ``def`` functions: FastAPI runs them in its threadpool, so the blocking
psycopg calls of the service never hold the event loop. Authentication is an ASGI middleware
in front of the routes, so an anonymous request is answered 401 before its body is even read.
"""

from __future__ import annotations

import gc
import logging
import os
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import psycopg
from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from simcore import __version__
from simcore.api import errors, routes
from simcore.api.hot import HotRoutes
from simcore.api.state import ApiState
from simcore.api.tokengate import TokenGate
from simcore.config import Settings, load_settings
from simcore.errors import SimError
from simcore.service import SimulatorService
from simcore.tokens import Unauthenticated

API_PREFIX = "/api/simulator"
PUBLIC_API_PATHS = frozenset({f"{API_PREFIX}/metrics"})
"""Under the API prefix but open: Prometheus scrapes without a token (aggregates only)."""
MAX_BODY_BYTES = 1024 * 1024
WORKERS_ENV = "SIMCORE_SERVE_WORKERS_IN_PROCESS"
"""How `simcore serve --processes N` hands --workers-in-process to each process it starts."""

_log = logging.getLogger("simcore.api")


def requires_token(path: str) -> bool:
    if path != API_PREFIX and not path.startswith(API_PREFIX + "/"):
        return False
    return path.rstrip("/") not in PUBLIC_API_PATHS


class TokenAuth:
    """Checks ``Authorization: Bearer <token>`` and puts the principal in the request state."""

    def __init__(self, app: ASGIApp, gate: TokenGate) -> None:
        self.app = app
        self.gate = gate

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not requires_token(scope["path"]):
            await self.app(scope, receive, send)
            return
        header = ""
        for name, value in scope["headers"]:
            if name == b"authorization":
                header = value.decode("latin-1")
                break
        scheme, _, token = header.strip().partition(" ")
        try:
            if not header:
                raise Unauthenticated("missing bearer token (Authorization: Bearer smt_...)")
            if scheme.lower() != "bearer" or not token.strip():
                raise Unauthenticated("expected Authorization: Bearer <token>")
            principal = await self.gate.principal(token)
        except SimError as exc:
            await errors.sim_error_response(exc)(scope, receive, send)
            return
        except psycopg.Error as exc:
            _log.warning("authentication: database error: %s", exc)
            response = errors.error_response(
                503, "database_unavailable", "the database is unavailable"
            )
            await response(scope, receive, send)
            return
        scope.setdefault("state", {})["principal"] = principal
        await self.app(scope, receive, send)


class BodyTooLarge(StarletteHTTPException):
    # An HTTPException, so that FastAPI lets it through its body parsing (other errors there
    # become a 400) to the JSON error handler.
    def __init__(self, max_bytes: int) -> None:
        super().__init__(413, f"the body is larger than {max_bytes} bytes")


class BodyLimit:
    """Refuses bodies over ``max_bytes``: at once from Content-Length, else while reading."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit() and int(value) > self.max_bytes:
                too_large = BodyTooLarge(self.max_bytes)
                response = errors.error_response(413, "body_too_large", str(too_large.detail))
                await response(scope, receive, send)
                return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        await self.app(scope, limited, send)


def _start_worker(service: SimulatorService, concurrency: int) -> tuple[Any, threading.Thread]:
    from simcore.executor import make_worker

    worker = make_worker(service.settings, service.db, concurrency=concurrency, grace_seconds=10.0)
    thread = threading.Thread(target=worker.run, name="api-worker", daemon=True)
    thread.start()
    return worker, thread


def create_app(
    settings: Settings,
    *,
    service: SimulatorService | None = None,
    workers_in_process: int = 0,
    freeze_gc: bool = False,
) -> FastAPI:
    """The API over ``service`` (default: a new one on ``settings``, closed with the app).

    ``workers_in_process`` > 0 also executes queued runs in this process (one worker with
    that many slots), for a single-machine setup without a separate `simcore worker`.

    ``freeze_gc`` (for a process that serves this app and nothing else, as `simcore serve`'s):
    once started, what the process holds is moved out of the garbage collector's sight
    (``gc.freeze``). Its full collections then look at what requests made since, not at the
    ~90,000 objects of the framework and the modules: they took ~90 ms each, a stall every few
    seconds under load for every request in flight in the process.
    """
    owns_service = service is None
    svc = service or SimulatorService(settings)
    state = ApiState(svc)
    gate = TokenGate(state)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            await run_in_threadpool(state.ensure_started)
        except (SimError, psycopg.Error) as exc:
            # Serve anyway: /healthz says the process is up, /readyz and the routes say 503
            # until the database answers, and a restart is not needed when it does.
            _log.warning("database not ready at start-up (%s); answering 503 until it is", exc)
        worker = None
        if workers_in_process > 0:
            worker = _start_worker(svc, workers_in_process)
        if freeze_gc:
            gc.collect()
            gc.freeze()
        try:
            yield
        finally:
            if worker is not None:
                worker[0].stop()
                await run_in_threadpool(worker[1].join, 30.0)
            gate.close()
            await run_in_threadpool(state.close)
            if owns_service:
                await run_in_threadpool(svc.close)

    app = FastAPI(
        title="simtui simulator API",
        version=__version__,
        description=(
            "The runbook's HTTP API of the self-healing patch simulator. Authenticate with "
            "`Authorization: Bearer <token>` (tokens come from `simcore token create`); "
            'errors are `{"error": {"code", "message", "field"}}`.'
        ),
        lifespan=lifespan,
        redoc_url=None,
    )
    app.state.api = state
    errors.install(app)
    app.include_router(routes.public)
    app.include_router(routes.router)
    # Innermost of ours: the polled GET run status, answered once authenticated (see hot.py).
    app.add_middleware(HotRoutes, state=state)
    app.add_middleware(TokenAuth, gate=gate)
    # Outermost: an oversized body is refused before anything reads it.
    app.add_middleware(BodyLimit, max_bytes=MAX_BODY_BYTES)
    return app


def create_app_from_env() -> FastAPI:
    """Factory for uvicorn worker processes (`simcore serve --processes N`)."""
    workers = int(os.environ.get(WORKERS_ENV, "0") or 0)
    return create_app(load_settings(), workers_in_process=workers, freeze_gc=True)
