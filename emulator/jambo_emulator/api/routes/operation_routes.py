"""Operations: list (newest first, cursor pagination) and get."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Query, Request
from starlette.responses import Response

from jambo_emulator.api import serialize
from jambo_emulator.api.gate import api_router
from jambo_emulator.api.routes.helpers import (
    ProjectId,
    ctx_of,
    decode_cursor,
    encode_cursor,
    key_of,
    path_id,
    respond,
)
from jambo_emulator.resources import operations
from jambo_emulator.state.clock import parse_timestamp

router = api_router()


@router.get("/projects/{project_id}/operations")
async def list_operations(
    request: Request,
    project_id: ProjectId,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 10,
) -> Response:
    """Newest first; ``pagination.cursor`` (opaque) is present while more operations follow."""
    ctx = ctx_of(request)
    with ctx.store.lock:
        project = ctx.project_for(key_of(request), project_id)
        older_than = before_seq = None
        if cursor and cursor[:1].isdigit() and "T" in cursor:
            # A client may pass the last item's ``created_at`` itself (the service's cursor is that):
            # everything strictly older follows.
            older_than = parse_timestamp(cursor, "cursor")
        elif cursor:
            before_seq = int(decode_cursor(cursor, required=("created_at", "seq"))["seq"])
        page, more = operations.list_page(project, limit=limit, older_than=older_than, before_seq=before_seq)
        now = ctx.clock.now()
        body: dict[str, Any] = {"operations": serialize.operations(page, now)}
        if page and more:
            last = page[-1]
            body["pagination"] = {
                "cursor": encode_cursor({"created_at": serialize.iso(last.created_at), "seq": last.seq})
            }
    return respond(body)


@router.get("/projects/{project_id}/operations/{operation_id}")
async def get_operation(request: Request) -> Response:
    """The pollers' route: parameters are read directly (FastAPI's parsing costs a third of a GET)."""
    ctx = ctx_of(request)
    project_id = path_id(request, "project_id")
    operation_id = path_id(request, "operation_id", uuid=True)
    with ctx.store.lock:
        project = ctx.project_for(key_of(request), project_id)
        op = operations.operation_in(project, operation_id)
        return respond({"operation": serialize.operation(op, ctx.clock.now())})
