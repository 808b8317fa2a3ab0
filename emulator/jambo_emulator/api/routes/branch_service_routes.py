"""What a branch has of the services the emulator does not provide: nothing.

Neon Auth, the Data API, functions and branch credentials cannot be set up on the emulator (their
create, enable and deploy operations answer 501 ``NOT_EMULATED``), so on every branch none of them
exists, and the reads say so as the service does for a branch without them: ``getNeonAuth`` and
``getProjectBranchDataAPI`` answer 404, ``listProjectBranchFunctions`` and ``listCredentials`` an
empty list. A client that checks what a branch has before using it (the official CLI's ``status``
and ``link``, whose env pull reads all four) then carries on with what the emulator does provide.
The project and branch (and, for the Data API, the database) must exist, as for any branch read.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Query, Request
from starlette.responses import Response

from jambo_emulator.api.gate import api_router
from jambo_emulator.api.routes.helpers import BranchId, ProjectId, ctx_of, key_of, respond
from jambo_emulator.state.errors import bad_request, found, not_found

router = api_router()
BRANCH = "/projects/{project_id}/branches/{branch_id}"


@router.get(BRANCH + "/auth")
async def get_neon_auth(request: Request, project_id: ProjectId, branch_id: BranchId) -> Response:
    ctx = ctx_of(request)
    with ctx.store.lock:
        ctx.project_branch(key_of(request), project_id, branch_id)
    raise not_found("neon auth integration (Neon Auth is not enabled on this branch)")


@router.get(BRANCH + "/data-api/{database_name}")
async def get_data_api(
    request: Request, project_id: ProjectId, branch_id: BranchId, database_name: str
) -> Response:
    ctx = ctx_of(request)
    with ctx.store.lock:
        _, branch = ctx.project_branch(key_of(request), project_id, branch_id)
        found(branch.databases, database_name, "database")
    raise not_found(f"data api (the Data API is not enabled for database {database_name!r})")


@router.get(BRANCH + "/functions")
async def list_functions(
    request: Request,
    project_id: ProjectId,
    branch_id: BranchId,
    cursor: str | None = None,
    limit: Annotated[int | None, Query(ge=1, le=1000)] = None,
) -> Response:
    ctx = ctx_of(request)
    with ctx.store.lock:
        ctx.project_branch(key_of(request), project_id, branch_id)
    if cursor is not None:  # none was ever handed out: the list has one (empty) page
        raise bad_request("invalid cursor: pass pagination values from a previous response unchanged")
    return respond({"functions": []})


@router.get(BRANCH + "/credentials")
async def list_credentials(request: Request, project_id: ProjectId, branch_id: BranchId) -> Response:
    ctx = ctx_of(request)
    with ctx.store.lock:
        ctx.project_branch(key_of(request), project_id, branch_id)
    return respond({"credentials": []})
