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
from jambo_emulator.state.errors import bad_request
from jambo_emulator.state.records import Branch, Operation

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
    after = None
    if cursor:
        state = decode_cursor(cursor, required=("v", "s", "by", "order"))
        if state["by"] != sort_by or state["order"] != sort_order:
            raise bad_request("invalid cursor: sort_by and sort_order must match the previous request")
        after = (state["v"], state["s"])
    with ctx.store.lock:
        project = ctx.project_for(key_of(request), project_id)
        page, more = branches.list_branches(
            ctx,
            project,
            search=search,
            sort_by=sort_by,
            descending=sort_order == "desc",
            after=after,
            limit=limit,
            include_deleted=include_deleted,
        )
        pagination: dict[str, Any] = {"sort_by": sort_by, "sort_order": sort_order.upper()}
        if more:
            value, seq = branches.sort_key(page[-1], sort_by)
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
        return respond({"count": branches.count_branches(project, search)})


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
    spec = (body or BranchCreateBody()).to_spec()
    with ctx.store.lock:
        project = ctx.project_for(key_of(request), project_id)
        created = branches.create_branch(ctx, project, spec)
        return respond(serialize.branch_created(created, ctx.clock.now()), 201)


def _branch_ops(ctx: EmulatorContext, branch: Branch, ops: list[Operation], status: int = 200) -> Response:
    return with_operations("branch", serialize.branch(branch), ops, ctx.clock.now(), status)


@router.patch("/projects/{project_id}/branches/{branch_id}")
async def update_branch(
    request: Request, project_id: ProjectId, branch_id: BranchId, body: BranchUpdateBody
) -> Response:
    ctx = ctx_of(request)
    change = body.to_change()
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
        deleted = branches.remove_branch(ctx, project, branch_id, hard=hard_delete)
        if deleted is None:
            return no_content()  # already gone: the service answers 204
        return _branch_ops(ctx, *deleted)


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
    spec = body.to_spec()
    with ctx.store.lock:
        project, branch = ctx.project_branch(key_of(request), project_id, branch_id)
        return _branch_ops(ctx, branch, branches.restore_branch(ctx, project, branch, spec))


@router.post("/projects/{project_id}/branches/{branch_id}/set_as_default")
async def set_default_branch(request: Request, project_id: ProjectId, branch_id: BranchId) -> Response:
    ctx = ctx_of(request)
    with ctx.store.lock:
        project, branch = ctx.project_branch(key_of(request), project_id, branch_id)
        branches.set_default_branch(ctx, project, branch)
        return _branch_ops(ctx, branch, [])
