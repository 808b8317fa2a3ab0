"""Databases of a branch: list, get, create, update (rename, new owner), delete."""

from __future__ import annotations

from fastapi import Request
from starlette.responses import Response

from jambo_emulator.api import serialize
from jambo_emulator.api.bodies import DatabaseCreateBody, DatabaseUpdateBody
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
from jambo_emulator.state.records import Database

router = api_router()
BASE = "/projects/{project_id}/branches/{branch_id}/databases"


@router.get(BASE)
async def list_databases(request: Request, project_id: ProjectId, branch_id: BranchId) -> Response:
    ctx = ctx_of(request)
    with ctx.store.lock:
        _, branch = ctx.project_branch(key_of(request), project_id, branch_id)
        return respond({"databases": [serialize.database(d) for d in branch.databases.values()]})


@router.get(BASE + "/{database_name}")
async def get_database(
    request: Request, project_id: ProjectId, branch_id: BranchId, database_name: str
) -> Response:
    ctx = ctx_of(request)
    with ctx.store.lock:
        _, branch = ctx.project_branch(key_of(request), project_id, branch_id)
        return respond({"database": serialize.database(found(branch.databases, database_name, "database"))})


@router.post(BASE)
async def create_database(
    request: Request, project_id: ProjectId, branch_id: BranchId, body: DatabaseCreateBody
) -> Response:
    ctx = ctx_of(request)
    name, owner = body.database.name, body.database.owner_name
    with ctx.store.lock:
        project, branch = ctx.project_branch(key_of(request), project_id, branch_id)
        if name in branch.databases:
            raise ApiError(409, "database already exists")
        if owner not in branch.roles:
            raise bad_request(f"invalid database.owner_name: role {owner!r} does not exist on this branch")
        dp, pid, bid = ctx.data_plane, project.id, branch.id
        ops = databases_roles.config_ops(
            ctx, project, branch, lambda: dp.create_database(pid, bid, name, owner), f"create database {name}"
        )
        now = ctx.clock.now()
        database = Database(ctx.ids.integer(), branch.id, name, owner, now, now)
        branch.databases[name] = database
        return with_operations("database", serialize.database(database), ops, now, 201)


@router.patch(BASE + "/{database_name}")
async def update_database(
    request: Request, project_id: ProjectId, branch_id: BranchId, database_name: str, body: DatabaseUpdateBody
) -> Response:
    ctx = ctx_of(request)
    name, owner = body.database.name, body.database.owner_name
    with ctx.store.lock:
        project, branch = ctx.project_branch(key_of(request), project_id, branch_id)
        database = found(branch.databases, database_name, "database")
        if name is not None and name != database_name and name in branch.databases:
            raise ApiError(409, "database already exists")
        if owner is not None and owner not in branch.roles:
            raise bad_request(f"invalid database.owner_name: role {owner!r} does not exist on this branch")
        new_name = name if name not in (None, database_name) else None
        new_owner = owner if owner not in (None, database.owner_name) else None
        dp, pid, bid = ctx.data_plane, project.id, branch.id
        # The real database is renamed (its sessions end, as the compute's restart ends them) and
        # handed to the new owner; the URIs the API builds from the new name then reach it.
        ops = databases_roles.config_ops(
            ctx,
            project,
            branch,
            (lambda: dp.update_database(pid, bid, database_name, new_name=new_name, owner=new_owner))
            if new_name is not None or new_owner is not None
            else None,
            f"update database {database_name}",
        )
        now = ctx.clock.now()
        if name is not None and name != database_name:
            del branch.databases[database_name]
            database.name = name
            branch.databases[name] = database
        if owner is not None:
            database.owner_name = owner
        database.updated_at = now
        return with_operations("database", serialize.database(database), ops, now)


@router.delete(BASE + "/{database_name}")
async def delete_database(
    request: Request, project_id: ProjectId, branch_id: BranchId, database_name: str
) -> Response:
    ctx = ctx_of(request)
    with ctx.store.lock:
        project, branch = ctx.project_branch(key_of(request), project_id, branch_id)
        database = branch.databases.get(database_name)
        if database is None:
            return no_content()
        dp, pid, bid = ctx.data_plane, project.id, branch.id
        ops = databases_roles.config_ops(
            ctx,
            project,
            branch,
            lambda: dp.delete_database(pid, bid, database_name),
            f"delete database {database_name}",
        )
        del branch.databases[database_name]
        return with_operations("database", serialize.database(database), ops, ctx.clock.now())
