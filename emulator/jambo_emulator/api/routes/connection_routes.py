"""Connection URI of a branch's compute (direct or pooled)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query, Request
from starlette.responses import Response

from jambo_emulator.api import serialize
from jambo_emulator.api.gate import api_router
from jambo_emulator.api.routes.helpers import ProjectId, ctx_of, key_of, respond
from jambo_emulator.state.errors import ApiError, not_found
from jambo_emulator.state.ids import ID_PATTERN
from jambo_emulator.state.records import Endpoint

router = api_router()


@router.get("/projects/{project_id}/connection_uri")
async def connection_uri(
    request: Request,
    project_id: ProjectId,
    database_name: str,
    role_name: str,
    branch_id: Annotated[str | None, Query(pattern=ID_PATTERN)] = None,
    endpoint_id: Annotated[str | None, Query(pattern=ID_PATTERN)] = None,
    pooled: bool = False,
) -> Response:
    ctx = ctx_of(request)
    with ctx.store.lock:
        project = ctx.project_for(key_of(request), project_id)
        branch = ctx.branch_in(project, branch_id) if branch_id else project.default_branch()
        endpoint: Endpoint | None
        if endpoint_id:
            endpoint = ctx.endpoint_in(project, endpoint_id)
            if endpoint.branch_id != branch.id:
                raise ApiError(400, f"endpoint {endpoint_id} does not belong to branch {branch.id}")
        else:
            endpoint = next((e for e in project.branch_endpoints(branch.id) if e.type == "read_write"), None)
            if endpoint is None:
                raise ApiError(404, "read-write endpoint not found for this branch")
        if database_name not in branch.databases:
            raise not_found("database")
        role = branch.roles.get(role_name)
        if role is None:
            raise not_found("role")
        return respond({"uri": serialize.connection_uri(endpoint, database_name, role, pooled=pooled)})
