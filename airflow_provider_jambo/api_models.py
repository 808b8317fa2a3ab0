"""Parsed API data: small frozen dataclasses that tolerate what the spec does not promise.

Each model takes the fields the provider uses and keeps the whole JSON object in ``raw`` (hidden
from ``repr``) so nothing the service adds later is lost. Unknown enum values never raise: an
operation status the provider does not know parses to ``OperationStatus.UNKNOWN`` and counts as in
flight. Passwords are never stored in ``raw`` and never shown in a ``repr``.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

from airflow_provider_jambo.rules import SCHEMA_ONLY, parse_datetime

T = TypeVar("T")


class _Unset(enum.Enum):
    """Sentinel type: "leave this field alone" as opposed to ``None`` ("clear it")."""

    UNSET = "UNSET"

    def __repr__(self) -> str:
        return "UNSET"


UNSET = _Unset.UNSET


class OperationStatus(enum.StrEnum):
    """Status of an operation; unknown values map to ``UNKNOWN`` (treated as in flight).

    Whether an *operation* is still pending depends on more than its status (``failed`` with a
    ``retry_at`` is retried by the service): that is :attr:`Operation.is_pending`, the one
    definition every caller uses.
    """

    SCHEDULING = "scheduling"
    RUNNING = "running"
    FINISHED = "finished"
    FAILED = "failed"
    ERROR = "error"
    CANCELLING = "cancelling"
    CANCELLED = "cancelled"
    SKIPPED = "skipped"
    UNKNOWN = "unknown"

    @classmethod
    def _missing_(cls, value: object) -> OperationStatus:
        return cls.UNKNOWN

    @property
    def is_success(self) -> bool:
        return self in SUCCESS_STATUSES

    @property
    def is_failure(self) -> bool:
        """A final failure. ``failed`` is not in here: the service may still retry it."""
        return self in FAILURE_STATUSES

    @property
    def is_in_flight(self) -> bool:
        return self in IN_FLIGHT_STATUSES or self is OperationStatus.UNKNOWN


SUCCESS_STATUSES = frozenset({OperationStatus.FINISHED, OperationStatus.SKIPPED})
FAILURE_STATUSES = frozenset({OperationStatus.ERROR, OperationStatus.CANCELLED})
IN_FLIGHT_STATUSES = frozenset(
    {OperationStatus.SCHEDULING, OperationStatus.RUNNING, OperationStatus.CANCELLING}
)
#: Statuses after which nothing more happens to an operation. ``failed`` is absent: it is final
#: only once the service stops retrying it (no ``retry_at``).
TERMINAL_STATUSES = SUCCESS_STATUSES | FAILURE_STATUSES


def _str(data: Mapping[str, Any], key: str) -> str | None:
    value = data.get(key)
    return value if isinstance(value, str) else None


def _num(data: Mapping[str, Any], key: str) -> float | None:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return value


def _opt_int(data: Mapping[str, Any], key: str) -> int | None:
    value = data.get(key)
    # bool is an int subclass, but ``true`` is not a number here.
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _int(data: Mapping[str, Any], key: str, default: int = 0) -> int:
    value = _opt_int(data, key)
    return default if value is None else value


def _obj(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _objs(value: Any) -> list[Mapping[str, Any]]:
    return [item for item in value if isinstance(item, Mapping)] if isinstance(value, list) else []


@dataclass(frozen=True)
class Operation:
    id: str
    project_id: str
    action: str
    status: OperationStatus
    branch_id: str | None = None
    endpoint_id: str | None = None
    error: str | None = None
    failures_count: int = 0
    retry_at: datetime | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    total_duration_ms: int = 0
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> Operation:
        return cls(
            id=str(data.get("id", "")),
            project_id=str(data.get("project_id", "")),
            action=str(data.get("action", "unknown")),
            status=OperationStatus(str(data.get("status") or OperationStatus.UNKNOWN)),
            branch_id=_str(data, "branch_id"),
            endpoint_id=_str(data, "endpoint_id"),
            error=_str(data, "error") or None,
            failures_count=_int(data, "failures_count"),
            retry_at=parse_datetime(data.get("retry_at")),
            created_at=parse_datetime(data.get("created_at")),
            updated_at=parse_datetime(data.get("updated_at")),
            total_duration_ms=_int(data, "total_duration_ms"),
            raw=dict(data),
        )

    @property
    def is_succeeded(self) -> bool:
        return self.status.is_success

    @property
    def is_pending(self) -> bool:
        """Not done yet: in flight, of an unknown status, or ``failed`` with a ``retry_at`` (the
        service will try it again). The hook, the operators, the sensor and the waiting rules all
        ask this, so none of them skips an operation the service is still working on."""
        if self.status is OperationStatus.FAILED:
            return self.retry_at is not None
        return self.status not in TERMINAL_STATUSES

    @property
    def is_failed(self) -> bool:
        """Done without success: ``error``/``cancelled``, or ``failed`` with no retry planned."""
        return not self.is_pending and not self.is_succeeded

    def describe(self) -> str:
        """``create_branch 5f0c… on br-x: <error>`` for failure messages."""
        target = self.endpoint_id or self.branch_id or self.project_id
        text = f"{self.action} {self.id} on {target}: {self.status.value}"
        if self.error:
            text += f" ({self.error})"
        return text


@dataclass(frozen=True)
class Project:
    id: str
    name: str
    region_id: str | None = None
    org_id: str | None = None
    pg_version: int | None = None
    created_at: datetime | None = None
    #: How far back points in time reach (branch creates, restores, snapshots).
    history_retention_seconds: int | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> Project:
        return cls(
            id=str(data.get("id", "")),
            name=str(data.get("name", "")),
            region_id=_str(data, "region_id"),
            org_id=_str(data, "org_id"),
            pg_version=_opt_int(data, "pg_version"),
            created_at=parse_datetime(data.get("created_at")),
            history_retention_seconds=_opt_int(data, "history_retention_seconds"),
            raw=dict(data),
        )


@dataclass(frozen=True)
class Branch:
    id: str
    project_id: str
    name: str
    parent_id: str | None = None
    current_state: str = "unknown"
    pending_state: str | None = None
    default: bool = False
    protected: bool = False
    expires_at: datetime | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    #: ``parent-data`` or ``schema-only`` as the service reports it; None when it does not say.
    init_source: str | None = None
    #: A branch made by a snapshot restore: the snapshot, the branch it replaces (or is to), and
    #: ``restored`` (not yet finalized) or ``finalized``.
    restored_from: str | None = None
    restored_as: str | None = None
    restore_status: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> Branch:
        return cls(
            id=str(data.get("id", "")),
            project_id=str(data.get("project_id", "")),
            name=str(data.get("name", "")),
            parent_id=_str(data, "parent_id"),
            current_state=_str(data, "current_state") or "unknown",
            pending_state=_str(data, "pending_state"),
            # `primary` is the deprecated spelling of `default`.
            default=bool(data.get("default", data.get("primary", False))),
            protected=bool(data.get("protected", False)),
            expires_at=parse_datetime(data.get("expires_at")),
            created_at=parse_datetime(data.get("created_at")),
            updated_at=parse_datetime(data.get("updated_at")),
            init_source=_str(data, "init_source"),
            restored_from=_str(data, "restored_from"),
            restored_as=_str(data, "restored_as"),
            restore_status=_str(data, "restore_status"),
            raw=dict(data),
        )

    @property
    def is_schema_only_root(self) -> bool:
        """A root created with ``init_source=schema-only``: the service records no parent for it.
        The default branch is a root too, so it never counts; a root that does not report its
        init_source is given the benefit of the doubt."""
        return self.parent_id is None and not self.default and self.init_source in (None, SCHEMA_ONLY)

    @property
    def is_ready(self) -> bool:
        return self.current_state == "ready" and not self.pending_state


@dataclass(frozen=True)
class Endpoint:
    id: str
    project_id: str
    branch_id: str
    type: str
    host: str = ""
    current_state: str = "unknown"
    pending_state: str | None = None
    min_cu: float | None = None
    max_cu: float | None = None
    suspend_timeout_seconds: int | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> Endpoint:
        return cls(
            id=str(data.get("id", "")),
            project_id=str(data.get("project_id", "")),
            branch_id=str(data.get("branch_id", "")),
            type=str(data.get("type", "unknown")),
            host=str(data.get("host", "")),
            current_state=_str(data, "current_state") or "unknown",
            pending_state=_str(data, "pending_state"),
            min_cu=_num(data, "autoscaling_limit_min_cu"),
            max_cu=_num(data, "autoscaling_limit_max_cu"),
            suspend_timeout_seconds=_opt_int(data, "suspend_timeout_seconds"),
            raw=dict(data),
        )

    @property
    def pooled_host(self) -> str:
        """The pooler's host: ``-pooler`` inserted after the endpoint id."""
        first, dot, rest = self.host.partition(".")
        return f"{first}-pooler{dot}{rest}" if first else ""


@dataclass(frozen=True)
class Database:
    id: int | None
    branch_id: str
    name: str
    owner_name: str
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> Database:
        return cls(
            id=_opt_int(data, "id"),
            branch_id=str(data.get("branch_id", "")),
            name=str(data.get("name", "")),
            owner_name=str(data.get("owner_name", "")),
            raw=dict(data),
        )


@dataclass(frozen=True)
class Role:
    """A Postgres role; ``password`` only when the API returned one (create/reset), never in repr."""

    branch_id: str
    name: str
    protected: bool = False
    password: str | None = field(default=None, repr=False)
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> Role:
        password = _str(data, "password")
        return cls(
            branch_id=str(data.get("branch_id", "")),
            name=str(data.get("name", "")),
            protected=bool(data.get("protected", False)),
            password=password,
            raw={k: v for k, v in data.items() if k != "password"},
        )


@dataclass(frozen=True)
class Snapshot:
    """A branch's data as of one point (``lsn``/``timestamp``), kept until ``expires_at``."""

    id: str
    name: str
    source_branch_id: str | None = None
    created_at: datetime | None = None
    timestamp: datetime | None = None
    lsn: str | None = None
    expires_at: datetime | None = None
    #: False for a snapshot a backup schedule took.
    manual: bool = True
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> Snapshot:
        return cls(
            id=str(data.get("id", "")),
            name=str(data.get("name", "")),
            source_branch_id=_str(data, "source_branch_id"),
            created_at=parse_datetime(data.get("created_at")),
            timestamp=parse_datetime(data.get("timestamp")),
            lsn=_str(data, "lsn"),
            expires_at=parse_datetime(data.get("expires_at")),
            manual=bool(data.get("manual", True)),
            raw=dict(data),
        )

    @property
    def point(self) -> datetime | None:
        """The moment its data is from (the creation time when the service does not say)."""
        return self.timestamp or self.created_at


@dataclass(frozen=True)
class BackupScheduleItem:
    """One frequency of a branch's backup schedule (``hour`` UTC; ``day`` of week 1-7 or month)."""

    frequency: str
    hour: int | None = None
    day: int | None = None
    month: int | None = None
    retention_seconds: int | None = None

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> BackupScheduleItem:
        return cls(
            frequency=str(data.get("frequency", "")),
            hour=_opt_int(data, "hour"),
            day=_opt_int(data, "day"),
            month=_opt_int(data, "month"),
            retention_seconds=_opt_int(data, "retention_seconds"),
        )

    def to_api(self) -> dict[str, Any]:
        fields = {"hour": self.hour, "day": self.day, "month": self.month}
        fields["retention_seconds"] = self.retention_seconds
        return {"frequency": self.frequency, **{k: v for k, v in fields.items() if v is not None}}


@dataclass(frozen=True)
class BackupSchedule:
    """A branch's backup schedule (empty: no scheduled snapshots)."""

    items: tuple[BackupScheduleItem, ...] = ()

    @classmethod
    def from_api(cls, body: Any) -> BackupSchedule:
        return cls(tuple(BackupScheduleItem.from_api(i) for i in _objs(_obj(body).get("schedule"))))

    def to_api(self) -> dict[str, Any]:
        return {"schedule": [item.to_api() for item in self.items]}


@dataclass(frozen=True)
class ConnectionDetails:
    """One entry of ``connection_uris``; the URI holds a password, so it is hidden from repr."""

    uri: str = field(repr=False)
    host: str = ""
    pooler_host: str = ""
    database: str = ""
    role: str = ""

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> ConnectionDetails:
        params = _obj(data.get("connection_parameters"))
        return cls(
            uri=str(data.get("connection_uri", "")),
            host=str(params.get("host", "")),
            pooler_host=str(params.get("pooler_host", "")),
            database=str(params.get("database", "")),
            role=str(params.get("role", "")),
        )

    @property
    def password(self) -> str | None:
        from urllib.parse import unquote, urlsplit

        secret = urlsplit(self.uri).password
        return unquote(secret) if secret else None


def parse_operations(body: Any) -> list[Operation]:
    return [Operation.from_api(item) for item in _objs(_obj(body).get("operations"))]


def _created_with(data: Mapping[str, Any]) -> dict[str, Any]:
    """What a create answer (project or branch) carries beside the new resource."""
    return {
        "endpoints": [Endpoint.from_api(e) for e in _objs(data.get("endpoints"))],
        "operations": parse_operations(data),
        "databases": [Database.from_api(d) for d in _objs(data.get("databases"))],
        "roles": [Role.from_api(r) for r in _objs(data.get("roles"))],
        "connection_uris": [ConnectionDetails.from_api(c) for c in _objs(data.get("connection_uris"))],
    }


@dataclass(frozen=True)
class Mutation(Generic[T]):
    """A changed resource and the operations that carry the change out."""

    resource: T
    operations: list[Operation] = field(default_factory=list)


@dataclass(frozen=True)
class BranchCreation:
    """Result of create/get-or-create; ``created`` is False when an existing branch was adopted."""

    branch: Branch
    endpoints: list[Endpoint] = field(default_factory=list)
    operations: list[Operation] = field(default_factory=list)
    created: bool = True
    databases: list[Database] = field(default_factory=list)
    roles: list[Role] = field(default_factory=list)
    connection_uris: list[ConnectionDetails] = field(default_factory=list, repr=False)

    @property
    def read_write_endpoint(self) -> Endpoint | None:
        return next((ep for ep in self.endpoints if ep.type == "read_write"), None)

    @classmethod
    def from_api(cls, body: Any, *, created: bool = True) -> BranchCreation:
        data = _obj(body)
        return cls(
            branch=Branch.from_api(_obj(data.get("branch"))),
            created=created,
            **_created_with(data),
        )


@dataclass(frozen=True)
class ProjectCreation:
    project: Project
    branch: Branch | None = None
    endpoints: list[Endpoint] = field(default_factory=list)
    operations: list[Operation] = field(default_factory=list)
    databases: list[Database] = field(default_factory=list)
    roles: list[Role] = field(default_factory=list)
    connection_uris: list[ConnectionDetails] = field(default_factory=list, repr=False)

    @classmethod
    def from_api(cls, body: Any) -> ProjectCreation:
        data = _obj(body)
        branch = _obj(data.get("branch"))
        return cls(
            project=Project.from_api(_obj(data.get("project"))),
            branch=Branch.from_api(branch) if branch else None,
            **_created_with(data),
        )


__all__ = [
    "FAILURE_STATUSES",
    "IN_FLIGHT_STATUSES",
    "SCHEMA_ONLY",
    "SUCCESS_STATUSES",
    "TERMINAL_STATUSES",
    "UNSET",
    "BackupSchedule",
    "BackupScheduleItem",
    "Branch",
    "BranchCreation",
    "ConnectionDetails",
    "Database",
    "Endpoint",
    "Mutation",
    "Operation",
    "OperationStatus",
    "Project",
    "ProjectCreation",
    "Role",
    "Snapshot",
    "parse_datetime",
    "parse_operations",
]
