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
from jambo_emulator.state.records import Endpoint, Operation, Project

router = api_router()


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
    spec = body.to_spec()
    with ctx.store.lock:
        project = ctx.project_for(key_of(request), project_id)
        endpoint, op = endpoints.create_endpoint(ctx, project, spec)
        return _endpoint_ops(ctx, endpoint, [op], 201)


@router.patch("/projects/{project_id}/endpoints/{endpoint_id}")
async def update_endpoint(
    request: Request, project_id: ProjectId, endpoint_id: EndpointId, body: EndpointUpdateBody
) -> Response:
    ctx = ctx_of(request)
    change = body.to_change()
    with ctx.store.lock:
        project, endpoint = ctx.project_endpoint(key_of(request), project_id, endpoint_id)
        ops = endpoints.update_endpoint(ctx, project, endpoint, change)
        return _endpoint_ops(ctx, endpoint, ops)


@router.delete("/projects/{project_id}/endpoints/{endpoint_id}")
async def delete_endpoint(request: Request, project_id: ProjectId, endpoint_id: EndpointId) -> Response:
    ctx = ctx_of(request)
    with ctx.store.lock:
        project = ctx.project_for(key_of(request), project_id)
        deleted = endpoints.delete_endpoint_if_present(ctx, project, endpoint_id)
        if deleted is None:
            return no_content()
        return _endpoint_ops(ctx, *deleted)


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
