"""The records of one emulator's state: projects own branches, endpoints and operations.

Plain dataclasses (a record holds data, the rules live in ``resources/``); ``state/store.py``
holds them all.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from jambo_emulator.dataplane.base import EndpointAddress, MaskRule

#: Operation statuses after which nothing more happens to the operation.
TERMINAL = frozenset({"finished", "skipped", "error", "cancelled", "failed"})
SUCCESS = frozenset({"finished", "skipped"})


@dataclass(eq=False)
class ApiKey:
    id: int
    key: str = field(repr=False)
    name: str
    created_at: float
    created_by: str
    project_id: str | None = None
    #: An organization's key (sees the org's projects); with ``project_id``, limited to that one.
    org_id: str | None = None
    revoked: bool = False
    last_used_at: float | None = None

    @property
    def personal(self) -> bool:
        return self.org_id is None and self.project_id is None


@dataclass(eq=False)
class Organization:
    id: str
    name: str
    created_at: float
    updated_at: float
    #: The emulator's one user is a member of every organization, with this member id.
    member_id: str
    plan: str = "launch"


@dataclass(eq=False)
class Role:
    branch_id: str
    name: str
    password: str = field(repr=False)
    created_at: float
    updated_at: float
    protected: bool = False
    no_login: bool = False


@dataclass(eq=False)
class Database:
    id: int
    branch_id: str
    name: str
    owner_name: str
    created_at: float
    updated_at: float


@dataclass(eq=False)
class Bucket:
    """A branch's object-storage bucket (``resources/buckets.py`` has its rules); no objects."""

    name: str
    access_level: str
    created_at: float


@dataclass(eq=False)
class Deletion:
    """A soft delete: the resource is gone from the API but recoverable until ``until`` (emulator
    clock); after that it is purged (``recovery.purge_expired``)."""

    at: float
    until: float
    #: ``user`` (a DELETE) or ``ttl`` (its ``expires_at`` passed), as ``BranchRecoveryInfo`` says.
    method: str = "user"
    #: A deleted branch's computes, restored (idle) with it.
    endpoints: list[Endpoint] = field(default_factory=list)


@dataclass(eq=False)
class Run:
    """One masking attempt of an anonymized branch (``last_run``; rules in ``resources/anonymization.py``)."""

    started_at: float
    due: float
    rules: tuple[MaskRule, ...]
    effect_done: bool = True
    effect_done_at: float = 0.0
    effect_error: str | None = None
    completed_at: float | None = None


@dataclass(eq=False)
class Anonymization:
    """What makes a branch an anonymized branch (``Branch.anonymization``)."""

    created_at: float
    updated_at: float
    rules: list[MaskRule] = field(default_factory=list)
    state: str = "created"
    status_message: str | None = "creating the branch"
    failed_at: float | None = None
    start_when_initialized: bool = False
    run: Run | None = None


@dataclass(eq=False)
class Branch:
    id: str
    project_id: str
    name: str
    created_at: float
    updated_at: float
    current_state: str
    state_changed_at: float
    seq: int
    pending_state: str | None = None
    parent_id: str | None = None
    parent_lsn: str | None = None
    parent_timestamp: float | None = None
    default: bool = False
    protected: bool = False
    init_source: str | None = None
    expires_at: float | None = None
    ttl_interval_seconds: int | None = None
    last_reset_at: float | None = None
    #: When its creating operation finished (emulator clock): its data exists from then on.
    created_data_at: float | None = None
    annotation: dict[str, str] | None = None
    annotation_created_at: float | None = None
    annotation_updated_at: float | None = None
    creation_source: str = "console"
    databases: dict[str, Database] = field(default_factory=dict)
    roles: dict[str, Role] = field(default_factory=dict)
    #: Bucket name -> what happened to it on this branch, oldest first: ((time, store seq), the
    #: bucket created, or None for a delete). Kept whole, since children forked earlier see the
    #: past (``resources/buckets.py``); inherited buckets live on the ancestor that created them.
    buckets: dict[str, list[tuple[tuple[float, int], Bucket | None]]] = field(default_factory=dict)
    #: Set for branches made by ``POST .../branch_anonymized`` (``resources/anonymization.py``).
    anonymization: Anonymization | None = None
    #: Set while the branch is soft-deleted (it then lives in ``Project.deleted_branches``).
    deleted: Deletion | None = None
    #: A branch made by a snapshot restore: the snapshot, the branch it is to replace, the
    #: ``restore_status`` (``restored``, then ``finalized``) and the WAL position its data starts
    #: at (no history before it; set by the restore's copy).
    restored_from: str | None = None
    restored_as: str | None = None
    restore_status: str | None = None
    restore_lsn: str | None = None


@dataclass(eq=False)
class Snapshot:
    """A branch's databases as of one point, kept apart from every branch (``resources/snapshots.py``)."""

    id: str
    project_id: str
    name: str
    source_branch_id: str
    created_at: float
    seq: int
    #: The point it holds: emulator-clock time, and the WAL position once the copy reports it.
    timestamp: float
    lsn: str | None = None
    expires_at: float | None = None
    manual: bool = True
    #: What the source branch consisted of (restored branches start with these).
    databases: dict[str, Database] = field(default_factory=dict)
    roles: dict[str, Role] = field(default_factory=dict, repr=False)


@dataclass(frozen=True)
class ScheduleItem:
    """One entry of a branch's backup schedule (``BackupScheduleItem``)."""

    frequency: str
    hour: int = 0
    day: int | None = None
    month: int | None = None
    retention_seconds: int | None = None


@dataclass(eq=False)
class BackupSchedule:
    items: list[ScheduleItem]
    #: Occurrences up to this time (emulator clock) were taken, or were before the schedule.
    checked_at: float


@dataclass(eq=False)
class Endpoint:
    id: str
    project_id: str
    branch_id: str
    region_id: str
    type: str
    created_at: float
    updated_at: float
    current_state: str
    min_cu: float
    max_cu: float
    suspend_timeout_seconds: int
    provisioner: str
    pending_state: str | None = None
    name: str | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    disabled: bool = False
    passwordless_access: bool = False
    pooler_enabled: bool = False
    started_at: float | None = None
    suspended_at: float | None = None
    last_active: float | None = None
    address: EndpointAddress | None = None


@dataclass(eq=False)
class Operation:
    id: str
    seq: int
    project_id: str
    action: str
    created_at: float
    updated_at: float
    duration: float
    outcome: str
    branch_id: str | None = None
    endpoint_id: str | None = None
    status: str = "scheduling"
    failures_count: int = 0
    error: str | None = None
    retry_at: float | None = None
    #: Internal scheduling state (never serialised).
    after: Operation | None = None
    start_at: float | None = None
    finish_due: float | None = None
    finished_at: float | None = None
    failed_generation: int = -1
    #: When the engine's heap expects to look at it next (None: ended; inf: waiting on a call).
    scheduled_due: float | None = None
    on_finish: Callable[[Operation], None] | None = None
    on_fail: Callable[[Operation], None] | None = None
    effect_done: bool = True
    effect_done_at: float = 0.0
    effect_error: str | None = None
    effect_result: Any = None


@dataclass(eq=False)
class Permission:
    """Access to a project granted to someone by email (revoked ones are kept, with the time)."""

    id: str
    email: str
    granted_at: float
    revoked_at: float | None = None


@dataclass(eq=False)
class Project:
    id: str
    name: str
    region_id: str
    pg_version: int
    created_at: float
    updated_at: float
    seq: int
    owner_id: str
    org_id: str | None = None
    store_passwords: bool = True
    history_retention_seconds: int = 86400
    settings: dict[str, Any] = field(default_factory=dict)
    default_endpoint_settings: dict[str, Any] = field(default_factory=dict)
    provisioner: str = "k8s-neonvm"
    branches: dict[str, Branch] = field(default_factory=dict)
    endpoints: dict[str, Endpoint] = field(default_factory=dict)
    operations: list[Operation] = field(default_factory=list)
    operations_by_id: dict[str, Operation] = field(default_factory=dict)
    permissions: dict[str, Permission] = field(default_factory=dict)
    #: Soft-deleted branches, recoverable until their ``deleted.until``.
    deleted_branches: dict[str, Branch] = field(default_factory=dict)
    snapshots: dict[str, Snapshot] = field(default_factory=dict)
    #: Branch id -> its backup schedule.
    backup_schedules: dict[str, BackupSchedule] = field(default_factory=dict)
    #: Set while the project is soft-deleted (it then lives in ``Store.deleted_projects``).
    deleted: Deletion | None = None

    def default_branch(self) -> Branch:
        for branch in self.branches.values():
            if branch.default:
                return branch
        raise LookupError(f"project {self.id} has no default branch")  # a store invariant

    def children_of(self, branch_id: str) -> list[Branch]:
        return [b for b in self.branches.values() if b.parent_id == branch_id]

    def branch_endpoints(self, branch_id: str) -> list[Endpoint]:
        return [e for e in self.endpoints.values() if e.branch_id == branch_id]

    def branch_by_name(self, name: str) -> Branch | None:
        for branch in self.branches.values():
            if branch.name == name:
                return branch
        return None
