"""The ASGI app: routing, the per-request gate (auth, limits, faults) and the error shapes.

Hot path on purpose lean: one pure-ASGI middleware (request id, request log, dropped responses,
last-resort 500) and a route class whose wrapper runs auth, rate limits and faults after routing
(so the spec's route template is known) and before FastAPI parses parameters and bodies.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import re
import time
import uuid
from collections.abc import AsyncIterator, Mapping

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from jambo_emulator.api.control import Controller, guard
from jambo_emulator.api.control import router as control_router
from jambo_emulator.api.gate import API_PREFIX, CONTROL_PREFIX
from jambo_emulator.api.router import api_router, specificity
from jambo_emulator.api.validation import describe_validation_error
from jambo_emulator.dataplane.base import DataPlane, NullDataPlane
from jambo_emulator.resources import lifecycle
from jambo_emulator.resources.context import EmulatorContext
from jambo_emulator.state.config import EmulatorConfig
from jambo_emulator.state.errors import ApiError

REQUEST_ID_HEADER = "x-neon-ret-request-id"

log = logging.getLogger(__name__)

#: Key in the ASGI scope's ``state`` under which our uvicorn protocol puts the connection's transport.
TRANSPORT_KEY = "jambo.transport"


def error_response(
    status: int,
    message: str,
    request_id: str,
    *,
    code: str = "",
    headers: Mapping[str, str] | None = None,
) -> Response:
    """The service's error body, with the request id."""
    body = json.dumps({"code": code, "message": message, "request_id": request_id}).encode()
    return Response(body, status_code=status, media_type="application/json", headers=dict(headers or {}))


class DroppedConnection(Exception):
    """Raised to a non-uvicorn ASGI client when a response was dropped after apply."""


class GatewayMiddleware:
    """Request id, request log, dropped responses and the last-resort 500 (pure ASGI: fast)."""

    def __init__(self, app: ASGIApp, ctx: EmulatorContext) -> None:
        self.app = app
        self.ctx = ctx
        # uuid4() reads os.urandom, which costs more than the rest of a GET here: request ids need
        # to be unique, not unguessable.
        self._rng = random.Random()

    def _new_request_id(self) -> str:
        return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refusal = self._refusal(scope)
        if refusal is not None:
            await self._refuse(scope, receive, send, *refusal)
            return
        if scope["method"] in _BODY_METHODS:
            receive = _limited(receive, self.ctx.config.max_body_bytes)
        started = time.perf_counter()
        if scope["method"] in _BODY_METHODS and not scope["path"].startswith(CONTROL_PREFIX):
            _treat_body_as_json(scope)
        request_id = _client_request_id(scope) or self._new_request_id()
        scope["jambo.request_id"] = request_id
        header = (REQUEST_ID_HEADER.encode(), request_id.encode())
        status = 0
        dropped = False

        logged = False

        def record() -> None:
            """Add the request to the log; before the last body byte is sent, so a client that
            has its answer always sees the entry (it raced the client on loaded machines)."""
            nonlocal logged
            logged = True
            self.ctx.request_log.add(
                {
                    "method": scope["method"],
                    "path": scope["path"],
                    "route": scope.get("jambo.route"),
                    "status": status,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 3),
                    "request_id": request_id,
                    "dropped": dropped,
                }
            )

        async def send_wrapper(message: Message) -> None:
            nonlocal status, dropped
            if scope.get("jambo.drop"):
                dropped = True
                if message["type"] == "http.response.start":
                    status = message["status"]
                return  # the change was applied; the client never hears about it
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), header]
            elif message["type"] == "http.response.body" and not message.get("more_body", False):
                record()
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except Exception:
            log.exception("unhandled error serving %s %s", scope["method"], scope["path"])
            if status == 0 and not dropped:
                status = 500
                record()
                response = error_response(
                    500,
                    "internal server error (emulator bug; see its log)",
                    request_id,
                    headers={REQUEST_ID_HEADER: request_id},
                )
                await response(scope, receive, send)
        if dropped:
            await _drop_connection(scope)
        if not logged:  # dropped, or the app failed before answering
            record()
        if dropped and TRANSPORT_KEY not in scope.get("state", {}):
            raise DroppedConnection(f"response to {scope['method']} {scope['path']} dropped after apply")

    def _refusal(self, scope: Scope) -> tuple[int, str] | None:
        """Why a request is refused before the app sees it: a declared body over the limit, or a
        control request the guard turns away."""
        limit = self.ctx.config.max_body_bytes
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    return 400, "Content-Length must be a number of bytes"
                if declared > limit:
                    return 413, _too_large(limit)
        if scope["path"].startswith(CONTROL_PREFIX):
            return guard(scope, self.ctx.config)
        return None

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, status: int, message: str) -> None:
        """Answer without reading the body (and close: the unread body must not become a request)."""
        request_id = _client_request_id(scope) or self._new_request_id()
        self.ctx.request_log.add(
            {
                "method": scope["method"],
                "path": scope["path"],
                "route": None,
                "status": status,
                "duration_ms": 0.0,
                "request_id": request_id,
                "dropped": False,
            }
        )
        headers = {REQUEST_ID_HEADER: request_id}
        if status == 413:
            headers["Connection"] = "close"
        await error_response(status, message, request_id, headers=headers)(scope, receive, send)


class BodyTooLarge(StarletteHTTPException):
    """Raised from ``receive`` once a streamed body passes the limit (FastAPI re-raises HTTP errors)."""


def _too_large(limit: int) -> str:
    return f"request body too large: the emulator accepts at most {limit} bytes"


def _limited(receive: Receive, limit: int) -> Receive:
    """``receive`` that counts body bytes and stops at the limit (a chunked body has no length)."""
    seen = 0

    async def counting() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise BodyTooLarge(413, _too_large(limit))
        return message

    return counting


_BODY_METHODS = frozenset({"POST", "PATCH", "PUT", "DELETE"})
_JSON = b"application/json"


def _treat_body_as_json(scope: Scope) -> None:
    """The service decodes bodies as JSON whatever the Content-Type says (``curl -d`` sends a form
    type); FastAPI would not, so the header is normalised before routing."""
    headers = scope["headers"]
    for index, (name, value) in enumerate(headers):
        if name == b"content-type":
            if b"json" not in value.lower():
                headers[index] = (b"content-type", _JSON)
            return
    headers.append((b"content-type", _JSON))


def _client_request_id(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            text: str = value.decode("latin-1").strip()
            return text[:200] or None
    return None


async def _drop_connection(scope: Scope) -> None:
    transport = scope.get("state", {}).get(TRANSPORT_KEY)
    if transport is None:
        return
    transport.close()
    # Let uvicorn see the connection as lost, so it does not answer with its own 500.
    for _ in range(3):
        await asyncio.sleep(0)


def _request_id(request: Request) -> str:
    rid: str = request.scope.get("jambo.request_id", "")
    return rid


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.message, _request_id(request), code=exc.code, headers=exc.headers)


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    return error_response(400, describe_validation_error(exc.errors()), _request_id(request))


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    message = {404: "not found", 405: "method not allowed"}.get(exc.status_code, str(exc.detail))
    headers = dict(exc.headers or {})
    if isinstance(exc, BodyTooLarge):
        headers["Connection"] = "close"  # the rest of the body is never read
    if exc.status_code == 405:
        # Starlette names only the first route that matched the path; Allow must list them all.
        headers["Allow"] = _allowed_methods(request)
        message = f"method not allowed: {request.method} {request.url.path} takes {headers['Allow']}"
    return error_response(exc.status_code, message, _request_id(request), headers=headers)


def _route_table(routers: list[tuple[str, APIRouter]]) -> list[tuple[re.Pattern[str], str, set[str]]]:
    """(path regex, template, methods) of every route. Built from the routers themselves: newer
    FastAPI releases no longer copy included routes into ``app.router.routes``."""
    table = []
    for prefix, router in routers:
        for route in router.routes:
            if isinstance(route, APIRoute):
                regex, _, _ = compile_path(prefix + route.path)
                table.append((regex, route.path, set(route.methods)))
    return table


def _allowed_methods(request: Request) -> str:
    by_template: dict[str, set[str]] = {}
    path = request.scope["path"]
    for regex, template, methods in request.app.state.route_table:
        if regex.match(path):
            by_template.setdefault(template, set()).update(methods)
    if not by_template:
        return ""
    # A literal segment wins over a parameter (.../branches/count is not .../branches/{branch_id}).
    best = min(by_template, key=specificity)
    return ", ".join(sorted(by_template[best]))


def create_app(config: EmulatorConfig | None = None, data_plane: DataPlane | None = None) -> FastAPI:
    """A fresh emulator app; all state lives on ``app.state.ctx`` (no module globals)."""
    ctx = lifecycle.new_context(
        config or EmulatorConfig(), data_plane if data_plane is not None else NullDataPlane()
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        ctx.runner.start()
        sweeper = asyncio.create_task(_sweep(ctx))
        try:
            yield
        finally:
            sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweeper
            await asyncio.to_thread(ctx.runner.shutdown)

    app = FastAPI(
        title="Jambo API emulator",
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    # An unknown path is a 404, not a redirect to a path that may be another operation.
    app.router.redirect_slashes = False
    app.state.ctx = ctx
    app.state.controller = Controller(ctx)
    app.include_router(api_router, prefix=API_PREFIX)
    app.state.route_table = _route_table([(API_PREFIX, api_router), (CONTROL_PREFIX, control_router)])
    app.include_router(control_router, prefix=CONTROL_PREFIX)
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_middleware(GatewayMiddleware, ctx=ctx)
    return app


async def _sweep(ctx: EmulatorContext) -> None:
    """The background job: advance operations and delete expired branches every interval."""
    while True:
        await asyncio.sleep(ctx.config.sweep_interval)
        try:
            lifecycle.tick(ctx)
        except Exception:
            log.exception("emulator sweeper failed")
