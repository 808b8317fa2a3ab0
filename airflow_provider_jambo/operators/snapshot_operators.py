"""Operators for snapshots (issue 21): take one, restore one to a new branch, finalize a restore,
delete one, set a branch's backup schedule.

Scheduled DAGs are what these are for: a nightly task snapshots ``main`` at the end of its data
interval (named after the run, so a re-run of the interval adopts it instead of taking a second),
and a report restores the latest snapshot to a branch of its own. The restore is all or nothing
like the branch create (``operators/all_or_nothing.py``): a failure after the branch was made
deletes it. Finalizing puts a restored branch in its target's place, so it refuses a default or
protected target unless ``allow_protected=True``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from airflow_provider_jambo.exceptions import (
    JamboBranchConflict,
    JamboBranchNotFound,
    JamboConfigError,
    JamboLookupError,
    JamboNotFoundError,
    JamboRefusedError,
)
from airflow_provider_jambo.operators.all_or_nothing import AllOrNothingBranchOperator
from airflow_provider_jambo.operators.base_operator import JamboBaseOperator
from airflow_provider_jambo.operators.branch_operators import refuse_guarded
from airflow_provider_jambo.operators.run_names import default_branch_name, default_snapshot_name
from airflow_provider_jambo.rules import (
    check_backup_schedule,
    check_choice,
    check_name,
    check_operator_compute,
    check_ref,
    check_snapshot_expiry,
    check_snapshot_ttl,
    endpoint_settings,
    format_timestamp,
    snapshot_point,
)

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context

    from airflow_provider_jambo.api_models import Branch, Endpoint, Operation, Snapshot
    from airflow_provider_jambo.operators.results import (
        BackupScheduleResult,
        DeletedSnapshotResult,
        FinalizedRestoreResult,
        RestoredBranchResult,
        SnapshotResult,
    )

#: Where in time a snapshot is taken: now, or at the end of the run's data interval.
SNAPSHOT_POINTS = ("now", "data_interval_end")


def _iso(value: datetime | None) -> str | None:
    return format_timestamp(value) if value is not None else None


class JamboCreateSnapshotOperator(JamboBaseOperator):
    """Take a snapshot of a root branch (``main``), or adopt the one an earlier try or re-run of
    this run took (same name, same branch).

    Returns (XCom) ``project_id``, ``snapshot_id``, ``snapshot_name``, ``branch_id``, ``created``,
    ``timestamp``, ``lsn``, ``expires_at``.

    :param branch: the branch, by id or exact name, or an upstream Jambo task's result (templated).
    :param point: ``now`` (default) or ``data_interval_end``: the run's data interval end (a run
        without one, such as a manual run of Airflow 3, snapshots when it was triggered).
    :param timestamp: snapshot the branch as it was at this time (datetime or RFC 3339; templated).
    :param lsn: snapshot the branch at this LSN (templated). ``timestamp``, ``lsn`` and a ``point``
        other than ``now`` exclude each other; a time must be inside the project's history window.
    :param snapshot_name: its name (templated); default ``<dag_id>-<task_id>-<run id>``.
    :param expires_at: when the service deletes it (absolute, in the future; templated).
    :param ttl: when the service deletes it, relative to the task's start (seconds or timedelta).
    """

    template_fields: Sequence[str] = (
        *JamboBaseOperator.template_fields,
        "branch",
        "timestamp",
        "lsn",
        "snapshot_name",
        "expires_at",
    )

    def __init__(
        self,
        *,
        branch: str | Mapping[str, Any],
        point: str = "now",
        timestamp: datetime | str | None = None,
        lsn: str | None = None,
        snapshot_name: str | None = None,
        expires_at: datetime | str | None = None,
        ttl: timedelta | float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.branch = branch
        self.point = point
        self.timestamp = timestamp
        self.lsn = lsn
        self.snapshot_name = snapshot_name
        self.expires_at = expires_at
        self.ttl = ttl
        self._validate(at_parse=True)

    def _validate(self, *, at_parse: bool) -> None:
        known = self._checkable(at_parse=at_parse)
        check_choice("point", self.point, SNAPSHOT_POINTS)
        if self.point != "now" and (self.timestamp is not None or self.lsn is not None):
            raise JamboConfigError(
                f"point={self.point!r} excludes timestamp and lsn: give one way to say when"
            )
        if known(self.timestamp, self.lsn):
            snapshot_point(self.lsn, self.timestamp)
        if self.ttl is not None:
            check_snapshot_ttl("ttl", self.ttl)
            if self.expires_at is not None:
                raise JamboConfigError("give either expires_at (absolute) or ttl (relative), not both")
        if self.expires_at is not None and known(self.expires_at):
            check_snapshot_expiry("expires_at", self.expires_at)
        if self.snapshot_name is not None and known(self.snapshot_name):
            check_name("snapshot_name", self.snapshot_name)
        if known(self.branch) and not isinstance(self.branch, Mapping):
            check_ref("branch", self.branch)

    def _when(self, context: Context) -> datetime | str | None:
        """The timestamp to snapshot at (None: now)."""
        if self.point == "data_interval_end":
            end = context.get("data_interval_end")
            if end is None:
                self.log.info("The run has no data interval: snapshotting now")
                return None
            if end >= datetime.now(UTC):
                return None  # the interval ends now or later: now is its end as far as data goes
            return end
        return self.timestamp

    def execute(self, context: Context) -> SnapshotResult | None:
        ref = self.reference("branch", "branch_id")
        if self.snapshot_name is None:
            self.snapshot_name = default_snapshot_name(context)
        self._validate(at_parse=False)
        when = self._when(context)
        expires: datetime | str | None = self.expires_at
        if self.ttl is not None:
            expires = datetime.now(UTC) + check_snapshot_ttl("ttl", self.ttl)
        hook = self.hook
        project_id = self.resolved_project_id()
        branch = hook.branches.resolve(ref, project_id=project_id)
        name = self.snapshot_name
        creation = self.send(
            lambda: hook.snapshots.get_or_create(
                branch.id,
                name=name,
                lsn=self.lsn,
                timestamp=when,
                expires_at=expires,
                project_id=project_id,
            ),
            project_id=project_id,
        )
        snapshot = creation.snapshot
        if creation.created:
            self.log.info("Snapshot %r (%s) of branch %r taken", snapshot.name, snapshot.id, branch.name)
        else:
            self.log.info("Snapshot %r (%s) already exists: adopting it", snapshot.name, snapshot.id)
        result: SnapshotResult = {
            "project_id": project_id,
            "snapshot_id": snapshot.id,
            "snapshot_name": snapshot.name,
            "branch_id": branch.id,
            "created": creation.created,
            "timestamp": _iso(snapshot.point),
            "lsn": snapshot.lsn,
            "expires_at": _iso(snapshot.expires_at),
        }
        return self.wait_for(context, project_id=project_id, operations=creation.operations, result=result)


class JamboRestoreSnapshotOperator(AllOrNothingBranchOperator):
    """Restore a snapshot to a new branch (with a compute of its own), to read or check it before
    it replaces anything; or adopt the branch an earlier try restored (same name, same snapshot).

    Returns the create operator's coordinates (``project_id``, ``branch_id``, ``branch_name``,
    ``parent_id``, ``created``, ``endpoint_id``, ``host``, ``pooler_host``, ``database``, ``role``,
    ``expires_at``; never a password or a URI) plus ``snapshot_id`` and ``restored_as`` (the
    branch it would replace when finalized).

    :param snapshot: the snapshot by id or exact name (the newest of that name), or an upstream
        JamboCreateSnapshotOperator's result (templated).
    :param latest_of: instead of ``snapshot``: the latest snapshot of this branch (id or exact name;
        templated).
    :param branch_name: the new branch's exact name (templated); default ``<dag_id>-<task_id>-<run id>``.
    :param target_branch: the branch it is to replace when finalized (default: the snapshot's).
    :param compute_type: ``read_write`` (default), ``read_only``, or None for no compute.
    :param min_cu: see JamboCreateBranchOperator; also ``max_cu``, ``suspend_timeout_seconds``.
    :param database: which database to report (default: the branch's first).
    :param keep_on_failure: keep the branch when the task fails after making it.

    Unlike the create operator's run-named branches, the restored branch gets no safety expiry:
    finalizing makes it the branch it replaces (maybe the default branch, which may not expire), so
    an expiry there could delete production data. A worker killed after the restore leaves the
    branch to the janitor.
    """

    template_fields: Sequence[str] = (
        *AllOrNothingBranchOperator.template_fields,
        "snapshot",
        "latest_of",
        "branch_name",
        "target_branch",
        "database",
    )

    def __init__(
        self,
        *,
        snapshot: str | Mapping[str, Any] | None = None,
        latest_of: str | None = None,
        branch_name: str | None = None,
        target_branch: str | None = None,
        compute_type: str | None = "read_write",
        min_cu: float | None = None,
        max_cu: float | None = None,
        suspend_timeout_seconds: int | None = None,
        database: str | None = None,
        keep_on_failure: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(keep_on_failure=keep_on_failure, **kwargs)
        self.snapshot = snapshot
        self.latest_of = latest_of
        self.branch_name = branch_name
        self.target_branch = target_branch
        self.compute_type = compute_type
        self.min_cu = min_cu
        self.max_cu = max_cu
        self.suspend_timeout_seconds = suspend_timeout_seconds
        self.database = database
        if (snapshot is None) == (latest_of is None):
            raise JamboConfigError(
                "give exactly one of snapshot (id, name or a snapshot task's result) and latest_of "
                "(a branch whose latest snapshot to restore)"
            )
        check_operator_compute(compute_type, min_cu, max_cu, suspend_timeout_seconds)
        self._validate(at_parse=True)

    def _validate(self, *, at_parse: bool) -> None:
        known = self._checkable(at_parse=at_parse)
        for field in ("latest_of", "target_branch"):
            value = getattr(self, field)
            if value is not None and known(value):
                check_ref(field, value)
        if self.snapshot is not None and known(self.snapshot) and not isinstance(self.snapshot, Mapping):
            check_ref("snapshot", self.snapshot)
        for field in ("branch_name", "database"):
            value = getattr(self, field)
            if value is not None and known(value):
                check_name(field, value)

    def _snapshot(self, project_id: str) -> Snapshot:
        hook = self.hook
        if self.latest_of is not None:
            source = hook.branches.resolve(self.latest_of, project_id=project_id)
            latest = hook.snapshots.latest(source.id, project_id=project_id)
            if latest is None:
                raise JamboLookupError(
                    f"branch {source.name!r} ({source.id}) has no snapshot to restore (latest_of)"
                )
            return latest
        ref = self.reference("snapshot", "snapshot_id")
        return hook.snapshots.resolve(ref, project_id=project_id)

    def execute(self, context: Context) -> RestoredBranchResult | None:
        self._context = context
        if self.branch_name is None:
            self.branch_name = default_branch_name(context)
        self._validate(at_parse=False)
        hook = self.hook
        project_id = self.resolved_project_id()
        snapshot = self._snapshot(project_id)
        target = (
            hook.branches.resolve(self.target_branch, project_id=project_id) if self.target_branch else None
        )
        name = self.branch_name
        operations: list[Operation] = []
        existing = hook.branches.find_by_name(name, project_id=project_id)
        if existing is not None:
            if existing.restored_from != snapshot.id:
                raise JamboBranchConflict(
                    f"branch {name!r} ({existing.id}) already exists in project {project_id} and was "
                    f"not restored from snapshot {snapshot.name!r} ({snapshot.id}), so it is not "
                    "adopted: use another branch_name or delete that branch"
                )
            # This try's own when it made it before deferring (the project was locked for its
            # compute): the result pushed then names it. An earlier try's is only adopted.
            pushed = context["ti"].xcom_pull(task_ids=self.task_id, key="return_value")
            created = isinstance(pushed, Mapping) and pushed.get("branch_id") == existing.id
            self.log.info(
                "Branch %r (%s) was restored from %s already (%s): adopting it",
                name,
                existing.id,
                snapshot.id,
                "by this try" if created else "earlier",
            )
            branch = existing
            operations += hook.operations.pending_of_branch(branch.id, project_id=project_id)
        else:
            restored = self.send(
                lambda: hook.snapshots.restore(
                    snapshot.id,
                    name=name,
                    target_branch_id=target.id if target is not None else None,
                    project_id=project_id,
                ),
                project_id=project_id,
            )
            branch, created = restored.branch, True
            operations += restored.operations
            self.log.info(
                "Restored snapshot %r (%s) to branch %r (%s)", snapshot.name, snapshot.id, name, branch.id
            )
        if branch.name != name or branch.default:
            raise JamboRefusedError(
                f"the service returned branch {branch.name!r} ({branch.id}) for name {name!r}; "
                "refusing to hand it downstream"
            )
        self.remember_created(project_id, branch.id, created=created)
        with self._all_or_nothing():
            # Pushed at once: a deferral while the compute's create waits for the project must
            # find it again as this try's branch (above), and a teardown finds it.
            self.push_early(context, self._result(branch, None, snapshot, project_id, created))
            endpoint = self._compute(branch, project_id, operations)
            result = self._result(branch, endpoint, snapshot, project_id, created)
            self.push_early(context, result)
            return self.wait_for(context, project_id=project_id, operations=operations, result=result)

    def _compute(self, branch: Branch, project_id: str, operations: list[Operation]) -> Endpoint | None:
        """The branch's compute of ``compute_type``: a restore makes none, so one is created (a
        restore's operations still run, so the create queues on the project's lock)."""
        if self.compute_type is None:
            return None
        hook = self.hook
        endpoints = hook.computes.list(project_id, branch_id=branch.id)
        found = next((e for e in endpoints if e.type == self.compute_type), None)
        if found is not None:
            return found
        limits = endpoint_settings(self.min_cu, self.max_cu, self.suspend_timeout_seconds)
        created = self.send(
            lambda: hook.computes.create(
                branch.id,
                project_id=project_id,
                type=self.compute_type or "read_write",
                min_cu=limits.get("autoscaling_limit_min_cu"),
                max_cu=limits.get("autoscaling_limit_max_cu"),
                suspend_timeout_seconds=limits.get("suspend_timeout_seconds"),
            ),
            project_id=project_id,
        )
        operations.extend(created.operations)
        return created.resource

    def _result(
        self, branch: Branch, endpoint: Endpoint | None, snapshot: Snapshot, project_id: str, created: bool
    ) -> RestoredBranchResult:
        databases = list(self.hook.databases.list(branch.id, project_id=project_id))
        database = next((d for d in databases if d.name == self.database), None) if self.database else None
        if self.database and database is None:
            have = ", ".join(d.name for d in databases) or "none"
            raise JamboLookupError(f"database={self.database!r} does not exist on the branch; it has: {have}")
        database = database or next(iter(databases), None)
        return {
            "project_id": project_id,
            "branch_id": branch.id,
            "branch_name": branch.name,
            "parent_id": branch.parent_id,
            "created": created,
            "endpoint_id": endpoint.id if endpoint else None,
            "host": endpoint.host if endpoint else None,
            "pooler_host": endpoint.pooled_host if endpoint else None,
            "database": database.name if database else None,
            "role": database.owner_name if database else None,
            "expires_at": _iso(branch.expires_at),
            "snapshot_id": snapshot.id,
            "restored_as": branch.restored_as,
        }

    def failure_hint(self, result: Mapping[str, Any] | None) -> str:
        if not result or not result.get("branch_id"):
            return ""
        if self.keep_on_failure:
            return f"; branch {result['branch_id']} is kept (keep_on_failure=True)"
        return f"; branch {result['branch_id']} is deleted by this task if it made it (see the log)"


class JamboFinalizeRestoreOperator(JamboBaseOperator):
    """Put a branch restored from a snapshot in the place of the branch it was made for: its
    computes move onto it (they restart), it takes that branch's name, and that branch is renamed.

    A branch already finalized is success (a re-run). The replaced branch must not be the default
    or a protected branch unless ``allow_protected=True``.

    :param branch: the restored branch, by id or exact name, or JamboRestoreSnapshotOperator's
        result (templated).
    :param old_branch_name: the new name of the replaced branch (templated); default: the service's.
    :param allow_protected: allow replacing the default or a protected branch.
    """

    template_fields: Sequence[str] = (*JamboBaseOperator.template_fields, "branch", "old_branch_name")

    def __init__(
        self,
        *,
        branch: str | Mapping[str, Any],
        old_branch_name: str | None = None,
        allow_protected: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.branch = branch
        self.old_branch_name = old_branch_name
        self.allow_protected = allow_protected
        if self._known(branch) and not isinstance(branch, Mapping):
            check_ref("branch", branch)
        if old_branch_name is not None and self._known(old_branch_name):
            check_name("old_branch_name", old_branch_name)

    def execute(self, context: Context) -> FinalizedRestoreResult | None:
        ref = self.reference("branch", "branch_id")
        if self.old_branch_name is not None:
            check_name("old_branch_name", self.old_branch_name)
        hook = self.hook
        project_id = self.resolved_project_id()
        branch = hook.branches.resolve(ref, project_id=project_id)
        result: FinalizedRestoreResult = {
            "project_id": project_id,
            "branch_id": branch.id,
            "branch_name": branch.name,
            "replaced_branch_id": branch.restored_as,
            "finalized": True,
        }
        if branch.restore_status == "finalized":
            self.log.info("Branch %r (%s) is finalized already", branch.name, branch.id)
            return result
        if branch.restored_as is None or branch.restore_status != "restored":
            raise JamboRefusedError(
                f"branch {branch.name!r} ({branch.id}) was not restored from a snapshot "
                "(restore_status 'restored'): there is nothing to finalize"
            )
        try:
            target = hook.branches.get(branch.restored_as, project_id=project_id)
        except JamboNotFoundError:
            raise JamboBranchNotFound(
                f"branch {branch.restored_as}, which restored branch {branch.name!r} is to replace, "
                "no longer exists",
                name=branch.restored_as,
                project_id=project_id,
            ) from None
        refuse_guarded(
            target, action="replace (finalize a restore onto)", allow_protected=self.allow_protected
        )
        operations = self.send(
            lambda: hook.snapshots.finalize_restore(
                branch.id, name=self.old_branch_name, project_id=project_id
            ),
            project_id=project_id,
        )
        self.log.info(
            "Finalizing: branch %r (%s) replaces %r (%s)", branch.name, branch.id, target.name, target.id
        )
        result["branch_name"] = target.name
        return self.wait_for(context, project_id=project_id, operations=operations, result=result)


class JamboDeleteSnapshotOperator(JamboBaseOperator):
    """Delete a snapshot by id or exact name (the newest of that name); one that does not exist is
    success (logged), so a re-run or a teardown may repeat it.

    :param snapshot: id, exact name, or JamboCreateSnapshotOperator's result (templated).
    """

    template_fields: Sequence[str] = (*JamboBaseOperator.template_fields, "snapshot")

    def __init__(self, *, snapshot: str | Mapping[str, Any], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.snapshot = snapshot
        if self._known(snapshot) and not isinstance(snapshot, Mapping):
            check_ref("snapshot", snapshot)

    def execute(self, context: Context) -> DeletedSnapshotResult | None:
        ref = self.reference("snapshot", "snapshot_id")
        hook = self.hook
        project_id = self.resolved_project_id()
        gone: DeletedSnapshotResult = {
            "project_id": project_id,
            "snapshot_id": None,
            "snapshot_name": None,
            "deleted": False,
        }
        try:
            snapshot = hook.snapshots.resolve(ref, project_id=project_id)
            operations = self.send(
                lambda: hook.snapshots.delete(snapshot.id, project_id=project_id), project_id=project_id
            )
        except (JamboLookupError, JamboNotFoundError):
            self.log.info("Snapshot %r does not exist in project %s: nothing to delete", ref, project_id)
            return gone
        self.log.info("Deleting snapshot %r (%s)", snapshot.name, snapshot.id)
        result: DeletedSnapshotResult = {
            "project_id": project_id,
            "snapshot_id": snapshot.id,
            "snapshot_name": snapshot.name,
            "deleted": True,
        }
        return self.wait_for(context, project_id=project_id, operations=operations, result=result)


class JamboSetBackupScheduleOperator(JamboBaseOperator):
    """Replace a branch's backup schedule (``[]`` removes it).

    :param branch: id, exact name, or an upstream Jambo task's result (templated).
    :param schedule: items ``{"frequency": "daily"|"weekly"|"monthly", "hour": 0-23 (UTC),
        "day": weekly 1 (Monday)-7 / monthly 1-31, "retention_seconds": >= 3600}``.
    """

    template_fields: Sequence[str] = (*JamboBaseOperator.template_fields, "branch")

    def __init__(
        self, *, branch: str | Mapping[str, Any], schedule: Sequence[Mapping[str, Any]], **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.branch = branch
        self.schedule = check_backup_schedule("schedule", schedule)
        if self._known(branch) and not isinstance(branch, Mapping):
            check_ref("branch", branch)

    def execute(self, context: Context) -> BackupScheduleResult | None:
        ref = self.reference("branch", "branch_id")
        hook = self.hook
        project_id = self.resolved_project_id()
        branch = hook.branches.resolve(ref, project_id=project_id)
        self.send(
            lambda: hook.snapshots.set_schedule(branch.id, self.schedule, project_id=project_id),
            project_id=project_id,
        )
        self.log.info("Backup schedule of branch %r (%s) set: %s", branch.name, branch.id, self.schedule)
        return {"project_id": project_id, "branch_id": branch.id, "schedule": list(self.schedule)}
