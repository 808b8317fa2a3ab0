"""Branches: list, count, get, create, update, delete, recover, restore, set_as_default."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import Query, Request
from starlette.responses import Response

from jambo_emulator.api import serialize
from jambo_emulator.api.bodies import BranchCreateBody, BranchRestoreBody, BranchUpdateBody
from jambo_emulator.api.gate import api_router
from jambo_emulator.api.routes.helpers import (
    BranchId,
    ProjectId,
    ctx_of,
    decode_cursor,
    encode_cursor,
    key_of,
    no_content,
    path_id,
    respond,
    with_operations,
)
from jambo_emulator.resources import branches, recovery
from jambo_emulator.resources.context import EmulatorContext
from jambo_emulator.state.clock import parse_timestamp
from jambo_emulator.state.errors import ApiError, bad_request
from jambo_emulator.state.records import Branch, Operation, Project

router = api_router()


def _matches(branch: Branch, needle: str | None) -> bool:
    return needle is None or needle in branch.name.lower() or needle in branch.id


def _sort_key(branch: Branch, sort_by: str) -> tuple[Any, int]:
    value: Any = branch.name if sort_by == "name" else getattr(branch, sort_by)
    return (value, branch.seq)


@router.get("/projects/{project_id}/branches")
async def list_branches(
    request: Request,
    project_id: ProjectId,
    search: str | None = None,
    sort_by: Literal["name", "created_at", "updated_at"] = "updated_at",
    cursor: str | None = None,
    sort_order: Literal["asc", "desc"] = "desc",
    limit: Annotated[int | None, Query(ge=1, le=10000)] = None,
    include_deleted: bool = False,
) -> Response:
    """Keyset pagination: ``pagination.next`` (opaque) is present while more branches follow."""
    ctx = ctx_of(request)
    with ctx.store.lock:
        project = ctx.project_for(key_of(request), project_id)
        needle = search.lower() if search else None
        candidates = list(project.branches.values())
        if include_deleted:
            now = ctx.clock.now()
            candidates += [
                b for b in project.deleted_branches.values() if recovery.recoverable(b.deleted, now)
            ]
        rows = sorted(
            (b for b in candidates if _matches(b, needle)),
            key=lambda b: _sort_key(b, sort_by),
            reverse=sort_order == "desc",
        )
        if cursor:
            state = decode_cursor(cursor, required=("v", "s", "by", "order"))
            if state["by"] != sort_by or state["order"] != sort_order:
                raise bad_request("invalid cursor: sort_by and sort_order must match the previous request")
            mark = (state["v"], state["s"])
            if sort_order == "desc":
                rows = [b for b in rows if _sort_key(b, sort_by) < mark]
            else:
                rows = [b for b in rows if _sort_key(b, sort_by) > mark]
        page = rows if limit is None else rows[:limit]
        pagination: dict[str, Any] = {"sort_by": sort_by, "sort_order": sort_order.upper()}
        if limit is not None and len(rows) > limit:
            last = page[-1]
            value, seq = _sort_key(last, sort_by)
            pagination["next"] = encode_cursor({"v": value, "s": seq, "by": sort_by, "order": sort_order})
        body = {
            "branches": [serialize.branch(b, with_recovery=True) for b in page],
            "annotations": {b.id: serialize.annotation(b) for b in page if b.annotation},
            "pagination": pagination,
        }
    return respond(body)


@router.get("/projects/{project_id}/branches/count")
async def count_branches(request: Request, project_id: ProjectId, search: str | None = None) -> Response:
    ctx = ctx_of(request)
    with ctx.store.lock:
        project = ctx.project_for(key_of(request), project_id)
        needle = search.lower() if search else None
        return respond({"count": sum(1 for b in project.branches.values() if _matches(b, needle))})


@router.get("/projects/{project_id}/branches/{branch_id}")
async def get_branch(request: Request) -> Response:
    ctx = ctx_of(request)
    project_id, branch_id = path_id(request, "project_id"), path_id(request, "branch_id")
    with ctx.store.lock:
        _, branch = ctx.project_branch(key_of(request), project_id, branch_id)
        return respond({"branch": serialize.branch(branch), "annotation": serialize.annotation(branch)})


@router.post("/projects/{project_id}/branches")
async def create_branch(
    request: Request, project_id: ProjectId, body: BranchCreateBody | None = None
) -> Response:
    ctx = ctx_of(request)
    fields = body.branch if body is not None and body.branch is not None else None
    spec = branches.BranchSpec(
        name=fields.name if fields else None,
        parent_id=fields.parent_id if fields else None,
        parent_lsn=fields.parent_lsn if fields else None,
        parent_timestamp=(
            parse_timestamp(fields.parent_timestamp, "branch.parent_timestamp")
            if fields and fields.parent_timestamp is not None
            else None
        ),
        protected=bool(fields.protected) if fields else False,
        archived=bool(fields.archived) if fields else False,
        init_source=fields.init_source if fields else None,
        expires_at=(
            parse_timestamp(fields.expires_at, "branch.expires_at")
            if fields and fields.expires_at is not None
            else None
        ),
        annotation=body.annotation_value if body is not None else None,
    )
    for opts in (body.endpoints or []) if body is not None else []:
        min_cu = opts.autoscaling_limit_min_cu
        max_cu = opts.autoscaling_limit_max_cu
        spec.endpoints.append(
            {
                "type": opts.type,
                "min_cu": min_cu if min_cu is not None else 0.25,
                "max_cu": max_cu if max_cu is not None else max(min_cu or 0.25, 0.25),
                "suspend_timeout_seconds": opts.suspend_timeout_seconds or 0,
                "provisioner": opts.provisioner,
                "settings": opts.settings.model_dump(exclude_none=True) if opts.settings else None,
            }
        )
    with ctx.store.lock:
        project = ctx.project_for(key_of(request), project_id)
        if project.default_endpoint_settings:
            for ep in spec.endpoints:  # the project's defaults fill what the request left out
                _apply_defaults(ep, project, body, spec.endpoints.index(ep))
        created = branches.create_branch(ctx, project, spec)
        now = ctx.clock.now()
        branch = created.branch
        payload: dict[str, Any] = {
            "branch": serialize.branch(branch),
            "endpoints": [serialize.endpoint(e) for e in created.endpoints],
            "operations": serialize.operations(created.operations, now),
            "roles": [serialize.role(r) for r in branch.roles.values()],
            "databases": [serialize.database(d) for d in branch.databases.values()],
        }
        if created.endpoints:
            target = next((e for e in created.endpoints if e.type == "read_write"), created.endpoints[0])
            payload["connection_uris"] = [
                serialize.connection_details(target, db, branch.roles[db.owner_name])
                for db in branch.databases.values()
                if db.owner_name in branch.roles
            ]
    return respond(payload, 201)


def _apply_defaults(ep: dict[str, Any], project: Project, body: BranchCreateBody | None, index: int) -> None:
    assert body is not None
    assert body.endpoints is not None
    given = body.endpoints[index]
    defaults = project.default_endpoint_settings
    if given.autoscaling_limit_min_cu is None and "autoscaling_limit_min_cu" in defaults:
        ep["min_cu"] = float(defaults["autoscaling_limit_min_cu"])
    if given.autoscaling_limit_max_cu is None and "autoscaling_limit_max_cu" in defaults:
        ep["max_cu"] = max(float(defaults["autoscaling_limit_max_cu"]), ep["min_cu"])
    if given.suspend_timeout_seconds is None and "suspend_timeout_seconds" in defaults:
        ep["suspend_timeout_seconds"] = int(defaults["suspend_timeout_seconds"])


def _branch_ops(ctx: EmulatorContext, branch: Branch, ops: list[Operation], status: int = 200) -> Response:
    return with_operations("branch", serialize.branch(branch), ops, ctx.clock.now(), status)


@router.patch("/projects/{project_id}/branches/{branch_id}")
async def update_branch(
    request: Request, project_id: ProjectId, branch_id: BranchId, body: BranchUpdateBody
) -> Response:
    ctx = ctx_of(request)
    fields = body.branch
    expires_at = None
    if fields.given("expires_at") and fields.expires_at is not None:
        expires_at = parse_timestamp(fields.expires_at, "branch.expires_at")
    change = branches.BranchUpdate(
        name=fields.name,
        protected=fields.protected,
        expires_at_given=fields.given("expires_at"),
        expires_at=expires_at,
    )
    with ctx.store.lock:
        project, branch = ctx.project_branch(key_of(request), project_id, branch_id)
        branches.update_branch(ctx, project, branch, change)
        return _branch_ops(ctx, branch, [])


@router.delete("/projects/{project_id}/branches/{branch_id}")
async def delete_branch(
    request: Request, project_id: ProjectId, branch_id: BranchId, hard_delete: bool = False
) -> Response:
    ctx = ctx_of(request)
    with ctx.store.lock:
        project = ctx.project_for(key_of(request), project_id)
        branch = project.branches.get(branch_id)
        if branch is None:
            if hard_delete:  # a deleted branch's kept data goes now
                recovery.purge_branch(ctx, project, branch_id)
            return no_content()  # already gone: the service answers 204
        ops = branches.delete_branch(ctx, project, branch, hard=hard_delete)
        branch.updated_at = ctx.clock.now()
        return _branch_ops(ctx, branch, ops)


@router.post("/projects/{project_id}/branches/{branch_id}/recover")
async def recover_branch(request: Request, project_id: ProjectId, branch_id: BranchId) -> Response:
    ctx = ctx_of(request)
    with ctx.store.lock:
        project = ctx.project_for(key_of(request), project_id)
        branch = recovery.recover_branch(ctx, project, branch_id)
        endpoints = project.branch_endpoints(branch.id)
        return respond(
            {"branch": serialize.branch(branch), "endpoints": [serialize.endpoint(e) for e in endpoints]}
        )


@router.post("/projects/{project_id}/branches/{branch_id}/restore")
async def restore_branch(
    request: Request, project_id: ProjectId, branch_id: BranchId, body: BranchRestoreBody
) -> Response:
    ctx = ctx_of(request)
    source_ts = (
        parse_timestamp(body.source_timestamp, "source_timestamp")
        if body.source_timestamp is not None
        else None
    )
    with ctx.store.lock:
        project, branch = ctx.project_branch(key_of(request), project_id, branch_id)
        source = project.branches.get(body.source_branch_id)
        if source is None:
            raise ApiError(404, "source branch not found")
        ops = branches.restore_branch(
            ctx,
            project,
            branch,
            source,
            source_lsn=body.source_lsn,
            source_timestamp=source_ts,
            preserve_under_name=body.preserve_under_name or None,
        )
        return _branch_ops(ctx, branch, ops)


@router.post("/projects/{project_id}/branches/{branch_id}/set_as_default")
async def set_default_branch(request: Request, project_id: ProjectId, branch_id: BranchId) -> Response:
    ctx = ctx_of(request)
    with ctx.store.lock:
        project, branch = ctx.project_branch(key_of(request), project_id, branch_id)
        branches.set_default_branch(ctx, project, branch)
        return _branch_ops(ctx, branch, [])
