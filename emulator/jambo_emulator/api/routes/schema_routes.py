"""A branch's database schema and schema diffs (the rules: ``resources/branch_schema.py``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Query, Request
from starlette.responses import Response

from jambo_emulator.api.gate import api_router
from jambo_emulator.api.routes.helpers import BranchId, ProjectId, ctx_of, key_of, respond
from jambo_emulator.resources import branch_schema
from jambo_emulator.state.ids import ID_PATTERN

router = api_router()


@router.get("/projects/{project_id}/branches/{branch_id}/schema")
async def get_schema(
    request: Request,
    project_id: ProjectId,
    branch_id: BranchId,
    db_name: str,
    lsn: str | None = None,
    timestamp: str | None = None,
    format: str = "sql",
) -> Response:
    ctx = ctx_of(request)
    branch_schema.check_format(format)
    with ctx.store.lock:
        project = ctx.project_for(key_of(request), project_id)
        branch = branch_schema.readable(ctx, project, branch_id, db_name)
        at = branch_schema.point(ctx, project, branch, lsn, timestamp)
    if format == "json":
        body: dict[str, Any] = {"json": {"tables": []}}
        return respond(body)
    return respond({"sql": await branch_schema.schema_sql(ctx, project_id, branch, db_name, at)})


@router.get("/projects/{project_id}/branches/{branch_id}/compare_schema")
async def compare_schema(
    request: Request,
    project_id: ProjectId,
    branch_id: BranchId,
    db_name: str,
    base_branch_id: Annotated[str | None, Query(pattern=ID_PATTERN)] = None,
    lsn: str | None = None,
    timestamp: str | None = None,
    base_lsn: str | None = None,
    base_timestamp: str | None = None,
) -> Response:
    """Unified diff from the base branch (default: the parent) to this branch."""
    ctx = ctx_of(request)
    with ctx.store.lock:
        project = ctx.project_for(key_of(request), project_id)
        branch = branch_schema.readable(ctx, project, branch_id, db_name)
        base = branch_schema.readable(
            ctx, project, branch_schema.base_branch_id(branch, base_branch_id), db_name
        )
        at = branch_schema.point(ctx, project, branch, lsn, timestamp)
        base_at = branch_schema.point(ctx, project, base, base_lsn, base_timestamp, "base_")
    base_sql = await branch_schema.schema_sql(ctx, project_id, base, db_name, base_at)
    branch_sql = await branch_schema.schema_sql(ctx, project_id, branch, db_name, at)
    return respond({"diff": branch_schema.diff(base, base_sql, branch, branch_sql, db_name)})
