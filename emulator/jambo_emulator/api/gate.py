"""The per-request gate of every ``/api/v2`` route: auth, rate limits, faults, operation progress.

It runs after routing (so the spec's route template is known) and before FastAPI parses path
parameters and bodies (so a bad key answers 401 before any 400).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import APIRouter, Request
from fastapi.routing import APIRoute
from starlette.responses import Response

from jambo_emulator.resources.access import authenticate
from jambo_emulator.resources.context import EmulatorContext
from jambo_emulator.state.errors import LOCKED_MESSAGE, ApiError
from jambo_emulator.state.faults import STATUS_MESSAGES
from jambo_emulator.state.limits import RATE_LIMIT_MESSAGE

API_PREFIX = "/api/v2"
#: The emulator's own control API (no gate: ``control.guard`` protects it).
CONTROL_PREFIX = "/_emulator"


class EmulatorRoute(APIRoute):
    """Runs the gate (auth, rate limits, faults, lazy operation progress) before the handler."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        # The spec's path template. Older FastAPI copies routes into the app with the prefix; newer
        # releases (0.16x) include routers lazily and call this on the original, unprefixed route.
        path = self.path_format
        template = path[len(API_PREFIX) :] if path.startswith(API_PREFIX + "/") else path

        async def gated(request: Request) -> Response:
            ctx: EmulatorContext = request.app.state.ctx
            scope = request.scope
            method = scope["method"]
            scope["jambo.route"] = template
            key = authenticate(ctx.store, request.headers.get("authorization"))
            scope["jambo.key"] = key
            if ctx.rate_limits_enabled:
                ctx.limiter.check(key.id, method, template)
            if ctx.faults.active:
                fault = ctx.faults.pick(method, template)
                if fault is not None:
                    early = await _apply_fault(fault, request)
                    if early is not None:
                        return early
            ctx.engine.advance()
            return await handler(request)

        return gated


async def _apply_fault(fault: dict[str, Any], request: Request) -> Response | None:
    kind = fault["kind"]
    if kind == "latency":
        # Read the body before the delay, as a server behind a slow network would have it: a client
        # that gives up during the delay must still see its request applied (a late create), not a 400.
        await request.body()
        await asyncio.sleep(fault["seconds"])
        return None
    if kind == "drop_after_apply":
        request.scope["jambo.drop"] = True
        return None
    if kind == "status":
        raise ApiError(fault["status"], STATUS_MESSAGES[fault["status"]])
    if kind == "rate_limit":
        retry_after = fault.get("retry_after")
        raise ApiError(
            429, RATE_LIMIT_MESSAGE, headers={"Retry-After": retry_after} if retry_after is not None else None
        )
    if kind == "locked":
        raise ApiError(423, LOCKED_MESSAGE)
    return None  # "pass"


def api_router() -> APIRouter:
    """A router whose routes all pass the gate."""
    return APIRouter(route_class=EmulatorRoute)
