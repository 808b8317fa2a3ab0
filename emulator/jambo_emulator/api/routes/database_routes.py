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
from jambo_emulator.state.errors import found

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
    with ctx.store.lock:
        project, branch = ctx.project_branch(key_of(request), project_id, branch_id)
        database, ops = databases_roles.create_database(
            ctx, project, branch, body.database.name, body.database.owner_name
        )
        return with_operations("database", serialize.database(database), ops, ctx.clock.now(), 201)


@router.patch(BASE + "/{database_name}")
async def update_database(
    request: Request, project_id: ProjectId, branch_id: BranchId, database_name: str, body: DatabaseUpdateBody
) -> Response:
    ctx = ctx_of(request)
    with ctx.store.lock:
        project, branch = ctx.project_branch(key_of(request), project_id, branch_id)
        database, ops = databases_roles.update_database(
            ctx, project, branch, database_name, name=body.database.name, owner=body.database.owner_name
        )
        return with_operations("database", serialize.database(database), ops, ctx.clock.now())


@router.delete(BASE + "/{database_name}")
async def delete_database(
    request: Request, project_id: ProjectId, branch_id: BranchId, database_name: str
) -> Response:
    ctx = ctx_of(request)
    with ctx.store.lock:
        project, branch = ctx.project_branch(key_of(request), project_id, branch_id)
        deleted = databases_roles.delete_database(ctx, project, branch, database_name)
        if deleted is None:
            return no_content()
        database, ops = deleted
        return with_operations("database", serialize.database(database), ops, ctx.clock.now())
