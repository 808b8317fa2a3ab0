"""Connection URI of a branch's compute (direct or pooled)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query, Request
from starlette.responses import Response

from jambo_emulator.api import serialize
from jambo_emulator.api.gate import api_router
from jambo_emulator.api.routes.helpers import ProjectId, ctx_of, key_of, respond
from jambo_emulator.resources import endpoints
from jambo_emulator.state.ids import ID_PATTERN

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
        endpoint, role = endpoints.connection_target(
            ctx,
            project,
            branch_id=branch_id,
            endpoint_id=endpoint_id,
            database_name=database_name,
            role_name=role_name,
        )
        return respond({"uri": serialize.connection_uri(endpoint, database_name, role, pooled=pooled)})
