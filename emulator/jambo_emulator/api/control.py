"""The emulator's own control API under ``/_emulator`` (no API key, no rate limits).

Each endpoint maps onto one ``Controller`` method; ``JamboEmulator`` calls the same methods
directly in process. It can reset everything and mint working API keys, so ``guard`` (run by the
gateway before routing) keeps it to the machine itself: loopback clients only unless a control
token is configured (then every request must carry it), a ``Host`` a web page cannot fake by DNS
rebinding, and a JSON content type on every change (a cross-site form or ``fetch`` cannot send one
without a CORS preflight, which the emulator never grants).
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import json
import math
from collections.abc import MutableMapping
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from jambo_emulator.api import serialize
from jambo_emulator.api.gate import CONTROL_PREFIX
from jambo_emulator.api.router import not_emulated_router
from jambo_emulator.api.routes.helpers import respond
from jambo_emulator.resources import lifecycle, organizations
from jambo_emulator.resources.context import EmulatorContext
from jambo_emulator.resources.operations import ACTIONS, DURATION_KEYS, MAX_DURATION, MAX_SPREAD, OUTCOMES
from jambo_emulator.state.clock import MAX_ADVANCE, iso
from jambo_emulator.state.config import EmulatorConfig
from jambo_emulator.state.errors import ApiError, bad_request
from jambo_emulator.state.spec_operations import SPEC_OPERATIONS

CONTROL_TOKEN_HEADER = "x-emulator-control-token"


class Controller:
    """Test and benchmark controls of one emulator (thread-safe)."""

    def __init__(self, ctx: EmulatorContext) -> None:
        self.ctx = ctx

    def reset(self) -> None:
        lifecycle.reset(self.ctx)

    def set_operation_durations(
        self, default: float | None = None, *, replace: bool = False, **per_action: float
    ) -> dict[str, float]:
        """Seconds per operation action: merged into the current table, or (``replace=True``) the
        whole new table (actions not named take the default again)."""
        self.ctx.engine.set_durations(default, replace=replace, **per_action)
        return {"default": self.ctx.engine.default_duration, **self.ctx.engine.durations}

    def set_operation_duration_spread(self, spread: float, seed: int = 0) -> dict[str, float]:
        """Each new operation lasts its action's duration times a factor drawn from
        U(1 - spread, 1 + spread), from a generator seeded with ``seed`` (0 = exact durations)."""
        self.ctx.engine.set_spread(spread, seed)
        return {"spread": self.ctx.engine.spread, "seed": self.ctx.engine.spread_seed}

    def advance(self, seconds: float) -> float:
        """Move the clock forward (manual or real), then run what became due; returns the new now."""
        return lifecycle.advance(self.ctx, seconds)

    def set_operation_outcome(self, action: str, outcome: str, times: int = 1) -> None:
        self.ctx.engine.force_outcome(action, outcome, times)

    def clear_operation_outcomes(self) -> None:
        self.ctx.engine.clear_outcomes()

    def set_rate_limits(self, enabled: bool) -> None:
        self.ctx.rate_limits_enabled = bool(enabled)
        self.ctx.limiter.clear()

    def set_lock_rule(self, enabled: bool) -> None:
        self.ctx.lock_rule_enabled = bool(enabled)

    def inject_fault(
        self,
        method: str,
        route: str,
        faults: list[dict[str, Any]],
        *,
        probability: float | None = None,
        times: int | None = None,
    ) -> dict[str, Any]:
        return self.ctx.faults.add(method, route, faults, probability=probability, times=times).to_dict()

    def faults(self) -> list[dict[str, Any]]:
        return self.ctx.faults.rules()

    def clear_faults(self) -> None:
        self.ctx.faults.clear()

    def requests(self) -> list[dict[str, Any]]:
        return self.ctx.request_log.entries()

    def operation_times(self, project_id: str) -> list[dict[str, Any]]:
        """Each operation of a project, oldest first, with its exact ``created_at`` and
        ``finished_at`` (epoch seconds on the emulator's clock; ``finished_at`` None while in
        flight). The API writes whole seconds, too coarse to measure how soon a client saw an end."""
        ctx = self.ctx
        lifecycle.tick(ctx)
        with ctx.store.lock:
            project = ctx.store.projects.get(project_id)
            if project is None:
                raise ValueError(f"project_id {project_id!r} does not exist")
            return [
                {
                    "id": op.id,
                    "action": op.action,
                    "status": op.status,
                    "created_at": op.created_at,
                    "finished_at": op.finished_at,
                }
                for op in project.operations
            ]

    def clear_requests(self) -> None:
        self.ctx.request_log.clear()

    def add_api_key(
        self, key: str | None = None, *, project_id: str | None = None, name: str | None = None
    ) -> str:
        """Add a personal key, or one limited to ``project_id`` (which must exist); returns the key."""
        ctx = self.ctx
        with ctx.store.lock:
            if project_id is not None and project_id not in ctx.store.projects:
                raise ValueError(f"project_id {project_id!r} does not exist")
            value = key or ctx.ids.api_key()
            organizations.add_api_key(
                ctx,
                value,
                name=name or ("project-key" if project_id else "emulator-key"),
                project_id=project_id,
            )
            return value

    def add_organization(self, name: str) -> dict[str, Any]:
        """Another organization of the emulator's user (projects join the default one otherwise)."""
        if not isinstance(name, str) or not 1 <= len(name) <= 128:
            raise ValueError("name must be a string of 1 to 128 characters")
        return serialize.organization(organizations.add_organization(self.ctx, name))

    def add_org_api_key(self, org_id: str, *, project_id: str | None = None, name: str = "org-key") -> str:
        """An organization key (``project_id``: limited to that project of the org); returns it."""
        ctx = self.ctx
        with ctx.store.lock:
            if org_id not in ctx.store.organizations:
                raise ValueError(f"org_id {org_id!r} does not exist")
            project = ctx.store.projects.get(project_id) if project_id is not None else None
            if project_id is not None and (project is None or project.org_id != org_id):
                raise ValueError(f"project_id {project_id!r} is not a project of {org_id}")
            return organizations.add_api_key(
                ctx, ctx.ids.api_key(), name=name, org_id=org_id, project_id=project_id
            ).key

    @property
    def default_org_id(self) -> str:
        return self.ctx.default_org_id

    def describe(self) -> dict[str, Any]:
        return self.ctx.describe()


router = APIRouter()


# -- the guard (called by the gateway for every /_emulator request, before routing) --------------


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _host_name(header: str) -> str:
    """The name in a ``Host`` header, without port or IPv6 brackets."""
    if header.startswith("["):
        return header[1 : header.find("]")] if "]" in header else header
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


def _host_allowed(name: str, config: EmulatorConfig) -> bool:
    """IP literals, localhost and configured names: a DNS-rebinding page sends its own domain."""
    name = name.lower().rstrip(".")
    if name == "localhost" or name.endswith(".localhost") or name in config.allowed_hosts:
        return True
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def guard(scope: MutableMapping[str, Any], config: EmulatorConfig) -> tuple[int, str] | None:
    """(status, message) refusing a control request, or None to let it through."""
    headers = {name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]}
    token = config.control_token
    if token is None:
        client = scope.get("client")
        if client is None or not _is_loopback(client[0]):
            return 403, (
                "the control API answers loopback clients only; start the emulator with "
                "--control-token TOKEN to use it from elsewhere (send the token in X-Emulator-Control-Token)"
            )
        host = _host_name(headers.get("host", ""))
        if not _host_allowed(host, config):
            return 403, (
                f"the control API does not answer Host {host!r} (DNS rebinding guard); allowed: IP "
                "addresses, localhost, and names given with --allowed-host"
            )
    elif not hmac.compare_digest(headers.get(CONTROL_TOKEN_HEADER, "").encode(), token.encode()):
        return (
            401,
            "the control API needs the emulator's control token in the X-Emulator-Control-Token header",
        )
    path = scope["path"][len(CONTROL_PREFIX) :] or "/"
    methods = CONTROL_ROUTES.get(path)
    if methods is None:
        return 400, f"unknown control route {scope['path']}; routes: {', '.join(sorted(CONTROL_ROUTES))}"
    if scope["method"] not in methods:
        return 400, (
            f"{scope['method']} is not a method of {scope['path']}; allowed: {', '.join(sorted(methods))}"
        )
    if scope["method"] != "GET":
        content_type = headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if content_type != "application/json":
            return 415, (
                f"control requests other than GET must be sent as application/json, got "
                f"{content_type or 'no Content-Type'}"
            )
    return None


# -- request bodies ------------------------------------------------------------------------------


def _controller(request: Request) -> Controller:
    controller: Controller = request.app.state.controller
    return controller


def _reject_constants(name: str) -> float:
    raise ValueError(f"{name} is not a number JSON allows")


async def _body(request: Request, allowed: tuple[str, ...] | None = None) -> dict[str, Any]:
    """The JSON object sent (``{}`` for none); with ``allowed``, other keys are a 400 naming them."""
    raw = await request.body()
    if not raw:
        return {}
    try:
        data = json.loads(raw, parse_constant=_reject_constants)
    except ValueError as exc:
        raise bad_request(f"malformed JSON: {exc}") from None
    if not isinstance(data, dict):
        raise bad_request("the body must be a JSON object")
    if allowed is not None:
        unknown = sorted(set(data) - set(allowed))
        if unknown:
            raise bad_request(f"unknown field(s) {', '.join(unknown)}; allowed: {', '.join(allowed)}")
    return data


def _number(data: dict[str, Any], name: str, low: float, high: float) -> float:
    """A finite JSON number within [low, high] (big integers included), or a 400 saying so."""
    value = data.get(name)
    if (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and not (isinstance(value, float) and not math.isfinite(value))
        and low <= value <= high
    ):
        return float(value)
    raise bad_request(f"{name} must be a number between {low:g} and {high:g}, got {value!r}")


def _flag(data: dict[str, Any]) -> bool:
    enabled = data.get("enabled")
    if not isinstance(enabled, bool):
        raise bad_request("enabled must be true or false")
    return enabled


def _call(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Controller ValueErrors (bad control input) become 400s naming the problem."""
    try:
        return fn(*args, **kwargs)
    except (ValueError, TypeError, OverflowError) as exc:
        raise ApiError(400, str(exc)) from None


# -- routes --------------------------------------------------------------------------------------


@router.get("/health")
async def health() -> Response:
    return respond({"status": "ok"})


@router.get("/config")
async def config(request: Request) -> Response:
    return respond(_controller(request).describe())


@router.get("/routes")
async def spec_routes(request: Request) -> Response:
    """The spec's operations, each with whether the emulator serves it (others answer 501)."""
    unserved = {route.name for route in not_emulated_router.routes if hasattr(route, "name")}
    return respond(
        {
            "operations": [
                {"operation_id": op_id, "method": method, "path": path, "emulated": op_id not in unserved}
                for op_id, method, path in SPEC_OPERATIONS
            ]
        }
    )


@router.post("/reset")
async def reset(request: Request) -> Response:
    await _body(request, ())
    await asyncio.to_thread(_controller(request).reset)  # may wait for the data plane
    return respond({"reset": True})


async def _durations(request: Request, *, replace: bool) -> Response:
    data = await _body(request, ("default", *DURATION_KEYS))
    values = {name: _number(data, name, 0, MAX_DURATION) for name in data}
    default = values.pop("default", None)
    return respond(_call(_controller(request).set_operation_durations, default, replace=replace, **values))


@router.put("/operation_durations")
async def replace_operation_durations(request: Request) -> Response:
    """The body is the whole table: actions it does not name take the default again."""
    return await _durations(request, replace=True)


@router.patch("/operation_durations")
async def merge_operation_durations(request: Request) -> Response:
    """The body is merged into the current table."""
    return await _durations(request, replace=False)


@router.put("/operation_duration_spread")
async def operation_duration_spread(request: Request) -> Response:
    """``{"spread": 0.5, "seed": 7}``: durations drawn from U(0.5·D, 1.5·D), repeatably."""
    data = await _body(request, ("spread", "seed"))
    spread = _number(data, "spread", 0, MAX_SPREAD)
    seed = data.get("seed", 0)
    return respond(_call(_controller(request).set_operation_duration_spread, spread, seed))


@router.get("/clock")
async def clock(request: Request) -> Response:
    ctx = _controller(request).ctx
    now = ctx.clock.now()
    return respond({"now": iso(now), "epoch": now, "manual": ctx.clock.manual})


@router.post("/clock/advance")
async def advance(request: Request) -> Response:
    seconds = _number(await _body(request, ("seconds",)), "seconds", 0, MAX_ADVANCE)
    now = _call(_controller(request).advance, seconds)
    return respond({"now": iso(now), "epoch": now})


@router.post("/operation_outcomes")
async def operation_outcomes(request: Request) -> Response:
    data = await _body(request, ("action", "outcome", "times"))
    action, outcome = data.get("action"), data.get("outcome")
    if action not in ACTIONS:
        raise bad_request(f"action must be one of {', '.join(ACTIONS)}, got {action!r}")
    if outcome not in OUTCOMES:
        raise bad_request(f"outcome must be one of {', '.join(OUTCOMES)}, got {outcome!r}")
    times = data.get("times", 1)
    if not isinstance(times, int) or isinstance(times, bool) or not 1 <= times <= 10_000:
        raise bad_request(f"times must be an integer between 1 and 10000, got {times!r}")
    _call(_controller(request).set_operation_outcome, action, outcome, times)
    return respond(_controller(request).ctx.engine.forced_outcomes())


@router.delete("/operation_outcomes")
async def clear_operation_outcomes(request: Request) -> Response:
    await _body(request, ())
    _controller(request).clear_operation_outcomes()
    return respond({})


@router.put("/rate_limits")
async def rate_limits(request: Request) -> Response:
    enabled = _flag(await _body(request, ("enabled",)))
    _controller(request).set_rate_limits(enabled)
    return respond({"enabled": enabled})


@router.put("/lock_rule")
async def lock_rule(request: Request) -> Response:
    enabled = _flag(await _body(request, ("enabled",)))
    _controller(request).set_lock_rule(enabled)
    return respond({"enabled": enabled})


@router.post("/faults")
async def add_fault(request: Request) -> Response:
    data = await _body(request, ("method", "route", "faults", "probability", "times"))
    rule = _call(
        _controller(request).inject_fault,
        data.get("method"),
        data.get("route"),
        data.get("faults"),
        probability=data.get("probability"),
        times=data.get("times"),
    )
    return respond(rule, 201)


@router.get("/faults")
async def list_faults(request: Request) -> Response:
    return respond({"faults": _controller(request).faults()})


@router.delete("/faults")
async def clear_faults(request: Request) -> Response:
    await _body(request, ())
    _controller(request).clear_faults()
    return respond({})


@router.get("/requests")
async def requests_log(request: Request) -> Response:
    return respond({"requests": _controller(request).requests()})


@router.get("/operation_times")
async def operation_times(request: Request) -> Response:
    project_id = request.query_params.get("project_id", "")
    return respond({"operations": _call(_controller(request).operation_times, project_id)})


@router.delete("/requests")
async def clear_requests(request: Request) -> Response:
    await _body(request, ())
    _controller(request).clear_requests()
    return respond({})


@router.post("/api_keys")
async def add_api_key(request: Request) -> Response:
    data = await _body(request, ("key", "project_id", "name"))
    key, project_id, name = data.get("key"), data.get("project_id"), data.get("name")
    for field, value in (("key", key), ("project_id", project_id), ("name", name)):
        if value is not None and not isinstance(value, str):
            raise bad_request(f"{field} must be a string")
    value = _call(_controller(request).add_api_key, key, project_id=project_id, name=name)
    return respond({"key": value, "project_id": project_id}, 201)


#: path -> methods, from the routes above (what ``guard`` names when refusing).
@router.post("/organizations")
async def add_organization(request: Request) -> Response:
    data = await _body(request, ("name",))
    return respond(_call(_controller(request).add_organization, data.get("name")), 201)


CONTROL_ROUTES: dict[str, set[str]] = {}
for _route in router.routes:
    CONTROL_ROUTES.setdefault(getattr(_route, "path", ""), set()).update(getattr(_route, "methods", ()))
