"""Endpoints (computes): list per project or branch, get, create, update, delete, start, suspend, restart."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import Request
from starlette.responses import Response

from jambo_emulator.api import serialize
from jambo_emulator.api.bodies import EndpointCreateBody, EndpointUpdateBody
from jambo_emulator.api.gate import api_router
from jambo_emulator.api.routes.helpers import (
    BranchId,
    EndpointId,
    ProjectId,
    ctx_of,
    key_of,
    no_content,
    path_id,
    respond,
    with_operations,
)
from jambo_emulator.resources import endpoints
from jambo_emulator.resources.context import EmulatorContext
from jambo_emulator.state.errors import ApiError, bad_request
from jambo_emulator.state.records import Endpoint, Operation, Project

router = api_router()
#: Update fields stored as given (when not null) under the same name on the endpoint.
_COPIED_ON_UPDATE = (
    "suspend_timeout_seconds",
    "provisioner",
    "disabled",
    "pooler_enabled",
    "passwordless_access",
    "name",
)


def _endpoint_ops(
    ctx: EmulatorContext, endpoint: Endpoint, ops: list[Operation], status: int = 200
) -> Response:
    return with_operations("endpoint", serialize.endpoint(endpoint), ops, ctx.clock.now(), status)


@router.get("/projects/{project_id}/endpoints")
async def list_endpoints(request: Request, project_id: ProjectId) -> Response:
    ctx = ctx_of(request)
    with ctx.store.lock:
        project = ctx.project_for(key_of(request), project_id)
        return respond({"endpoints": [serialize.endpoint(e) for e in project.endpoints.values()]})


@router.get("/projects/{project_id}/branches/{branch_id}/endpoints")
async def list_branch_endpoints(request: Request, project_id: ProjectId, branch_id: BranchId) -> Response:
    ctx = ctx_of(request)
    with ctx.store.lock:
        project = ctx.project_for(key_of(request), project_id)
        ctx.branch_in(project, branch_id)
        return respond({"endpoints": [serialize.endpoint(e) for e in project.branch_endpoints(branch_id)]})


@router.get("/projects/{project_id}/endpoints/{endpoint_id}")
async def get_endpoint(request: Request) -> Response:
    ctx = ctx_of(request)
    project_id, endpoint_id = path_id(request, "project_id"), path_id(request, "endpoint_id")
    with ctx.store.lock:
        project = ctx.project_for(key_of(request), project_id)
        return respond({"endpoint": serialize.endpoint(ctx.endpoint_in(project, endpoint_id))})


@router.post("/projects/{project_id}/endpoints")
async def create_endpoint(request: Request, project_id: ProjectId, body: EndpointCreateBody) -> Response:
    ctx = ctx_of(request)
    fields = body.endpoint
    with ctx.store.lock:
        project = ctx.project_for(key_of(request), project_id)
        branch = project.branches.get(fields.branch_id)
        if branch is None:
            raise ApiError(404, "branch not found")
        if fields.region_id is not None and fields.region_id != project.region_id:
            raise bad_request(
                f"invalid endpoint.region_id {fields.region_id!r}: only the project's region "
                f"{project.region_id!r} is permitted"
            )
        defaults = project.default_endpoint_settings
        min_cu = fields.autoscaling_limit_min_cu
        if min_cu is None:
            min_cu = float(defaults.get("autoscaling_limit_min_cu", 0.25))
        max_cu = fields.autoscaling_limit_max_cu
        if max_cu is None:
            max_cu = max(float(defaults.get("autoscaling_limit_max_cu", 0.25)), min_cu)
        endpoints.check_compute_units(min_cu, max_cu)
        if fields.type == "read_write" and any(
            e.type == "read_write" for e in project.branch_endpoints(branch.id)
        ):
            raise ApiError(409, "read-write endpoint already exists")
        ctx.check_lock(project)
        suspend = fields.suspend_timeout_seconds
        endpoint, op = endpoints.add_endpoint(
            ctx,
            project,
            branch,
            fields.type,
            after=None,
            min_cu=min_cu,
            max_cu=max_cu,
            suspend_timeout_seconds=int(defaults.get("suspend_timeout_seconds", 0))
            if suspend is None
            else suspend,
            provisioner=fields.provisioner,
            settings=fields.settings.model_dump(exclude_none=True) if fields.settings else None,
            name=fields.name,
            disabled=bool(fields.disabled),
        )
        endpoint.pooler_enabled = bool(fields.pooler_enabled)
        endpoint.passwordless_access = bool(fields.passwordless_access)
        return _endpoint_ops(ctx, endpoint, [op], 201)


@router.patch("/projects/{project_id}/endpoints/{endpoint_id}")
async def update_endpoint(
    request: Request, project_id: ProjectId, endpoint_id: EndpointId, body: EndpointUpdateBody
) -> Response:
    ctx = ctx_of(request)
    fields = body.endpoint
    with ctx.store.lock:
        project, endpoint = ctx.project_endpoint(key_of(request), project_id, endpoint_id)
        min_cu = (
            endpoint.min_cu if fields.autoscaling_limit_min_cu is None else fields.autoscaling_limit_min_cu
        )
        max_cu = (
            endpoint.max_cu if fields.autoscaling_limit_max_cu is None else fields.autoscaling_limit_max_cu
        )
        endpoints.check_compute_units(min_cu, max_cu)
        if fields.branch_id is not None and fields.branch_id != endpoint.branch_id:
            if fields.branch_id not in project.branches:
                raise ApiError(404, "branch not found")
            if endpoint.type == "read_write" and any(
                e.type == "read_write" for e in project.branch_endpoints(fields.branch_id)
            ):
                raise ApiError(409, "read-write endpoint already exists")
        ops: list[Operation] = []
        newly_disabled = fields.disabled is True and not endpoint.disabled
        moved = fields.branch_id is not None and fields.branch_id != endpoint.branch_id
        if moved:
            assert fields.branch_id is not None
            ops = endpoints.move_endpoint(ctx, project, endpoint, fields.branch_id)
        elif newly_disabled and endpoint.current_state == "active":
            ctx.check_lock(project)
            ops = endpoints.suspend_endpoint(ctx, project, endpoint)
        elif endpoint.current_state == "active" and (
            fields.given("autoscaling_limit_min_cu")
            or fields.given("autoscaling_limit_max_cu")
            or fields.given("settings")
        ):
            ctx.check_lock(project)
            ops = [
                ctx.engine.create(
                    project, "apply_config", branch_id=endpoint.branch_id, endpoint_id=endpoint.id
                )
            ]
        endpoint.min_cu, endpoint.max_cu = min_cu, max_cu
        if fields.settings is not None:
            endpoint.settings = fields.settings.model_dump(exclude_none=True)
        for name in _COPIED_ON_UPDATE:
            value = getattr(fields, name)
            if value is not None:
                setattr(endpoint, name, value)
        endpoint.updated_at = ctx.clock.now()
        return _endpoint_ops(ctx, endpoint, ops)


@router.delete("/projects/{project_id}/endpoints/{endpoint_id}")
async def delete_endpoint(request: Request, project_id: ProjectId, endpoint_id: EndpointId) -> Response:
    ctx = ctx_of(request)
    with ctx.store.lock:
        project = ctx.project_for(key_of(request), project_id)
        endpoint = project.endpoints.get(endpoint_id)
        if endpoint is None:
            return no_content()
        ops = endpoints.delete_endpoint(ctx, project, endpoint)
        return _endpoint_ops(ctx, endpoint, ops)


def _power_route(
    action: str, change: Callable[[EmulatorContext, Project, Endpoint], list[Operation]]
) -> None:
    """``POST .../endpoints/{endpoint_id}/<action>``: the same handler for start, suspend, restart."""

    async def handler(request: Request, project_id: ProjectId, endpoint_id: EndpointId) -> Response:
        ctx = ctx_of(request)
        with ctx.store.lock:
            project, endpoint = ctx.project_endpoint(key_of(request), project_id, endpoint_id)
            return _endpoint_ops(ctx, endpoint, change(ctx, project, endpoint))

    handler.__name__ = handler.__qualname__ = f"{action}_endpoint"
    router.post(f"/projects/{{project_id}}/endpoints/{{endpoint_id}}/{action}")(handler)


_power_route("start", endpoints.start_endpoint)
_power_route("suspend", endpoints.suspend_endpoint)
_power_route("restart", endpoints.restart_endpoint)
