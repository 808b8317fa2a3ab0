"""The emulator's own control API under ``/_emulator`` (no auth, no rate limits, not logged).

Each endpoint maps onto one ``Controller`` method; ``JamboEmulator`` calls the same methods
directly in process.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from airflow_provider_jambo.emulator.clock import iso
from airflow_provider_jambo.emulator.context import EmulatorContext
from airflow_provider_jambo.emulator.errors import ApiError, bad_request
from airflow_provider_jambo.emulator.routes.common import respond


class Controller:
    """Test and benchmark controls of one emulator (thread-safe)."""

    def __init__(self, ctx: EmulatorContext) -> None:
        self.ctx = ctx

    def reset(self) -> None:
        self.ctx.reset()

    def set_operation_durations(self, default: float | None = None, **per_action: float) -> dict[str, float]:
        self.ctx.engine.set_durations(default, **per_action)
        return {"default": self.ctx.engine.default_duration, **self.ctx.engine.durations}

    def advance(self, seconds: float) -> float:
        """Move the clock forward (manual or real), then run what became due; returns the new now."""
        return self.ctx.advance(seconds)

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
            ctx.add_api_key(
                value, name=name or ("project-key" if project_id else "emulator-key"), project_id=project_id
            )
            return value

    def describe(self) -> dict[str, Any]:
        return self.ctx.describe()


router = APIRouter()


def _controller(request: Request) -> Controller:
    controller: Controller = request.app.state.controller
    return controller


async def _body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw:
        return {}
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise bad_request(f"malformed JSON: {exc}") from None
    if not isinstance(data, dict):
        raise bad_request("the body must be a JSON object")
    return data


def _flag(data: dict[str, Any]) -> bool:
    enabled = data.get("enabled")
    if not isinstance(enabled, bool):
        raise bad_request("enabled must be true or false")
    return enabled


def _call(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Controller ValueErrors (bad control input) become 400s naming the problem."""
    try:
        return fn(*args, **kwargs)
    except (ValueError, TypeError) as exc:
        raise ApiError(400, str(exc)) from None


@router.get("/health")
async def health() -> Response:
    return respond({"status": "ok"})


@router.get("/config")
async def config(request: Request) -> Response:
    return respond(_controller(request).describe())


@router.post("/reset")
async def reset(request: Request) -> Response:
    await asyncio.to_thread(_controller(request).reset)  # may wait for the data plane
    return respond({"reset": True})


@router.put("/operation_durations")
async def operation_durations(request: Request) -> Response:
    data = await _body(request)
    for name, value in data.items():
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise bad_request(f"duration of {name} must be a number of seconds, got {value!r}")
    default = data.pop("default", None)
    return respond(_call(_controller(request).set_operation_durations, default, **data))


@router.get("/clock")
async def clock(request: Request) -> Response:
    ctx = _controller(request).ctx
    now = ctx.clock.now()
    return respond({"now": iso(now), "epoch": now, "manual": ctx.clock.manual})


@router.post("/clock/advance")
async def advance(request: Request) -> Response:
    seconds = (await _body(request)).get("seconds")
    if not isinstance(seconds, (int, float)) or isinstance(seconds, bool):
        raise bad_request("seconds must be a number")
    now = _call(_controller(request).advance, float(seconds))
    return respond({"now": iso(now), "epoch": now})


@router.post("/operation_outcomes")
async def operation_outcomes(request: Request) -> Response:
    data = await _body(request)
    action, outcome, times = data.get("action"), data.get("outcome"), data.get("times", 1)
    if not isinstance(action, str) or not action:
        raise bad_request("action must be an operation action such as create_branch")
    if not isinstance(times, int) or isinstance(times, bool):
        raise bad_request("times must be a positive integer")
    _call(_controller(request).set_operation_outcome, action, outcome, times)
    return respond(_controller(request).ctx.engine.forced_outcomes())


@router.delete("/operation_outcomes")
async def clear_operation_outcomes(request: Request) -> Response:
    _controller(request).clear_operation_outcomes()
    return respond({})


@router.put("/rate_limits")
async def rate_limits(request: Request) -> Response:
    enabled = _flag(await _body(request))
    _controller(request).set_rate_limits(enabled)
    return respond({"enabled": enabled})


@router.put("/lock_rule")
async def lock_rule(request: Request) -> Response:
    enabled = _flag(await _body(request))
    _controller(request).set_lock_rule(enabled)
    return respond({"enabled": enabled})


@router.post("/faults")
async def add_fault(request: Request) -> Response:
    data = await _body(request)
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
    _controller(request).clear_faults()
    return respond({})


@router.get("/requests")
async def requests_log(request: Request) -> Response:
    return respond({"requests": _controller(request).requests()})


@router.delete("/requests")
async def clear_requests(request: Request) -> Response:
    _controller(request).clear_requests()
    return respond({})


@router.post("/api_keys")
async def add_api_key(request: Request) -> Response:
    data = await _body(request)
    key, project_id, name = data.get("key"), data.get("project_id"), data.get("name")
    for field, value in (("key", key), ("project_id", project_id), ("name", name)):
        if value is not None and not isinstance(value, str):
            raise bad_request(f"{field} must be a string")
    value = _call(_controller(request).add_api_key, key, project_id=project_id, name=name)
    return respond({"key": value, "project_id": project_id}, 201)
