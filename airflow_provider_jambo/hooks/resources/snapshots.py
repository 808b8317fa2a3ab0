"""``hook.snapshots``: a branch's data kept as of one point, restored to a new branch, and the
branch's backup schedule (the spec's eight snapshot operations; Beta on the service).

Inputs are checked by ``rules.py`` before anything is sent. Changes return the operations that
carry them out, for the caller to wait on as for every other change (``hook.operations.wait``).
Snapshot names are not unique on the service: ``get_or_create`` adopts the newest snapshot of the
branch with the name, so a task re-run for the same data interval does not take a second one.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from airflow_provider_jambo.api_models import (
    UNSET,
    BackupSchedule,
    BackupScheduleItem,
    BranchCreation,
    Mutation,
    Operation,
    Snapshot,
    _Unset,
    parse_operations,
)
from airflow_provider_jambo.exceptions import JamboConfigError, JamboLookupError
from airflow_provider_jambo.hooks import secret_masking
from airflow_provider_jambo.hooks.resources.projects import ProjectsApi
from airflow_provider_jambo.hooks.resources.resource_group import ResourceGroup, many, mutation, one
from airflow_provider_jambo.rules import (
    check_backup_schedule,
    check_id,
    check_name,
    check_snapshot_expiry,
    format_timestamp,
    snapshot_point,
)

_SNAPSHOT = "/snapshots/{snapshot_id}"


@dataclass(frozen=True)
class SnapshotCreation:
    """A snapshot taken (``created``) or adopted (an earlier one with the same name and branch)."""

    snapshot: Snapshot
    operations: list[Operation]
    created: bool = True


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _newest(snapshots: Sequence[Snapshot]) -> Snapshot | None:
    """The one holding the most recent data, then the newest taken (the listing's order breaks a
    tie of whole-second stamps: the service lists the oldest first)."""
    ranked = [((s.point or _EPOCH, s.created_at or _EPOCH, i), s) for i, s in enumerate(snapshots)]
    return max(ranked, key=lambda pair: pair[0])[1] if ranked else None


class SnapshotsApi(ResourceGroup):
    """Snapshots of a project and backup schedules of its branches; ``project_id`` defaults to
    the connection's."""

    def create(
        self,
        branch_id: str,
        *,
        name: str | None = None,
        lsn: str | None = None,
        timestamp: datetime | str | None = None,
        expires_at: datetime | str | None = None,
        project_id: str | None = None,
    ) -> Mutation[Snapshot]:
        """Take a snapshot of a root branch, now or at ``lsn`` xor ``timestamp`` (inside the
        project's history window: read from the project when a timestamp is given)."""
        check_id("branch_id", branch_id)
        pid = self._hook.resolve_project_id(project_id)
        window = None
        if timestamp is not None and lsn is None:
            window = ProjectsApi(self._hook).get(pid).history_retention_seconds
        query: dict[str, Any] = snapshot_point(lsn, timestamp, history_retention_seconds=window)
        if name is not None:
            query["name"] = check_name("name", name)
        if expires_at is not None:
            query["expires_at"] = format_timestamp(check_snapshot_expiry("expires_at", expires_at))
        return self._call(
            "POST",
            "/branches/{branch_id}/snapshot",
            pid,
            {"branch_id": branch_id},
            query=query,
            parse=mutation("snapshot", Snapshot.from_api),
        )

    def get_or_create(
        self,
        branch_id: str,
        *,
        name: str,
        lsn: str | None = None,
        timestamp: datetime | str | None = None,
        expires_at: datetime | str | None = None,
        project_id: str | None = None,
    ) -> SnapshotCreation:
        """The newest snapshot of ``branch_id`` named ``name`` (``created=False``), or a new one."""
        pid = self._hook.resolve_project_id(project_id)
        existing = self.find(name, branch_id=branch_id, project_id=pid)
        if existing is not None:
            return SnapshotCreation(existing, [], created=False)
        taken = self.create(
            branch_id, name=name, lsn=lsn, timestamp=timestamp, expires_at=expires_at, project_id=pid
        )
        return SnapshotCreation(taken.resource, taken.operations)

    def find(
        self, name: str, *, branch_id: str | None = None, project_id: str | None = None
    ) -> Snapshot | None:
        """The newest snapshot with exactly this name (of ``branch_id`` when given), or None."""
        check_name("name", name)
        found = [
            s
            for s in self.list(project_id)
            if s.name == name and (branch_id is None or s.source_branch_id == branch_id)
        ]
        return _newest(found)

    def latest(self, branch_id: str, *, project_id: str | None = None) -> Snapshot | None:
        """The snapshot of ``branch_id`` holding its most recent data (manual or scheduled)."""
        check_id("branch_id", branch_id)
        return _newest([s for s in self.list(project_id) if s.source_branch_id == branch_id])

    def resolve(self, name_or_id: str, *, project_id: str | None = None) -> Snapshot:
        """A snapshot by id or exact name (the newest of that name); JamboLookupError if none."""
        check_name("snapshot", name_or_id)
        snapshots = self.list(project_id)
        by_id = next((s for s in snapshots if s.id == name_or_id), None)
        found = by_id or _newest([s for s in snapshots if s.name == name_or_id])
        if found is None:
            raise JamboLookupError(
                f"snapshot {name_or_id!r} not found in project "
                f"{self._hook.resolve_project_id(project_id)}: no snapshot has that id or exact name"
            )
        return found

    def update(
        self,
        snapshot_id: str,
        *,
        name: str | _Unset = UNSET,
        expires_at: datetime | str | _Unset | None = UNSET,
        project_id: str | None = None,
    ) -> Snapshot:
        """Rename, or set/clear (``expires_at=None``) the expiry."""
        fields: dict[str, Any] = {}
        if not isinstance(name, _Unset):
            fields["name"] = check_name("name", name)
        if not isinstance(expires_at, _Unset):
            fields["expires_at"] = (
                None
                if expires_at is None
                else format_timestamp(check_snapshot_expiry("expires_at", expires_at))
            )
        if not fields:
            raise JamboConfigError("snapshots.update needs at least one of name, expires_at")
        return self._call(
            "PATCH",
            _SNAPSHOT,
            project_id,
            {"snapshot_id": check_id("snapshot_id", snapshot_id)},
            json={"snapshot": fields},
            parse=one("snapshot", Snapshot.from_api),
        )

    def delete(self, snapshot_id: str, *, project_id: str | None = None) -> builtins.list[Operation]:
        """Delete a snapshot (JamboNotFoundError when it is gone)."""
        return self._call(
            "DELETE",
            _SNAPSHOT,
            project_id,
            {"snapshot_id": check_id("snapshot_id", snapshot_id)},
            parse=parse_operations,
        )

    def restore(
        self,
        snapshot_id: str,
        *,
        name: str | None = None,
        target_branch_id: str | None = None,
        finalize_restore: bool = False,
        project_id: str | None = None,
    ) -> BranchCreation:
        """A new branch holding the snapshot's data, to replace ``target_branch_id`` (default:
        the snapshot's branch) once finalized (at once with ``finalize_restore``)."""
        body: dict[str, Any] = {"finalize_restore": bool(finalize_restore)}
        if name is not None:
            body["name"] = check_name("name", name)
        if target_branch_id is not None:
            body["target_branch_id"] = check_id("target_branch_id", target_branch_id)
        created: BranchCreation = self._call(
            "POST",
            _SNAPSHOT + "/restore",
            project_id,
            {"snapshot_id": check_id("snapshot_id", snapshot_id)},
            json=body,
            parse=BranchCreation.from_api,
        )
        secret_masking.mask_secrets(created.roles, [c.uri for c in created.connection_uris])
        return created

    def finalize_restore(
        self, branch_id: str, *, name: str | None = None, project_id: str | None = None
    ) -> builtins.list[Operation]:
        """The restored branch takes its target's place (computes, name); the target is renamed
        ``name`` (default: one the service makes)."""
        body = {"name": check_name("name", name)} if name is not None else {}
        return self._call(
            "POST",
            "/branches/{branch_id}/finalize_restore",
            project_id,
            {"branch_id": check_id("branch_id", branch_id)},
            json=body,
            parse=parse_operations,
        )

    def get_schedule(self, branch_id: str, *, project_id: str | None = None) -> BackupSchedule:
        return self._call(
            "GET",
            "/branches/{branch_id}/backup_schedule",
            project_id,
            {"branch_id": check_id("branch_id", branch_id)},
            parse=BackupSchedule.from_api,
        )

    def set_schedule(
        self,
        branch_id: str,
        schedule: Sequence[BackupScheduleItem | dict[str, Any]],
        *,
        project_id: str | None = None,
    ) -> BackupSchedule:
        """Replace the branch's schedule (``[]`` removes it); returns what was set. Idempotent."""
        items: object = schedule
        if isinstance(schedule, (list, tuple)):
            items = [item.to_api() if isinstance(item, BackupScheduleItem) else item for item in schedule]
        checked = check_backup_schedule("schedule", items)
        self._call(
            "PUT",
            "/branches/{branch_id}/backup_schedule",
            project_id,
            {"branch_id": check_id("branch_id", branch_id)},
            json={"schedule": checked},
            idempotent=True,
            parse=lambda body: body,
        )
        return BackupSchedule(tuple(BackupScheduleItem.from_api(item) for item in checked))

    # Last: a method named ``list`` would shadow the builtin in the annotations above it.
    def list(self, project_id: str | None = None) -> builtins.list[Snapshot]:
        return self._call("GET", "/snapshots", project_id, parse=many("snapshots", Snapshot.from_api))
