"""Branches: their rules (names, TTL, init source, points in history, protection), state machine
(init -> ready, resetting during a restore), and what create, update, restore, set-default and
delete do to the store, which operations they schedule and the data-plane calls behind them;
also the TTL expiry job.

Handlers look things up and call these with the store lock held; data-plane calls are only ever
attached to operations (run on the data-plane worker), never made here directly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from jambo_emulator.dataplane.base import PointInTime, parse_lsn
from jambo_emulator.resources import recovery
from jambo_emulator.resources.context import EmulatorContext
from jambo_emulator.resources.endpoints import (
    EndpointSpec,
    add_endpoint,
    branch_compute,
    check_compute_units,
    start_op,
)
from jambo_emulator.state.clock import iso
from jambo_emulator.state.errors import ApiError, bad_request
from jambo_emulator.state.ids import unique
from jambo_emulator.state.records import Branch, Database, Endpoint, Operation, Project, Role

MAX_TTL_SECONDS = 30 * 86400


def point_in_time(
    ctx: EmulatorContext,
    project: Project,
    branch: Branch,
    *,
    lsn: str | None,
    timestamp: float | None,
    prefix: str,
) -> PointInTime | None:
    """The one rule for a point in a branch's history (branch create, restore, schema): at most
    one of ``{prefix}lsn`` / ``{prefix}timestamp``; not in the future; not before the project (or
    the branch) existed; inside the project's ``history_retention_seconds``. A 400 naming the
    field otherwise. Timestamps are converted from the emulator's clock to wall-clock time."""
    if lsn is not None and timestamp is not None:
        raise bad_request(f"{prefix}lsn and {prefix}timestamp cannot be specified at the same time")
    if timestamp is not None:
        now = ctx.clock.now()
        field_name = f"{prefix}timestamp"
        if timestamp > now:
            raise bad_request(f"invalid {field_name}: must not be in the future")
        # Whole seconds: the API reports creation times so, and a client may pass them back.
        if timestamp < math.floor(project.created_at):
            raise bad_request(
                f"invalid {field_name}: {iso(timestamp)} is before the project was created "
                f"({iso(project.created_at)})"
            )
        window_start = now - project.history_retention_seconds
        if timestamp < window_start:
            raise bad_request(
                f"invalid {field_name}: {iso(timestamp)} is outside the project's history retention "
                f"window (history_retention_seconds={project.history_retention_seconds}: "
                f"{iso(window_start)} or later)"
            )
        if branch.restored_from is not None and timestamp < math.floor(branch.created_at):
            raise bad_request(
                f"invalid {field_name}: {iso(timestamp)} is before branch {branch.id} was restored "
                f"from snapshot {branch.restored_from} ({iso(branch.created_at)}): a branch restored "
                "from a snapshot has no history before the restore"
            )
        if timestamp < math.floor(branch.created_at):
            raise bad_request(
                f"invalid {field_name}: {iso(timestamp)} is before branch {branch.id} was created "
                f"({iso(branch.created_at)})"
            )
        # A time the rules above accept, while the branch's data was still being made (the API
        # reports whole seconds, up to one before its creation; the data lands when the creating
        # operation finishes), means the branch as created: the data plane has no earlier state.
        if branch.created_data_at is not None:
            timestamp = max(timestamp, branch.created_data_at)
        return PointInTime(timestamp=ctx.clock.wall_time(timestamp))
    if lsn is not None:
        field_name = f"{prefix}lsn"
        try:
            position = parse_lsn(lsn)
        except ValueError as exc:
            raise bad_request(f"invalid {field_name}: {exc}") from None
        start = ctx.data_plane.history_start(project.id)
        if start is not None and position < parse_lsn(start):
            raise bad_request(f"invalid {field_name}: {lsn} is before the project's history begins ({start})")
        if branch.restore_lsn is not None and position < parse_lsn(branch.restore_lsn):
            raise bad_request(
                f"invalid {field_name}: {lsn} is before branch {branch.id} was restored from snapshot "
                f"{branch.restored_from} ({branch.restore_lsn}): a branch restored from a snapshot "
                "has no history before the restore"
            )
        return PointInTime(lsn=lsn)
    return None


def check_expires_at(ctx: EmulatorContext, expires_at: float, field_name: str) -> int:
    """The TTL rules; returns ``ttl_interval_seconds``."""
    now = ctx.clock.now()
    if expires_at <= now:
        raise bad_request(f"invalid {field_name}: expires_at must be in the future")
    if expires_at - now > MAX_TTL_SECONDS:
        raise bad_request(f"invalid {field_name}: expires_at must be at most 30 days in the future")
    return round(expires_at - now)


@dataclass
class Created:
    project: Project
    branch: Branch
    endpoints: list[Endpoint]
    operations: list[Operation]


def new_branch_record(
    ctx: EmulatorContext, project: Project, name: str | None, *, parent: Branch | None, now: float
) -> Branch:
    # Deleted branches keep their ids: a recovered one must not meet a namesake.
    bid = unique(ctx.ids.branch_id, project.branches.keys() | project.deleted_branches.keys())
    branch = Branch(
        id=bid,
        project_id=project.id,
        name=name or bid,
        created_at=now,
        updated_at=now,
        current_state="init",
        pending_state="ready",
        state_changed_at=now,
        seq=ctx.store.next_seq(),
        parent_id=parent.id if parent is not None else None,
    )
    project.branches[bid] = branch
    return branch


def branch_ready(project: Project, branch: Branch, state: str = "ready") -> Any:
    def ready(op: Operation) -> None:
        if project.branches.get(branch.id) is branch:
            branch.current_state = state
            branch.pending_state = None
            branch.state_changed_at = op.updated_at
            if branch.created_data_at is None:
                branch.created_data_at = op.updated_at

    return ready


def branch_settled(branch: Branch) -> Any:
    def settled(op: Operation) -> None:
        branch.pending_state = None

    return settled


def copy_schema_from(ctx: EmulatorContext, source: Branch, target: Branch, now: float) -> None:
    """A child starts with its parent's roles (same passwords) and databases."""
    for r in source.roles.values():
        target.roles[r.name] = Role(target.id, r.name, r.password, now, now, r.protected, r.no_login)
    for d in source.databases.values():
        target.databases[d.name] = Database(ctx.ids.integer(), target.id, d.name, d.owner_name, now, now)


@dataclass
class BranchSpec:
    name: str | None = None
    parent_id: str | None = None
    parent_lsn: str | None = None
    parent_timestamp: float | None = None
    protected: bool = False
    archived: bool = False
    init_source: str | None = None
    expires_at: float | None = None
    annotation: dict[str, str] | None = None
    endpoints: list[EndpointSpec] = field(default_factory=list)


def create_branch(ctx: EmulatorContext, project: Project, spec: BranchSpec) -> Created:
    now = ctx.clock.now()
    parent = ctx.branch_in(project, spec.parent_id) if spec.parent_id else project.default_branch()
    if spec.name is not None and project.branch_by_name(spec.name) is not None:
        raise ApiError(409, "branch already exists")
    if spec.init_source not in (None, "parent-data", "schema-only"):
        raise bad_request(
            f"invalid branch.init_source {spec.init_source!r}: must be parent-data or schema-only"
        )
    at = point_in_time(
        ctx, project, parent, lsn=spec.parent_lsn, timestamp=spec.parent_timestamp, prefix="branch.parent_"
    )
    ttl = None
    if spec.expires_at is not None:
        ttl = check_expires_at(ctx, spec.expires_at, "branch.expires_at")
        if spec.protected:
            raise bad_request("invalid branch.expires_at: expires_at is not allowed on a protected branch")
    if parent.expires_at is not None:
        raise bad_request(
            "cannot create a child of a branch that has an expiration (expires_at): "
            "expires_at is not allowed on parent branches"
        )
    if spec.archived and spec.endpoints:
        raise bad_request("branch.archived: an archived branch cannot be created with endpoints")
    computes = [(opts, *branch_compute(project, opts)) for opts in spec.endpoints]
    rw = [e for e in spec.endpoints if e.type == "read_write"]
    if len(rw) > 1:
        raise bad_request("invalid endpoints: at most one read_write endpoint per branch")
    for _, min_cu, max_cu, _ in computes:
        check_compute_units(min_cu, max_cu)
    ctx.check_lock(project)

    schema_only = spec.init_source == "schema-only"
    branch = new_branch_record(ctx, project, spec.name, parent=None if schema_only else parent, now=now)
    branch.protected = spec.protected
    if spec.archived:
        branch.pending_state = "archived"
    branch.init_source = spec.init_source
    # Until the copy reports where it stands: the latest position known for the project, a real
    # point of the parent's history (a client may pass it back as parent_lsn or source_lsn).
    named_lsn = spec.parent_lsn is not None
    branch.parent_lsn = spec.parent_lsn if named_lsn else ctx.data_plane.latest_lsn(project.id)
    branch.parent_timestamp = spec.parent_timestamp if spec.parent_timestamp is not None else now
    branch.expires_at, branch.ttl_interval_seconds = spec.expires_at, ttl
    if spec.annotation:
        branch.annotation, branch.annotation_created_at = dict(spec.annotation), now
    copy_schema_from(ctx, parent, branch, now)
    dp, pid, bid, parent_id = ctx.data_plane, project.id, branch.id, parent.id
    op = ctx.engine.create(
        project,
        "create_branch",
        branch_id=branch.id,
        on_finish=branch_ready(project, branch, "archived" if spec.archived else "ready"),
        on_fail=branch_settled(branch),
        effect=lambda: _report_lsn(
            branch, dp.create_branch(pid, bid, parent_id, schema_only=schema_only, at=at), named=named_lsn
        ),
        effect_name=f"create branch {bid}",
    )
    ops, endpoints = [op], []
    for opts, min_cu, max_cu, suspend in computes:
        endpoint, start = add_endpoint(
            ctx,
            project,
            branch,
            opts.type,
            after=ops[-1],
            min_cu=min_cu,
            max_cu=max_cu,
            suspend_timeout_seconds=suspend,
            provisioner=opts.provisioner,
            settings=opts.settings,
        )
        endpoints.append(endpoint)
        ops.append(start)
    return Created(project, branch, endpoints, ops)


def _report_lsn(branch: Branch, lsn: str | None, *, named: bool) -> None:
    """The real WAL position a copy stands at becomes the branch's ``parent_lsn`` (unless the
    request ``named`` one). Runs on the data-plane worker: a single attribute store, no store lock
    (a request thread may hold it while waiting for this worker)."""
    if lsn is not None and not named:
        branch.parent_lsn = lsn


@dataclass
class BranchUpdate:
    """What a PATCH names (``expires_at_given``: the field was sent, possibly as null)."""

    name: str | None = None
    protected: bool | None = None
    expires_at_given: bool = False
    expires_at: float | None = None


def update_branch(ctx: EmulatorContext, project: Project, branch: Branch, change: BranchUpdate) -> None:
    """Rename, (un)protect, set or clear the TTL: a 409 for a taken name, a 400 naming the rule."""
    if change.name is not None and change.name != branch.name and project.branch_by_name(change.name):
        raise ApiError(409, "branch already exists")
    protected = branch.protected if change.protected is None else change.protected
    ttl: int | None = None
    if change.expires_at_given:
        if change.expires_at is not None:
            ttl = check_expires_at(ctx, change.expires_at, "branch.expires_at")
            _check_ttl_allowed(project, branch, protected)
    elif protected and branch.expires_at is not None:
        raise bad_request("invalid branch.protected: a branch with expires_at cannot be protected")
    if change.name is not None:
        branch.name = change.name
    branch.protected = protected
    if change.expires_at_given:
        branch.expires_at, branch.ttl_interval_seconds = change.expires_at, ttl
    branch.updated_at = ctx.clock.now()


def _check_ttl_allowed(project: Project, branch: Branch, protected: bool) -> None:
    if protected:
        raise bad_request("invalid branch.expires_at: expires_at is not allowed on a protected branch")
    if branch.default:
        raise bad_request("invalid branch.expires_at: expires_at is not allowed on the default branch")
    if project.children_of(branch.id):
        raise bad_request(
            "invalid branch.expires_at: expires_at is not allowed on a branch that has children"
        )


def set_default_branch(ctx: EmulatorContext, project: Project, branch: Branch) -> None:
    if branch.expires_at is not None:
        raise bad_request(
            "a branch with expires_at cannot become the default branch: remove expires_at first"
        )
    now = ctx.clock.now()
    for other in project.branches.values():
        if other.default and other is not branch:
            other.default, other.updated_at = False, now
    branch.default, branch.updated_at = True, now


def delete_branch(
    ctx: EmulatorContext, project: Project, branch: Branch, *, by_ttl: bool = False, hard: bool = False
) -> list[Operation]:
    """Suspend and remove its endpoints, then its timeline; gone from the API at once. Unless
    ``hard``, kept recoverable for the window (its data detached, not dropped: ``resources/recovery.py``)."""
    if not by_ttl:
        if branch.default:
            raise bad_request("cannot delete the project's default branch")
        if project.children_of(branch.id):
            raise bad_request("cannot delete a branch that has children: delete its child branches first")
        if branch.protected:
            raise bad_request("cannot delete a protected branch: unprotect it first")
        ctx.check_lock(project)
    dp, pid, bid = ctx.data_plane, project.id, branch.id
    ops: list[Operation] = []
    endpoints = project.branch_endpoints(branch.id)
    for endpoint in endpoints:
        del project.endpoints[endpoint.id]
        eid = endpoint.id

        def drop_endpoint(eid: str = eid) -> None:
            dp.delete_endpoint(pid, bid, eid)

        ops.append(
            ctx.engine.create(
                project,
                "suspend_compute",
                branch_id=bid,
                endpoint_id=eid,
                after=ops[-1] if ops else None,
                effect=drop_endpoint,
                effect_name=f"delete endpoint {eid}",
            )
        )
    ops.append(
        ctx.engine.create(
            project,
            "delete_timeline",
            branch_id=bid,
            after=ops[-1] if ops else None,
            effect=(lambda: dp.delete_branch(pid, bid)) if hard else (lambda: dp.detach_branch(pid, bid)),
            effect_name=f"delete branch {bid}",
        )
    )
    del project.branches[branch.id]
    if not hard:
        recovery.keep_deleted_branch(ctx, project, branch, endpoints, by_ttl=by_ttl)
    return ops


def delete_expired_branches(ctx: EmulatorContext) -> int:
    """The background job: branches whose ``expires_at`` has passed go, with their endpoints."""
    now, count = ctx.clock.now(), 0
    with ctx.store.lock:
        for project in list(ctx.store.projects.values()):
            expired = [
                b for b in project.branches.values() if b.expires_at is not None and b.expires_at <= now
            ]
            for branch in sorted(expired, key=lambda b: -b.seq):
                if branch.default or project.children_of(branch.id):
                    continue  # not allowed to carry expires_at; never delete such a branch
                delete_branch(ctx, project, branch, by_ttl=True)
                count += 1
    return count


@dataclass
class RestoreSpec:
    """``POST .../branches/{id}/restore``: from which branch (itself: its own history), at which
    point, and under which name the replaced state is kept."""

    source_branch_id: str
    source_lsn: str | None = None
    source_timestamp: float | None = None
    preserve_under_name: str | None = None


def restore_branch(
    ctx: EmulatorContext, project: Project, branch: Branch, spec: RestoreSpec
) -> list[Operation]:
    """Reset ``branch`` to the source's data (now or at a point), keeping the old state as a new
    branch when asked (required when the branch has children or is restored from itself)."""
    source = project.branches.get(spec.source_branch_id)
    if source is None:
        raise ApiError(404, "source branch not found")
    source_lsn, source_timestamp = spec.source_lsn, spec.source_timestamp
    preserve_under_name = spec.preserve_under_name
    now = ctx.clock.now()
    at = point_in_time(ctx, project, source, lsn=source_lsn, timestamp=source_timestamp, prefix="source_")
    to_itself = source.id == branch.id
    if to_itself and source_lsn is None and source_timestamp is None:
        raise bad_request("restoring a branch onto itself needs source_lsn or source_timestamp")
    children = project.children_of(branch.id)
    if (children or to_itself) and not preserve_under_name:
        reason = "has children" if children else "is restored from its own history"
        raise bad_request(f"preserve_under_name is required: the branch {reason}")
    if preserve_under_name and project.branch_by_name(preserve_under_name) is not None:
        raise ApiError(409, "branch already exists")
    if not to_itself and _is_ancestor(project, branch.id, source) and not preserve_under_name:
        raise bad_request("cannot restore a branch from one of its descendants without preserve_under_name")
    ctx.check_lock(project)

    dp, pid, bid, sid = ctx.data_plane, project.id, branch.id, source.id
    backup_id: str | None = None
    if preserve_under_name:
        backup = new_branch_record(ctx, project, preserve_under_name, parent=None, now=now)
        backup.parent_id, backup.parent_lsn = branch.parent_id, branch.parent_lsn
        backup.parent_timestamp = branch.parent_timestamp
        backup.current_state, backup.pending_state = "ready", None
        copy_schema_from(ctx, branch, backup, now)
        for child in children:
            child.parent_id = backup.id
        backup_id = backup.id

    def reset_data() -> None:
        if backup_id is not None:
            dp.create_branch(pid, backup_id, bid)
        lsn = dp.reset_branch(pid, bid, sid, at=at)
        if not to_itself:
            _report_lsn(branch, lsn, named=source_lsn is not None)

    branch.current_state, branch.pending_state, branch.state_changed_at = "resetting", "ready", now
    branch.last_reset_at = branch.updated_at = now
    if not to_itself:
        branch.parent_id = source.id
        branch.parent_lsn = source_lsn if source_lsn is not None else ctx.data_plane.latest_lsn(pid)
        branch.parent_timestamp = source_timestamp if source_timestamp is not None else now
        branch.roles, branch.databases = {}, {}
        copy_schema_from(ctx, source, branch, now)
    if backup_id is not None:
        # "The backup becomes the parent of your original branch": a rollback is a reset from it.
        branch.parent_id, branch.parent_lsn, branch.parent_timestamp = backup_id, None, now
    if branch.expires_at is not None and branch.ttl_interval_seconds is not None:
        branch.expires_at = now + branch.ttl_interval_seconds  # a reset restarts the TTL clock
    ops = [
        ctx.engine.create(
            project,
            "create_branch",
            branch_id=bid,
            on_finish=branch_ready(project, branch),
            on_fail=branch_settled(branch),
            effect=reset_data,
            effect_name=f"restore branch {bid}",
        )
    ]
    for endpoint in project.branch_endpoints(branch.id):
        if endpoint.current_state == "active":
            endpoint.pending_state = "active"
            ops.append(start_op(ctx, project, endpoint, after=ops[-1]))
    return ops


def _is_ancestor(project: Project, branch_id: str, candidate: Branch) -> bool:
    seen: set[str] = set()
    current: Branch | None = candidate
    while current is not None and current.parent_id and current.id not in seen:
        seen.add(current.id)
        if current.parent_id == branch_id:
            return True
        current = project.branches.get(current.parent_id)
    return False


def remove_branch(
    ctx: EmulatorContext, project: Project, branch_id: str, *, hard: bool
) -> tuple[Branch, list[Operation]] | None:
    """``DELETE .../branches/{id}``. ``None``: already gone (the service answers 204); with
    ``hard``, a soft-deleted branch's kept data goes now."""
    branch = project.branches.get(branch_id)
    if branch is None:
        if hard:
            recovery.purge_branch(ctx, project, branch_id)
        return None
    ops = delete_branch(ctx, project, branch, hard=hard)
    branch.updated_at = ctx.clock.now()
    return branch, ops


def matches(branch: Branch, needle: str | None) -> bool:
    """The list's ``search`` (lower-cased): part of the name (any case) or of the id."""
    return needle is None or needle in branch.name.lower() or needle in branch.id


def sort_key(branch: Branch, sort_by: str) -> tuple[Any, int]:
    """A total order for keyset pagination: the field, then creation order."""
    value: Any = branch.name if sort_by == "name" else getattr(branch, sort_by)
    return (value, branch.seq)


def list_branches(
    ctx: EmulatorContext,
    project: Project,
    *,
    search: str | None,
    sort_by: str,
    descending: bool,
    after: tuple[Any, int] | None,
    limit: int | None,
    include_deleted: bool,
) -> tuple[list[Branch], bool]:
    """One page of the project's branches (the recoverable deleted ones too when asked), after
    the ``after`` sort key; and whether more follow."""
    needle = search.lower() if search else None
    candidates = list(project.branches.values())
    if include_deleted:
        now = ctx.clock.now()
        candidates += [b for b in project.deleted_branches.values() if recovery.recoverable(b.deleted, now)]
    rows = sorted(
        (b for b in candidates if matches(b, needle)), key=lambda b: sort_key(b, sort_by), reverse=descending
    )
    if after is not None:
        if descending:
            rows = [b for b in rows if sort_key(b, sort_by) < after]
        else:
            rows = [b for b in rows if sort_key(b, sort_by) > after]
    page = rows if limit is None else rows[:limit]
    return page, limit is not None and len(rows) > limit


def count_branches(project: Project, search: str | None) -> int:
    needle = search.lower() if search else None
    return sum(1 for b in project.branches.values() if matches(b, needle))
