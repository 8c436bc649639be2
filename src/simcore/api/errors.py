"""Every error the API answers is ``{"error": {"code", "message", "field"}}``.

``simcore.errors`` already says what went wrong in words a user can act on; this module only
picks the status and a stable ``code`` for it. Request validation errors are rewritten to name
the field as the client spelled it (``tenantType``, ``scenario.error_frequency``,
``simulation_id``), and a body that is not JSON at all is a 400 saying where it broke.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from psycopg_pool import PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from simcore.api.schemas import (
    CAMEL_FIELDS,
    PATCH_REF_PATTERN,
    SLUG_PATTERN,
    TENANT_ID_PATTERN,
    ErrorBody,
)
from simcore.errors import (
    ConfigError,
    Conflict,
    DatabaseUnavailable,
    Forbidden,
    InvalidInput,
    NotFound,
    SimError,
)
from simcore.rollout import HookFailed
from simcore.store.migrate import MigrationError
from simcore.tokens import Unauthenticated

_log = logging.getLogger("simcore.api")

BEARER_CHALLENGE = 'Bearer realm="simtui"'

PATTERN_WORDS = {
    SLUG_PATTERN: "1 to 80 of a-z 0-9 . _ - (starting with a letter or a digit)",
    TENANT_ID_PATTERN: "letters, digits and . _ : - (starting with a letter or a digit)",
    PATCH_REF_PATTERN: "a patch id or slug",
}
"""Patterns people should not have to read as regular expressions."""

_CODES: tuple[tuple[type[SimError], str, int], ...] = (
    (HookFailed, "hook_failed", 502),
    (InvalidInput, "invalid_input", 422),
    (NotFound, "not_found", 404),
    (Conflict, "conflict", 409),
    (Forbidden, "forbidden", 403),
    (Unauthenticated, "unauthenticated", 401),
    (DatabaseUnavailable, "database_unavailable", 503),
    # A schema the server cannot bring up to date, or a bad server configuration: the
    # service is unavailable, and the request was not at fault.
    (MigrationError, "not_ready", 503),
    (ConfigError, "server_misconfigured", 503),
)

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "body_too_large",
    415: "unsupported_media_type",
}

DESCRIPTIONS = {
    400: "The body is not valid JSON.",
    401: "No token, an unknown token, or a revoked token (WWW-Authenticate: Bearer).",
    403: "The token's role may not do this.",
    404: "No such resource in the token's tenant scope.",
    409: "The request conflicts with the resource's state (or reuses an Idempotency-Key).",
    413: "The body is larger than 1 MiB.",
    422: "A field or parameter is invalid; `field` names it.",
    502: "The rollout hook failed (`hook` holds its result); the state did not change.",
    503: "The database is unavailable or the schema is not current.",
}


def error_body(code: str, message: str, field: str | None = None, **extra: Any) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "field": field, **extra}}


def error_response(
    status: int,
    code: str,
    message: str,
    field: str | None = None,
    headers: Mapping[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body = error_body(code, message, field, **extra)
    return JSONResponse(body, status_code=status, headers=headers)


def sim_error_response(exc: SimError) -> JSONResponse:
    code, status = next(
        ((c, s) for cls, c, s in _CODES if isinstance(exc, cls)), ("error", exc.http_status)
    )
    field = exc.field if isinstance(exc, InvalidInput) else None
    headers = {"WWW-Authenticate": BEARER_CHALLENGE} if status == 401 else None
    if isinstance(exc, HookFailed):
        return error_response(status, code, exc.message, hook=exc.hook.to_json())
    return error_response(status, code, exc.message, field, headers)


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the error statuses an operation can answer."""
    out: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        entry: dict[str, Any] = {"model": ErrorBody, "description": DESCRIPTIONS[status]}
        if status == 401:
            entry["headers"] = {
                "WWW-Authenticate": {"schema": {"type": "string"}, "description": "Bearer"}
            }
        out[status] = entry
    return out


# -- request validation ----------------------------------------------------------------------


def _field(loc: Sequence[int | str]) -> str:
    if not loc:
        return "body"
    where, rest = str(loc[0]), [str(p) for p in loc[1:]]
    if where == "body":
        return ".".join(rest) or "body"
    return ".".join(rest) or where


def _reason(err: Mapping[str, Any]) -> str:
    kind = err.get("type", "")
    loc = err.get("loc", ())
    if kind == "extra_forbidden":
        name = str(loc[-1]) if loc else ""
        hint = CAMEL_FIELDS.get(name)
        return f"unknown field (did you mean {hint!r}?)" if hint else "unknown field"
    if kind == "missing":
        if tuple(loc) == ("body",):
            return "required: send a JSON object with Content-Type: application/json"
        return "required"
    if kind in ("uuid_parsing", "uuid_type"):
        return f"not a valid UUID: {err.get('input')!r}"
    if tuple(loc) == ("body",) and kind in ("model_attributes_type", "dict_type", "model_type"):
        return "the body must be a JSON object, sent with Content-Type: application/json"
    if kind == "string_pattern_mismatch":
        pattern = (err.get("ctx") or {}).get("pattern")
        if pattern in PATTERN_WORDS:
            return PATTERN_WORDS[pattern]
    return str(err.get("msg", "invalid"))


def validation_response(exc: RequestValidationError) -> JSONResponse:
    errors = list(exc.errors())
    if not errors:
        return error_response(422, "invalid_input", "invalid request")
    first = errors[0]
    if first.get("type") == "json_invalid":
        loc = first.get("loc", ())
        where = f" at character {loc[1]}" if len(loc) > 1 else ""
        detail = (first.get("ctx") or {}).get("error", "JSON decode error")
        return error_response(
            400, "malformed_json", f"the body is not valid JSON: {detail}{where}", "body"
        )
    parts = [(_field(e.get("loc", ())), _reason(e)) for e in errors]
    field, reason = parts[0]
    message = f"{field}: {reason}"
    if len(parts) > 1:
        message += "; " + "; ".join(f"{f}: {r}" for f, r in parts[1:])
    return error_response(422, "invalid_input", message, field)


# -- registration ----------------------------------------------------------------------------


def _allowed_methods(request: Request) -> list[str]:
    methods: set[str] = set()
    for route in request.app.routes:
        match, _ = route.matches(request.scope)
        if match is not Match.NONE:
            methods |= set(getattr(route, "methods", None) or ())
    return sorted(methods)


async def on_sim_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, SimError)
    return sim_error_response(exc)


async def on_validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return validation_response(exc)


async def on_http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    status = exc.status_code
    code = _HTTP_CODES.get(status, "error")
    if status == 404:
        message = f"no route {request.method} {request.url.path}"
    elif status == 405:
        message = f"{request.method} is not allowed on {request.url.path}"
    else:
        message = str(exc.detail)
    headers = dict(exc.headers or {})
    if status == 405:
        # Starlette names the methods of the first route matching the path only; a path
        # such as /api/simulator has one route per method, and Allow must list them all.
        headers["Allow"] = ", ".join(_allowed_methods(request))
    return error_response(status, code, message, headers=headers)


async def on_database(request: Request, exc: Exception) -> JSONResponse:
    # The pool could not give a connection, or the server went away mid-request.
    _log.warning("database error on %s %s: %s", request.method, request.url.path, exc)
    return error_response(503, "database_unavailable", "the database is unavailable")


async def on_data_error(request: Request, exc: Exception) -> JSONResponse:
    # A value the validation let through but PostgreSQL refused. The request is at fault
    # (never a 500), and the gap in validation is logged to be closed.
    _log.warning("database refused a value on %s: %s", request.url.path, exc)
    diag = getattr(exc, "diag", None)
    constraint = getattr(diag, "constraint_name", None)
    what = f" (constraint {constraint})" if constraint else ""
    if isinstance(exc, psycopg.errors.UniqueViolation):
        return error_response(409, "conflict", f"already exists{what}")
    return error_response(422, "invalid_input", f"a value was refused by the database{what}")


async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    _log.exception("internal error on %s %s", request.method, request.url.path)
    return error_response(500, "internal", "internal error; it was logged")


Handler = Callable[[Request, Exception], Awaitable[JSONResponse]]

HANDLERS: dict[type[Exception], Handler] = {
    SimError: on_sim_error,
    RequestValidationError: on_validation,
    StarletteHTTPException: on_http,
    PoolTimeout: on_database,
    psycopg.OperationalError: on_database,
    psycopg.DataError: on_data_error,
    psycopg.IntegrityError: on_data_error,
}
"""The handlers of the errors a request may cause (``Exception`` aside: see ``install``)."""


def handler_for(exc: Exception) -> Handler | None:
    """The handler ``install`` gives ``exc``, found as Starlette finds it (by class, most
    specific first); None for the unexpected, which the server answers 500 and logs."""
    for cls in type(exc).__mro__:
        if cls in HANDLERS:
            return HANDLERS[cls]
    return None


def install(app: FastAPI) -> None:
    for exc_class, handler in HANDLERS.items():
        app.add_exception_handler(exc_class, handler)
    app.add_exception_handler(Exception, on_unexpected)
