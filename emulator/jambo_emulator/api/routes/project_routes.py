"""Projects: list (cursor/limit/search), shared ones, create, get, update, delete, permissions."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Query, Request
from starlette.responses import Response

from jambo_emulator.api import serialize
from jambo_emulator.api.bodies import (
    ID_PATTERN,
    PermissionGrantBody,
    ProjectCreateBody,
    ProjectUpdateBody,
)
from jambo_emulator.api.gate import api_router
from jambo_emulator.api.routes.helpers import ProjectId, ctx_of, key_of, path_id, respond
from jambo_emulator.resources import endpoints, projects, recovery
from jambo_emulator.resources.access import can_see
from jambo_emulator.state.errors import ApiError, bad_request, not_found
from jambo_emulator.state.records import Permission, Project

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
    """Oldest first; the cursor is the last item's project id. ``deleted``: the recoverable
    deleted projects instead of the live ones."""
    ctx, key = ctx_of(request), key_of(request)
    with ctx.store.lock:
        after = 0
        if cursor:
            if cursor not in ctx.store.project_seq:
                raise bad_request("invalid cursor: pass pagination.cursor from a previous response unchanged")
            after = ctx.store.project_seq[cursor]
        needle = search.lower() if search else None
        items = []
        candidates = recovery.deleted_projects(ctx) if deleted else ctx.store.projects.values()
        for project in candidates:  # in creation order
            if project.seq <= after or not can_see(key, project) or not keep(project):
                continue
            if needle and needle not in project.name.lower() and needle not in project.id:
                continue
            items.append(project)
            if len(items) == limit:
                break
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
    return _list(request, cursor, limit, search, _shared_with_user, shared=True)


def _shared_with_user(project: Project) -> bool:
    return any(
        p.email.lower() == serialize.USER_EMAIL and p.revoked_at is None for p in project.permissions.values()
    )


@router.post("/projects")
async def create_project(request: Request, body: ProjectCreateBody) -> Response:
    ctx, key = ctx_of(request), key_of(request)
    fields = body.project
    if key.project_id is not None:
        raise ApiError(403, "a project-scoped API key cannot create projects")
    if key.org_id is not None and fields.org_id not in (None, key.org_id):
        raise ApiError(403, "an organization API key creates projects in its own organization only")
    defaults = (
        fields.default_endpoint_settings.model_dump(exclude_none=True)
        if fields.default_endpoint_settings
        else {}
    )
    # Deprecated top-level compute limits still count when the new settings do not say otherwise.
    if fields.autoscaling_limit_min_cu is not None:
        defaults.setdefault("autoscaling_limit_min_cu", fields.autoscaling_limit_min_cu)
    if fields.autoscaling_limit_max_cu is not None:
        defaults.setdefault("autoscaling_limit_max_cu", fields.autoscaling_limit_max_cu)
    min_cu = float(defaults.get("autoscaling_limit_min_cu", 0.25))
    max_cu = float(defaults.get("autoscaling_limit_max_cu", max(min_cu, 0.25)))
    endpoints.check_compute_units(min_cu, max_cu)
    defaults["autoscaling_limit_min_cu"], defaults["autoscaling_limit_max_cu"] = min_cu, max_cu
    branch = fields.branch
    spec = projects.ProjectSpec(
        name=fields.name,
        region_id=fields.region_id,
        pg_version=fields.pg_version or 17,
        branch_name=(branch.name if branch and branch.name else "main"),
        role_name=branch.role_name if branch else None,
        database_name=(branch.database_name if branch and branch.database_name else "neondb"),
        org_id=fields.org_id or key.org_id,
        store_passwords=True if fields.store_passwords is None else fields.store_passwords,
        history_retention_seconds=86400
        if fields.history_retention_seconds is None
        else fields.history_retention_seconds,
        settings=fields.settings or {},
        default_endpoint_settings=defaults,
        annotations=branch.annotations if branch else None,
    )
    if spec.role_name is None and len(f"{spec.database_name}_owner") > 63:
        raise bad_request("invalid project.branch.role_name: the default role name would exceed 63 bytes")
    with ctx.store.lock:
        created = projects.create_project(ctx, spec)
        now = ctx.clock.now()
        branch_rec = created.branch
        endpoint = created.endpoints[0]
        role = next(iter(branch_rec.roles.values()))
        database = next(iter(branch_rec.databases.values()))
        payload = {
            "project": serialize.project(created.project, now),
            "connection_uris": [serialize.connection_details(endpoint, database, role)],
            "roles": [serialize.role(role, with_password=True)],
            "databases": [serialize.database(database)],
            "operations": serialize.operations(created.operations, now),
            "branch": serialize.branch(branch_rec),
            "endpoints": [serialize.endpoint(endpoint)],
        }
    return respond(payload, 201)


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
    fields = body.project
    with ctx.store.lock:
        project = ctx.project_for(key_of(request), project_id)
        if fields.name is not None:
            project.name = fields.name
        if fields.settings is not None:
            project.settings = fields.settings
        if fields.default_endpoint_settings is not None:
            merged = {
                **project.default_endpoint_settings,
                **fields.default_endpoint_settings.model_dump(exclude_none=True),
            }
            endpoints.check_compute_units(
                float(merged.get("autoscaling_limit_min_cu", 0.25)),
                float(merged.get("autoscaling_limit_max_cu", 0.25)),
            )
            project.default_endpoint_settings = merged
        if fields.history_retention_seconds is not None:
            project.history_retention_seconds = fields.history_retention_seconds
        now = ctx.clock.now()
        project.updated_at = now
        return respond({"project": serialize.project(project, now), "operations": []})


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
        live = [p for p in project.permissions.values() if p.revoked_at is None]
        return respond({"project_permissions": [serialize.permission(p) for p in live]})


@router.post("/projects/{project_id}/permissions")
async def grant_permission(request: Request, project_id: ProjectId, body: PermissionGrantBody) -> Response:
    ctx = ctx_of(request)
    with ctx.store.lock:
        project = ctx.project_for(key_of(request), project_id)
        email = body.email.lower()
        for existing in project.permissions.values():
            if existing.email == email and existing.revoked_at is None:
                return respond(serialize.permission(existing))  # granting twice changes nothing
        permission = Permission(str(ctx.ids.operation_id()), email, ctx.clock.now())
        project.permissions[permission.id] = permission
        return respond(serialize.permission(permission))


@router.delete("/projects/{project_id}/permissions/{permission_id}")
async def revoke_permission(request: Request, project_id: ProjectId, permission_id: str) -> Response:
    ctx = ctx_of(request)
    with ctx.store.lock:
        project = ctx.project_for(key_of(request), project_id)
        permission = project.permissions.get(permission_id)
        if permission is None or permission.revoked_at is not None:
            raise not_found("permission")
        permission.revoked_at = ctx.clock.now()
        return respond(serialize.permission(permission))
