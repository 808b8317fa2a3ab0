"""A branch's database schema: ``pg_dump --schema-only`` from the data plane (now or at a point
in its history), or a plausible generated one without a data plane; and the diff of two.

Reading a schema is the API request that uses a branch's data, so it answers 422 ``branch not
ready yet`` while the data is being copied or replaced (the behaviour notes: the service's 422 is
worth retrying, and users of other clients met it when using a branch too early).
"""

from __future__ import annotations

import asyncio
import difflib

from jambo_emulator.dataplane.base import PointInTime
from jambo_emulator.resources.branches import point_in_time
from jambo_emulator.resources.context import EmulatorContext
from jambo_emulator.state.clock import parse_timestamp
from jambo_emulator.state.dataplane_runner import log_failure
from jambo_emulator.state.errors import ApiError, bad_request, not_found
from jambo_emulator.state.records import Branch, Project

#: Branch states whose data is not there yet (being copied) or is being replaced (a restore).
NOT_READY_STATES = frozenset({"init", "resetting"})
FORMATS = ("sql", "json")


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


def check_format(format: str) -> None:
    if format not in FORMATS:
        raise bad_request(f"invalid format {format!r}: must be sql or json")


def readable(ctx: EmulatorContext, project: Project, branch_id: str, db_name: str) -> Branch:
    """The branch whose schema is read (404s for the branch or database); 422 while its data is
    not settled. Caller holds the store lock."""
    branch = ctx.branch_in(project, branch_id)
    if db_name not in branch.databases:
        raise not_found("database")
    if branch.current_state in NOT_READY_STATES:
        raise ApiError(422, "branch not ready yet")
    return branch


def point(
    ctx: EmulatorContext,
    project: Project,
    branch: Branch,
    lsn: str | None,
    timestamp: str | None,
    prefix: str = "",
) -> PointInTime | None:
    """The point of the query's ``{prefix}lsn``/``{prefix}timestamp`` (the one history rule)."""
    ts = parse_timestamp(timestamp, f"{prefix}timestamp") if timestamp is not None else None
    return point_in_time(ctx, project, branch, lsn=lsn, timestamp=ts, prefix=prefix)


async def schema_sql(
    ctx: EmulatorContext, project_id: str, branch: Branch, database: str, at: PointInTime | None
) -> str:
    """The dump, read on the data-plane worker without holding the store lock."""
    owner = branch.databases[database].owner_name
    if not ctx.runner.enabled:
        return generated_ddl(database, owner)
    dp, bid = ctx.data_plane, branch.id
    future = ctx.runner.submit(lambda: dp.schema_dump(project_id, bid, database, at=at))
    try:
        dump = await asyncio.wrap_future(future)
    except Exception as exc:  # noqa: BLE001 - any data-plane failure must become an API error, not a traceback
        log_failure("schema_dump", exc, f"{project_id}/{bid}/{database}")
        raise ApiError(503, f"could not read the schema of database {database!r}; try again") from None
    return dump if dump is not None else generated_ddl(database, owner)


def diff(base: Branch, base_sql: str, branch: Branch, branch_sql: str, db_name: str) -> str:
    """Unified diff from the base branch's dump to the branch's."""
    return "".join(
        difflib.unified_diff(
            base_sql.splitlines(keepends=True),
            branch_sql.splitlines(keepends=True),
            fromfile=f"{base.id}/{db_name}",
            tofile=f"{branch.id}/{db_name}",
        )
    )


def base_branch_id(branch: Branch, given: str | None) -> str:
    """What a compare diffs against: the given base branch, else the parent."""
    base_id = given or branch.parent_id
    if base_id is None:
        raise bad_request("base_branch_id is required: the branch has no parent to compare with")
    return base_id
