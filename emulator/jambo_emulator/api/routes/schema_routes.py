"""A branch's database schema (data plane pg_dump, or a plausible generated one) and schema diffs."""

from __future__ import annotations

import asyncio
import difflib
from typing import Annotated, Any

from fastapi import Query, Request
from starlette.responses import Response

from jambo_emulator.api.gate import api_router
from jambo_emulator.api.routes.helpers import BranchId, ProjectId, ctx_of, key_of, respond
from jambo_emulator.dataplane.base import PointInTime
from jambo_emulator.resources.branches import point_in_time
from jambo_emulator.resources.context import EmulatorContext
from jambo_emulator.state.clock import parse_timestamp
from jambo_emulator.state.dataplane_runner import log_failure
from jambo_emulator.state.errors import ApiError, bad_request, not_found
from jambo_emulator.state.ids import ID_PATTERN
from jambo_emulator.state.records import Branch

router = api_router()


def generated_ddl(database: str, owner: str) -> str:
    """What ``pg_dump --schema-only`` prints for an empty database (no data plane to ask)."""
    return (
        "--\n-- PostgreSQL database dump\n--\n\n"
        "SET statement_timeout = 0;\nSET lock_timeout = 0;\nSET client_encoding = 'UTF8';\n"
        "SET standard_conforming_strings = on;\n"
        "SELECT pg_catalog.set_config('search_path', '', false);\n\n"
        f"-- Database: {database}\n-- Owner: {owner}\n\n"
        "--\n-- PostgreSQL database dump complete\n--\n"
    )


async def _schema_sql(
    ctx: EmulatorContext, project_id: str, branch: Branch, database: str, at: PointInTime | None
) -> str:
    owner = branch.databases[database].owner_name
    if not ctx.runner.enabled:
        return generated_ddl(database, owner)
    dp, bid = ctx.data_plane, branch.id
    future = ctx.runner.submit(lambda: dp.schema_dump(project_id, bid, database, at=at))
    try:
        dump = await asyncio.wrap_future(future)
    except Exception as exc:  # noqa: BLE001 - a data-plane failure must become an API error, not a traceback
        log_failure("schema_dump", exc, f"{project_id}/{bid}/{database}")
        raise ApiError(503, f"could not read the schema of database {database!r}; try again") from None
    return dump if dump is not None else generated_ddl(database, owner)


def _point(
    ctx: EmulatorContext,
    request: Request,
    project_id: str,
    branch: Branch,
    lsn: str | None,
    timestamp: str | None,
    prefix: str = "",
) -> PointInTime | None:
    ts = parse_timestamp(timestamp, f"{prefix}timestamp") if timestamp is not None else None
    with ctx.store.lock:
        project = ctx.project_for(key_of(request), project_id)
        return point_in_time(ctx, project, branch, lsn=lsn, timestamp=ts, prefix=prefix)


#: Branch states whose data is not there yet (being copied) or is being replaced (a restore).
NOT_READY_STATES = frozenset({"init", "resetting"})


def _lookup(ctx: EmulatorContext, request: Request, project_id: str, branch_id: str, db_name: str) -> Branch:
    """The branch whose schema is read; 422 ``branch not ready yet`` while its data is not settled.

    The behaviour notes: using a branch before its ``create_branch`` finishes has given users
    "branch not ready" errors, and the service's 422 ``branch not ready yet`` is worth retrying.
    Reading a schema is the API request that uses the branch's data.
    """
    with ctx.store.lock:
        _, branch = ctx.project_branch(key_of(request), project_id, branch_id)
        if db_name not in branch.databases:
            raise not_found("database")
        if branch.current_state in NOT_READY_STATES:
            raise ApiError(422, "branch not ready yet")
        return branch


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
    if format not in ("sql", "json"):
        raise bad_request(f"invalid format {format!r}: must be sql or json")
    branch = _lookup(ctx, request, project_id, branch_id, db_name)
    at = _point(ctx, request, project_id, branch, lsn, timestamp)
    if format == "json":
        body: dict[str, Any] = {"json": {"tables": []}}
        return respond(body)
    return respond({"sql": await _schema_sql(ctx, project_id, branch, db_name, at)})


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
    branch = _lookup(ctx, request, project_id, branch_id, db_name)
    base_id = base_branch_id or branch.parent_id
    if base_id is None:
        raise bad_request("base_branch_id is required: the branch has no parent to compare with")
    base = _lookup(ctx, request, project_id, base_id, db_name)
    at = _point(ctx, request, project_id, branch, lsn, timestamp)
    base_at = _point(ctx, request, project_id, base, base_lsn, base_timestamp, "base_")
    base_sql = await _schema_sql(ctx, project_id, base, db_name, base_at)
    branch_sql = await _schema_sql(ctx, project_id, branch, db_name, at)
    diff = "".join(
        difflib.unified_diff(
            base_sql.splitlines(keepends=True),
            branch_sql.splitlines(keepends=True),
            fromfile=f"{base.id}/{db_name}",
            tofile=f"{branch.id}/{db_name}",
        )
    )
    return respond({"diff": diff})
