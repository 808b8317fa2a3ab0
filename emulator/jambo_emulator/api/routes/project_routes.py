"""Projects: list (cursor/limit/search), shared ones, create, get, update, delete, permissions."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Query, Request
from starlette.responses import Response

from jambo_emulator.api import serialize
from jambo_emulator.api.bodies import (
    PermissionGrantBody,
    ProjectCreateBody,
    ProjectUpdateBody,
)
from jambo_emulator.api.gate import api_router
from jambo_emulator.api.routes.helpers import ProjectId, ctx_of, key_of, path_id, respond
from jambo_emulator.resources import projects, recovery
from jambo_emulator.state.ids import ID_PATTERN
from jambo_emulator.state.records import Project

router = api_router()


def _list(
    request: Request,
    cursor: str | None,
    limit: int,
    search: str | None,
    keep: Callable[[Project], bool],
    *,
    shared: bool = False,
    deleted: bool = False,
) -> Response:
    ctx, key = ctx_of(request), key_of(request)
    with ctx.store.lock:
        items = projects.list_projects(
            ctx, key, cursor=cursor, limit=limit, search=search, keep=keep, deleted=deleted
        )
        body: dict[str, object] = {"projects": [serialize.project_list_item(p) for p in items]}
        if not shared:  # only the own-projects list carries them
            body["applications"], body["integrations"] = {}, {}
        if items:
            body["pagination"] = {"cursor": items[-1].id}
    return respond(body)


@router.get("/projects")
async def list_projects(
    request: Request,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=400)] = 10,
    search: str | None = None,
    org_id: Annotated[str | None, Query(pattern=ID_PATTERN)] = None,
    timeout: Annotated[int | None, Query(ge=100, le=30000)] = None,
    recoverable: bool = False,
) -> Response:
    return _list(request, cursor, limit, search, lambda p: org_id in (None, p.org_id), deleted=recoverable)


@router.get("/projects/shared")
async def list_shared_projects(
    request: Request,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=400)] = 10,
    search: str | None = None,
    timeout: Annotated[int | None, Query(ge=100, le=30000)] = None,
) -> Response:
    """Projects shared with the emulator's user: those with a live permission for its email."""
    return _list(request, cursor, limit, search, projects.shared_with_user, shared=True)


@router.post("/projects")
async def create_project(request: Request, body: ProjectCreateBody) -> Response:
    ctx, key = ctx_of(request), key_of(request)
    spec = body.to_spec()
    with ctx.store.lock:
        created = projects.create_project_for(ctx, key, spec)
        return respond(serialize.project_created(created, ctx.clock.now()), 201)


@router.get("/projects/{project_id}")
async def get_project(request: Request) -> Response:
    ctx = ctx_of(request)
    project_id = path_id(request, "project_id")
    with ctx.store.lock:
        project = ctx.project_for(key_of(request), project_id)
        return respond({"project": serialize.project(project, ctx.clock.now())})


@router.patch("/projects/{project_id}")
async def update_project(request: Request, project_id: ProjectId, body: ProjectUpdateBody) -> Response:
    ctx = ctx_of(request)
    change = body.to_change()
    with ctx.store.lock:
        project = ctx.project_for(key_of(request), project_id)
        projects.update_project(ctx, project, change)
        return respond({"project": serialize.project(project, ctx.clock.now()), "operations": []})


@router.delete("/projects/{project_id}")
async def delete_project(request: Request, project_id: ProjectId) -> Response:
    ctx = ctx_of(request)
    with ctx.store.lock:
        project = ctx.project_for(key_of(request), project_id)
        body = {"project": serialize.project(project, ctx.clock.now())}
        projects.delete_project(ctx, project)
    return respond(body)


@router.post("/projects/{project_id}/recover")
async def recover_project(request: Request, project_id: ProjectId) -> Response:
    ctx = ctx_of(request)
    with ctx.store.lock:
        project = recovery.deleted_project_for(ctx, key_of(request), project_id)
        recovery.recover_project(ctx, project)
        return respond(
            {
                "project": serialize.project(project, ctx.clock.now()),
                "branches": [serialize.branch(b) for b in project.branches.values()],
            }
        )


@router.get("/projects/{project_id}/permissions")
async def list_permissions(request: Request) -> Response:
    ctx = ctx_of(request)
    project_id = path_id(request, "project_id")
    with ctx.store.lock:
        project = ctx.project_for(key_of(request), project_id)
        return respond(
            {"project_permissions": [serialize.permission(p) for p in projects.live_permissions(project)]}
        )


@router.post("/projects/{project_id}/permissions")
async def grant_permission(request: Request, project_id: ProjectId, body: PermissionGrantBody) -> Response:
    ctx = ctx_of(request)
    with ctx.store.lock:
        project = ctx.project_for(key_of(request), project_id)
        return respond(serialize.permission(projects.grant_permission(ctx, project, body.email)))


@router.delete("/projects/{project_id}/permissions/{permission_id}")
async def revoke_permission(request: Request, project_id: ProjectId, permission_id: str) -> Response:
    ctx = ctx_of(request)
    with ctx.store.lock:
        project = ctx.project_for(key_of(request), project_id)
        return respond(serialize.permission(projects.revoke_permission(ctx, project, permission_id)))
