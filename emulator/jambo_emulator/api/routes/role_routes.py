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
from jambo_emulator.state.errors import ApiError, bad_request, found
from jambo_emulator.state.records import Role

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
    name = body.role.name
    with ctx.store.lock:
        project, branch = ctx.project_branch(key_of(request), project_id, branch_id)
        if name in branch.roles:
            raise ApiError(409, "role already exists")
        now = ctx.clock.now()
        role = Role(branch.id, name, ctx.ids.password(), now, now, no_login=bool(body.role.no_login))
        dp, pid, bid, password = ctx.data_plane, project.id, branch.id, role.password
        ops = databases_roles.config_ops(
            ctx, project, branch, lambda: dp.create_role(pid, bid, name, password), f"create role {name}"
        )
        branch.roles[name] = role
        return with_operations("role", serialize.role(role, with_password=True), ops, now, 201)


@router.delete(BASE + "/{role_name}")
async def delete_role(
    request: Request, project_id: ProjectId, branch_id: BranchId, role_name: str
) -> Response:
    ctx = ctx_of(request)
    with ctx.store.lock:
        project, branch = ctx.project_branch(key_of(request), project_id, branch_id)
        role = branch.roles.get(role_name)
        if role is None:
            return no_content()
        owned = [d.name for d in branch.databases.values() if d.owner_name == role_name]
        if owned:
            raise bad_request(f"role {role_name!r} owns database(s) {', '.join(owned)}: delete them first")
        dp, pid, bid = ctx.data_plane, project.id, branch.id
        ops = databases_roles.config_ops(
            ctx, project, branch, lambda: dp.delete_role(pid, bid, role_name), f"delete role {role_name}"
        )
        del branch.roles[role_name]
        return with_operations("role", serialize.role(role), ops, ctx.clock.now())


@router.get(BASE + "/{role_name}/reveal_password")
async def reveal_password(
    request: Request, project_id: ProjectId, branch_id: BranchId, role_name: str
) -> Response:
    ctx = ctx_of(request)
    with ctx.store.lock:
        project, branch = ctx.project_branch(key_of(request), project_id, branch_id)
        role = found(branch.roles, role_name, "role")
        if not project.store_passwords:
            raise ApiError(412, "storing passwords is disabled for this project")
        return respond({"password": role.password})


@router.post(BASE + "/{role_name}/reset_password")
async def reset_password(
    request: Request, project_id: ProjectId, branch_id: BranchId, role_name: str
) -> Response:
    ctx = ctx_of(request)
    with ctx.store.lock:
        project, branch = ctx.project_branch(key_of(request), project_id, branch_id)
        role = found(branch.roles, role_name, "role")
        password = ctx.ids.password()
        dp, pid, bid = ctx.data_plane, project.id, branch.id
        ops = databases_roles.config_ops(
            ctx,
            project,
            branch,
            lambda: dp.set_role_password(pid, bid, role_name, password),
            f"reset password of role {role_name}",
        )
        now = ctx.clock.now()
        role.password, role.updated_at = password, now
        return with_operations("role", serialize.role(role, with_password=True), ops, now)
