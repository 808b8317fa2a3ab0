"""Roles of a branch: list, get, create, delete, reveal_password, reset_password."""

from __future__ import annotations

from fastapi import Request
from starlette.responses import Response

from jambo_emulator.api import serialize
from jambo_emulator.api.bodies import RoleCreateBody
from jambo_emulator.api.gate import api_router
from jambo_emulator.api.routes.helpers import (
    BranchId,
    ProjectId,
    ctx_of,
    key_of,
    no_content,
    respond,
    with_operations,
)
from jambo_emulator.resources import databases_roles
from jambo_emulator.state.errors import found

router = api_router()
BASE = "/projects/{project_id}/branches/{branch_id}/roles"


@router.get(BASE)
async def list_roles(request: Request, project_id: ProjectId, branch_id: BranchId) -> Response:
    ctx = ctx_of(request)
    with ctx.store.lock:
        _, branch = ctx.project_branch(key_of(request), project_id, branch_id)
        return respond({"roles": [serialize.role(r) for r in branch.roles.values()]})


@router.get(BASE + "/{role_name}")
async def get_role(request: Request, project_id: ProjectId, branch_id: BranchId, role_name: str) -> Response:
    ctx = ctx_of(request)
    with ctx.store.lock:
        _, branch = ctx.project_branch(key_of(request), project_id, branch_id)
        return respond({"role": serialize.role(found(branch.roles, role_name, "role"))})


@router.post(BASE)
async def create_role(
    request: Request, project_id: ProjectId, branch_id: BranchId, body: RoleCreateBody
) -> Response:
    ctx = ctx_of(request)
    with ctx.store.lock:
        project, branch = ctx.project_branch(key_of(request), project_id, branch_id)
        role, ops = databases_roles.create_role(
            ctx, project, branch, body.role.name, no_login=bool(body.role.no_login)
        )
        return with_operations("role", serialize.role(role, with_password=True), ops, ctx.clock.now(), 201)


@router.delete(BASE + "/{role_name}")
async def delete_role(
    request: Request, project_id: ProjectId, branch_id: BranchId, role_name: str
) -> Response:
    ctx = ctx_of(request)
    with ctx.store.lock:
        project, branch = ctx.project_branch(key_of(request), project_id, branch_id)
        deleted = databases_roles.delete_role(ctx, project, branch, role_name)
        if deleted is None:
            return no_content()
        role, ops = deleted
        return with_operations("role", serialize.role(role), ops, ctx.clock.now())


@router.get(BASE + "/{role_name}/reveal_password")
async def reveal_password(
    request: Request, project_id: ProjectId, branch_id: BranchId, role_name: str
) -> Response:
    ctx = ctx_of(request)
    with ctx.store.lock:
        project, branch = ctx.project_branch(key_of(request), project_id, branch_id)
        return respond({"password": databases_roles.reveal_password(project, branch, role_name)})


@router.post(BASE + "/{role_name}/reset_password")
async def reset_password(
    request: Request, project_id: ProjectId, branch_id: BranchId, role_name: str
) -> Response:
    ctx = ctx_of(request)
    with ctx.store.lock:
        project, branch = ctx.project_branch(key_of(request), project_id, branch_id)
        role, ops = databases_roles.reset_password(ctx, project, branch, role_name)
        return with_operations("role", serialize.role(role, with_password=True), ops, ctx.clock.now())
