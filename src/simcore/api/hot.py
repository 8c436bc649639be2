"""The polled route, answered before FastAPI's routing: GET run status.

The runbook's step 3 polls ``GET /api/simulator/{id}/runs/{run_id}`` until the run is done, and
the dashboard polls it too. Most of such a request's CPU went to the framework rather than to
the run: matching the path against every route, solving the dependencies, the exception
middleware. ``HotRoutes`` sits inside ``TokenAuth`` (the request is authenticated already) and
answers ``GET /api/simulator/{uuid}/runs/{uuid}`` and ``GET /api/simulator/runs/{uuid}`` itself,
through ``routes.run_status``, the function their declared routes call, with the errors mapped
by the handlers ``errors.install`` registers: the same status, headers and body.

Anything else goes on to FastAPI, which then answers as it always did: another method, a query
string (``no_unknown_query`` refuses those), an id that is not a canonical UUID (the route's
validation names it), a trailing slash, a root path.
"""

from __future__ import annotations

import re
from uuid import UUID

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from simcore.api import errors, routes
from simcore.api.state import ApiState
from simcore.auth import Principal

_UUID = "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
RUN_STATUS_PATH = re.compile(rf"^/api/simulator/(?:({_UUID})/)?runs/({_UUID})$")


class HotRoutes:
    def __init__(self, app: ASGIApp, state: ApiState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] != "GET"
            or scope.get("query_string")
            or scope.get("root_path")
        ):
            await self.app(scope, receive, send)
            return
        match = RUN_STATUS_PATH.match(scope["path"])
        principal = scope.get("state", {}).get("principal")
        if match is None or not isinstance(principal, Principal):
            await self.app(scope, receive, send)
            return
        simulation_id = UUID(match[1]) if match[1] else None
        try:
            response = await routes.run_status(self.state, principal, UUID(match[2]), simulation_id)
        except Exception as exc:
            handler = errors.handler_for(exc)
            if handler is None:
                raise  # as from a route: the server answers 500 and logs it
            response = await handler(Request(scope, receive), exc)
        await response(scope, receive, send)
