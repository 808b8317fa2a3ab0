"""Snapshots and backup schedules: every rule of them, once.

What the service documents (its backup-restore guide; the spec is thin): a snapshot is taken from
a root branch, now or at a point of its history (``timestamp`` xor ``lsn``, inside the history
window), with a name and an optional ``expires_at`` at which the service deletes it; a project
holds a limited number of manual snapshots (1 on the free plan, 100 on paid plans; scheduled ones
do not count) and exceeding it is an error; a restore makes a *new* branch holding the snapshot's
data, to be checked before it replaces anything, and finalizing (at once with
``finalize_restore``, or later with ``finalizeRestoreBranch``) moves the target's computes onto it
(they restart), gives it the target's name and renames the target; a branch restored from a
snapshot has no point-in-time history before the restore; schedules take daily, weekly or monthly
snapshots, each kept for its ``retention_seconds``.

Data: a snapshot's databases live in the data plane as a branch no API lists, keyed by the
snapshot's id (copied from the source now or at the point, as a point-in-time branch create is);
a restore copies that into the new branch, whose history starts there. Times are the emulator's
clock; expiry and schedules run in the background tick (``delete_expired``, ``take_scheduled``).
"""

from __future__ import annotations

import calendar
import datetime as dt
from dataclasses import dataclass

from jambo_emulator.resources import branches
from jambo_emulator.resources.context import EmulatorContext
from jambo_emulator.resources.endpoints import reassign_endpoint
from jambo_emulator.state.clock import iso
from jambo_emulator.state.errors import ApiError, bad_request, not_found
from jambo_emulator.state.ids import unique
from jambo_emulator.state.records import (
    BackupSchedule,
    Branch,
    Database,
    Endpoint,
    Operation,
    Project,
    Role,
    ScheduleItem,
    Snapshot,
)

#: What the service accepts in practice (the spec also names hourly and yearly).
FREQUENCIES = ("daily", "weekly", "monthly")
MIN_RETENTION_SECONDS = 3600
NAME_MAX = 256
LIMIT_CODE = "SNAPSHOTS_LIMIT_EXCEEDED"


@dataclass
class SnapshotSpec:
    """``POST .../branches/{id}/snapshot``'s query: the point, the name, the expiry."""

    lsn: str | None = None
    timestamp: float | None = None
    name: str | None = None
    expires_at: float | None = None


@dataclass
class SnapshotUpdate:
    name: str | None = None
    expires_at_given: bool = False
    expires_at: float | None = None


@dataclass
class SnapshotRestoreSpec:
    name: str | None = None
    target_branch_id: str | None = None
    finalize_restore: bool = False


@dataclass
class Restored:
    branch: Branch
    endpoints: list[Endpoint]
    operations: list[Operation]


def _check_name(name: str, field_name: str) -> None:
    if not name.strip() or len(name) > NAME_MAX or any(ord(c) < 32 for c in name):
        raise bad_request(
            f"invalid {field_name}: must be 1 to {NAME_MAX} characters without control characters"
        )


def _check_expiry(ctx: EmulatorContext, expires_at: float, field_name: str) -> None:
    if expires_at <= ctx.clock.now():
        raise bad_request(f"invalid {field_name}: expires_at must be in the future")


def manual_count(project: Project) -> int:
    return sum(1 for s in project.snapshots.values() if s.manual)


def find(project: Project, snapshot_id: str) -> Snapshot:
    snapshot = project.snapshots.get(snapshot_id)
    if snapshot is None:
        raise not_found("snapshot")
    return snapshot


def _take(
    ctx: EmulatorContext,
    project: Project,
    branch: Branch,
    *,
    name: str,
    at_time: float,
    expires_at: float | None,
    manual: bool,
    lsn: str | None,
) -> Snapshot:
    """The record, holding the branch's databases and roles (its data copy is the caller's to
    schedule)."""
    now = ctx.clock.now()
    snapshot = Snapshot(
        id=unique(ctx.ids.snapshot_id, project.snapshots.keys()),
        project_id=project.id,
        name=name,
        source_branch_id=branch.id,
        created_at=now,
        seq=ctx.store.next_seq(),
        timestamp=at_time,
        lsn=lsn,
        expires_at=expires_at,
        manual=manual,
    )
    for r in branch.roles.values():
        snapshot.roles[r.name] = Role(snapshot.id, r.name, r.password, now, now, r.protected, r.no_login)
    for d in branch.databases.values():
        snapshot.databases[d.name] = Database(d.id, snapshot.id, d.name, d.owner_name, now, now)
    project.snapshots[snapshot.id] = snapshot
    return snapshot


def create_snapshot(
    ctx: EmulatorContext, project: Project, branch: Branch, spec: SnapshotSpec
) -> tuple[Snapshot, list[Operation]]:
    """A manual snapshot of a root branch, now or at a point (the branch rule's checks)."""
    if branch.parent_id is not None:
        raise bad_request(
            f"snapshots can only be taken of root branches: branch {branch.id} has a parent "
            f"({branch.parent_id})"
        )
    if branch.current_state != "ready":
        raise ApiError(422, "branch not ready yet")
    at = branches.point_in_time(ctx, project, branch, lsn=spec.lsn, timestamp=spec.timestamp, prefix="")
    if spec.name is not None:
        _check_name(spec.name, "name")
    if spec.expires_at is not None:
        _check_expiry(ctx, spec.expires_at, "expires_at")
    limit = ctx.config.manual_snapshot_limit
    if manual_count(project) >= limit:
        raise ApiError(
            422,
            f"manual snapshots limit exceeded: the project has {limit} manual snapshot(s), the "
            f"most its plan allows; delete one before taking another",
            code=LIMIT_CODE,
        )
    ctx.check_lock(project)
    now = ctx.clock.now()
    at_time = spec.timestamp if spec.timestamp is not None else now
    name = spec.name or f"{branch.name}-{iso(at_time)}"
    snapshot = _take(
        ctx,
        project,
        branch,
        name=name,
        at_time=at_time,
        expires_at=spec.expires_at,
        manual=True,
        lsn=spec.lsn,
    )
    dp, pid, bid, sid = ctx.data_plane, project.id, branch.id, snapshot.id

    def copy() -> None:
        lsn = dp.create_branch(pid, sid, bid, at=at)
        if lsn is not None and spec.lsn is None:
            snapshot.lsn = lsn  # worker thread: one attribute store (see branches._report_lsn)

    op = ctx.engine.create(
        project, "create_timeline", branch_id=bid, effect=copy, effect_name=f"snapshot {sid} of branch {bid}"
    )
    return snapshot, [op]


def list_snapshots(project: Project) -> list[Snapshot]:
    return sorted(project.snapshots.values(), key=lambda s: s.seq)


def update_snapshot(ctx: EmulatorContext, snapshot: Snapshot, change: SnapshotUpdate) -> None:
    """Rename, or set/clear the expiry (the spec's body names only ``name``; the service's
    console also re-expires, so ``expires_at`` is accepted too)."""
    if change.name is not None:
        _check_name(change.name, "snapshot.name")
    if change.expires_at_given and change.expires_at is not None:
        _check_expiry(ctx, change.expires_at, "snapshot.expires_at")
    if change.name is not None:
        snapshot.name = change.name
    if change.expires_at_given:
        snapshot.expires_at = change.expires_at


def delete_snapshot(ctx: EmulatorContext, project: Project, snapshot: Snapshot) -> list[Operation]:
    ctx.check_lock(project)
    del project.snapshots[snapshot.id]
    dp, pid, sid = ctx.data_plane, project.id, snapshot.id
    return [
        ctx.engine.create(
            project,
            "delete_timeline",
            branch_id=snapshot.source_branch_id,
            effect=lambda: dp.delete_branch(pid, sid),
            effect_name=f"delete snapshot {sid}",
        )
    ]


def restore_snapshot(
    ctx: EmulatorContext, project: Project, snapshot: Snapshot, spec: SnapshotRestoreSpec
) -> Restored:
    """A new root branch holding the snapshot's data, to replace ``target_branch_id`` (default:
    the snapshot's source) when finalized; finalized at once with ``finalize_restore``."""
    target_id = spec.target_branch_id or snapshot.source_branch_id
    target = project.branches.get(target_id)
    if target is None:
        raise ApiError(404, f"target branch {target_id} not found: name an existing target_branch_id")
    if spec.name is not None:
        _check_name(spec.name, "name")
        if project.branch_by_name(spec.name) is not None:
            raise ApiError(409, "branch already exists")
    ctx.check_lock(project)
    now = ctx.clock.now()
    name = spec.name or f"{target.name}-restored-{iso(now)}"
    if spec.name is None and project.branch_by_name(name) is not None:
        name = f"{name}-{snapshot.id}"
    branch = branches.new_branch_record(ctx, project, name, parent=None, now=now)
    branch.restored_from, branch.restored_as, branch.restore_status = snapshot.id, target.id, "restored"
    for r in snapshot.roles.values():
        branch.roles[r.name] = Role(branch.id, r.name, r.password, now, now, r.protected, r.no_login)
    for d in snapshot.databases.values():
        branch.databases[d.name] = Database(ctx.ids.integer(), branch.id, d.name, d.owner_name, now, now)
    dp, pid, bid, sid = ctx.data_plane, project.id, branch.id, snapshot.id

    def copy() -> None:
        branch.restore_lsn = dp.create_branch(pid, bid, sid)  # worker: one attribute store

    ops = [
        ctx.engine.create(
            project,
            "create_branch",
            branch_id=bid,
            on_finish=branches.branch_ready(project, branch),
            on_fail=branches.branch_settled(branch),
            effect=copy,
            effect_name=f"restore snapshot {sid} to branch {bid}",
        )
    ]
    if spec.finalize_restore:
        ops += _finalize(ctx, project, branch, target, None, after=ops[-1])
    return Restored(branch, project.branch_endpoints(branch.id), ops)


def finalize_restore(
    ctx: EmulatorContext, project: Project, branch: Branch, old_name: str | None
) -> list[Operation]:
    """``finalizeRestoreBranch``: the restored branch takes the place of the one it was made for."""
    if branch.restored_as is None:
        raise bad_request(
            f"branch {branch.id} was not restored from a snapshot: only a branch made by "
            "restoreSnapshot with finalize_restore false can be finalized"
        )
    if branch.restore_status != "restored":
        raise bad_request(f"the restore of branch {branch.id} is already finalized")
    target = project.branches.get(branch.restored_as)
    if target is None:
        raise bad_request(
            f"branch {branch.id} cannot be finalized: the branch it was to replace "
            f"({branch.restored_as}) no longer exists"
        )
    if any(e.type == "read_write" for e in project.branch_endpoints(target.id)) and any(
        e.type == "read_write" for e in project.branch_endpoints(branch.id)
    ):
        raise ApiError(
            409,
            f"read-write endpoint already exists: branch {branch.id} has its own; delete it before "
            f"finalizing, so {target.id}'s compute can move onto it",
        )
    if old_name is not None:
        _check_name(old_name, "name")
        if project.branch_by_name(old_name) is not None:
            raise ApiError(409, "branch already exists")
    ctx.check_lock(project)
    return _finalize(ctx, project, branch, target, old_name, after=None)


def _finalize(
    ctx: EmulatorContext,
    project: Project,
    branch: Branch,
    target: Branch,
    old_name: str | None,
    *,
    after: Operation | None,
) -> list[Operation]:
    now = ctx.clock.now()
    renamed = old_name or f"{target.name}-old-{iso(now)}"
    if old_name is None and project.branch_by_name(renamed) is not None:
        renamed = f"{renamed}-{target.id}"
    name = target.name
    target.name, target.updated_at = renamed, now
    branch.name, branch.updated_at, branch.restore_status = name, now, "finalized"
    if target.default:
        # "Functions as the original branch it replaced": the project's default moves with it.
        target.default, branch.default = False, True
    ops: list[Operation] = []
    for endpoint in project.branch_endpoints(target.id):
        ops += reassign_endpoint(ctx, project, endpoint, branch.id, after=ops[-1] if ops else after)
    return ops


# -- backup schedules ----------------------------------------------------------------------------


def check_schedule(items: list[ScheduleItem]) -> None:
    for index, item in enumerate(items):
        where = f"schedule[{index}]"
        if item.frequency not in FREQUENCIES:
            raise bad_request(
                f"invalid {where}.frequency {item.frequency!r}: must be one of {', '.join(FREQUENCIES)}"
            )
        if not 0 <= item.hour <= 23:
            raise bad_request(f"invalid {where}.hour: must be 0 to 23")
        if item.frequency == "weekly" and (item.day is None or not 1 <= item.day <= 7):
            raise bad_request(f"invalid {where}.day: a weekly schedule needs day 1 (Monday) to 7 (Sunday)")
        if item.frequency == "monthly" and (item.day is None or not 1 <= item.day <= 31):
            raise bad_request(f"invalid {where}.day: a monthly schedule needs day 1 to 31")
        if item.retention_seconds is not None and item.retention_seconds < MIN_RETENTION_SECONDS:
            raise bad_request(f"invalid {where}.retention_seconds: must be at least {MIN_RETENTION_SECONDS}")
    frequencies = [item.frequency for item in items]
    if len(set(frequencies)) != len(frequencies):
        raise bad_request("invalid schedule: at most one item per frequency")


def set_schedule(ctx: EmulatorContext, project: Project, branch: Branch, items: list[ScheduleItem]) -> None:
    """Replace the branch's schedule; occurrences from now on are taken (none are made up)."""
    check_schedule(items)
    if items:
        project.backup_schedules[branch.id] = BackupSchedule(list(items), ctx.clock.now())
    else:
        project.backup_schedules.pop(branch.id, None)


def get_schedule(project: Project, branch: Branch) -> list[ScheduleItem]:
    schedule = project.backup_schedules.get(branch.id)
    return list(schedule.items) if schedule is not None else []


def last_occurrence(item: ScheduleItem, now: float) -> float:
    """The latest time at or before ``now`` (UTC) the item takes a snapshot."""
    t = dt.datetime.fromtimestamp(now, dt.UTC)
    day_start = t.replace(hour=item.hour, minute=0, second=0, microsecond=0)
    if item.frequency == "daily":
        candidate = day_start if day_start <= t else day_start - dt.timedelta(days=1)
    elif item.frequency == "weekly":
        assert item.day is not None
        candidate = day_start - dt.timedelta(days=(t.isoweekday() - item.day) % 7)
        if candidate > t:
            candidate -= dt.timedelta(days=7)
    else:
        assert item.day is not None
        year, month = t.year, t.month
        while True:
            day = min(item.day, calendar.monthrange(year, month)[1])
            candidate = day_start.replace(year=year, month=month, day=day)
            if candidate <= t:
                break
            year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    return candidate.timestamp()


def take_scheduled(ctx: EmulatorContext) -> int:
    """The background job: each schedule item whose time came since the last look takes one
    snapshot (the latest occurrence's; the data as of the look, which is the data at that time on
    the emulator's clock), expiring at the end of its retention. No operation: the service's own
    work does not lock the project."""
    now, count = ctx.clock.now(), 0
    with ctx.store.lock:
        for project in list(ctx.store.projects.values()):
            for branch_id, schedule in list(project.backup_schedules.items()):
                branch = project.branches.get(branch_id)
                if branch is None:
                    del project.backup_schedules[branch_id]
                    continue
                due = [(item, last_occurrence(item, now)) for item in schedule.items]
                schedule.checked_at, since = now, schedule.checked_at
                if branch.current_state != "ready":
                    continue
                for item, at_time in due:
                    if at_time <= since:
                        continue
                    expires = at_time + item.retention_seconds if item.retention_seconds else None
                    if expires is not None and expires <= now:
                        continue
                    _scheduled_snapshot(ctx, project, branch, item, at_time, expires)
                    count += 1
    return count


def _scheduled_snapshot(
    ctx: EmulatorContext,
    project: Project,
    branch: Branch,
    item: ScheduleItem,
    at_time: float,
    expires: float | None,
) -> None:
    name = f"{branch.name}-{item.frequency}-{iso(at_time)}"
    snapshot = _take(
        ctx, project, branch, name=name, at_time=at_time, expires_at=expires, manual=False, lsn=None
    )
    dp, pid, bid, sid = ctx.data_plane, project.id, branch.id, snapshot.id

    def copy() -> None:
        snapshot.lsn = dp.create_branch(pid, sid, bid)

    ctx.engine.run_detached(copy, f"scheduled snapshot {sid} of branch {bid}")


def delete_expired(ctx: EmulatorContext) -> int:
    """The background job: snapshots whose ``expires_at`` has passed are deleted, data and all."""
    now, count = ctx.clock.now(), 0
    with ctx.store.lock:
        for project in list(ctx.store.projects.values()):
            expired = [
                s for s in project.snapshots.values() if s.expires_at is not None and s.expires_at <= now
            ]
            for snapshot in expired:
                del project.snapshots[snapshot.id]
                _drop_later(ctx, project.id, snapshot.id)
                count += 1
    return count


def _drop_later(ctx: EmulatorContext, project_id: str, snapshot_id: str) -> None:
    dp = ctx.data_plane
    ctx.engine.run_detached(
        lambda: dp.delete_branch(project_id, snapshot_id), f"expire snapshot {snapshot_id}"
    )
