"""The seam between the emulator's control plane (API state) and its optional data plane.

The control-plane store calls these methods at the moment the emulated service would change real
data: when a branch is created or reset (the copy happens *then*, so later writes on the parent are
not seen by the child), when databases and roles are created or deleted, when computes start or stop.
A data plane must never raise for "already gone" on deletes: the API answers 204 for those.

Roles and their passwords are part of a branch's data, as on the real service: a new branch starts
with its parent's roles *and passwords*, and a reset gives the branch the source's roles and
passwords. A control plane that reports other passwords for the child must call
``set_role_password`` for them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class MaskRule:
    """One column to mask: ``function`` (``anon.fake_email()``, ``NULL``) or a constant ``value``."""

    database: str
    schema: str
    table: str
    column: str
    function: str | None = None
    value: str | None = None

    @property
    def target(self) -> str:
        return f"{self.database}.{self.schema}.{self.table}.{self.column}"


class DataPlaneError(RuntimeError):
    """The data plane cannot do what was asked (bad name, server gone). Text never holds a password."""


@dataclass(frozen=True)
class PointInTime:
    """A past moment of a branch's data: a WAL position the data plane reported
    (``pg_current_wal_lsn()`` text such as ``0/16B3748``), or a wall-clock time in epoch seconds
    (real time, not the emulator's clock: the service converts). Exactly one is set."""

    lsn: str | None = None
    timestamp: float | None = None

    def __post_init__(self) -> None:
        if (self.lsn is None) == (self.timestamp is None):
            raise ValueError("a point in time is either an lsn or a timestamp")


def parse_lsn(text: str) -> int:
    """``X/Y`` (hex halves, as PostgreSQL prints an LSN) -> its 64-bit position; ValueError if not."""
    high, sep, low = text.strip().partition("/")
    if not sep or not high or not low or len(high) > 8 or len(low) > 8:
        raise ValueError(f"{text!r} is not an LSN (two hexadecimal halves, e.g. 0/16B3748)")
    return (int(high, 16) << 32) | int(low, 16)


def format_lsn(position: int) -> str:
    return f"{position >> 32:X}/{position & 0xFFFFFFFF:X}"


@dataclass(frozen=True)
class EndpointAddress:
    """Where a compute really accepts connections, as its connection URIs must say.

    The control plane builds ``postgresql://{role}:{password}@{host}:{port}/{database}?{query}``
    (``pooler_host`` for pooled URIs). The data plane decides the host names and the query (for
    example ``sslmode=require&hostaddr=127.0.0.1``, which keeps the real host shape while libpq
    connects to loopback).
    """

    host: str
    pooler_host: str
    port: int
    query: str


class DataPlane(Protocol):
    #: True when URIs the API hands out really connect (a running PostgreSQL behind them).
    enabled: bool

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def reset(self) -> None:
        """Forget every project's data (the emulator's reset); the server keeps running."""

    def delete_project(self, project_id: str) -> None:
        """Drop all branches, databases and endpoints of the project."""

    def create_branch(
        self,
        project_id: str,
        branch_id: str,
        parent_branch_id: str | None,
        *,
        schema_only: bool = False,
        at: PointInTime | None = None,
    ) -> str | None:
        """Copy the parent's databases and roles now, or as they were ``at`` a past point
        (``parent_branch_id`` None: a new, empty root). Returns the real WAL position the copy
        stands at (the branch's ``parent_lsn``), None without a real server."""

    def reset_branch(
        self, project_id: str, branch_id: str, source_branch_id: str, *, at: PointInTime | None = None
    ) -> str | None:
        """Replace the branch's data with the source branch's data now, or ``at`` a past point
        (the source may be the branch itself); the WAL position, as for ``create_branch``."""

    def history_start(self, project_id: str) -> str | None:
        """The WAL position at which the project's data began (points before it did not exist);
        None when unknown. In-memory: quick, callable from a request handler."""

    def latest_lsn(self, project_id: str) -> str | None:
        """The latest WAL position recorded for the project (every branch existing then can be
        read at it; never before ``history_start``); None when unknown. In-memory, like
        ``history_start``: what a create answers as ``parent_lsn`` before its copy reports one."""

    def delete_branch(self, project_id: str, branch_id: str) -> None:
        """Drop the branch's data and computes for good (a detached branch's too)."""

    def detach_branch(self, project_id: str, branch_id: str) -> None:
        """A soft delete: the branch's computes go and its data becomes unreachable, but is kept
        until ``attach_branch`` brings it back or ``delete_branch``/``delete_project`` drops it."""

    def attach_branch(self, project_id: str, branch_id: str) -> None:
        """Recovery: a detached branch's data is the branch's again (computes are started by the
        caller). DataPlaneError when nothing was kept for it."""

    def create_database(self, project_id: str, branch_id: str, name: str, owner: str) -> None: ...

    def delete_database(self, project_id: str, branch_id: str, name: str) -> None: ...

    def update_database(
        self, project_id: str, branch_id: str, name: str, *, new_name: str | None, owner: str | None
    ) -> None:
        """Rename the real database (its sessions are ended, as the compute's restart ends them)
        and/or give it another owner among the branch's roles."""

    def create_role(self, project_id: str, branch_id: str, name: str, password: str) -> None: ...

    def delete_role(self, project_id: str, branch_id: str, name: str) -> None: ...

    def set_role_password(self, project_id: str, branch_id: str, name: str, password: str) -> None: ...

    def reserve_endpoint(
        self, project_id: str, branch_id: str, endpoint_id: str, *, host: str, read_only: bool = False
    ) -> EndpointAddress | None:
        """The address a new compute will have once started, fixed now so the create response's
        URIs already name it (connections are refused until ``start_endpoint``); None without a
        real server. Called from a request handler: must be quick and not wait for other calls."""

    def start_endpoint(
        self,
        project_id: str,
        branch_id: str,
        endpoint_id: str,
        *,
        host: str | None = None,
        read_only: bool = False,
    ) -> EndpointAddress | None:
        """Make the compute accept connections; None when there is no real server (null plane).

        ``host`` is the endpoint's host as the API reports it (kept in the returned address so URIs
        keep the real shape); ``read_only`` endpoints refuse writes.
        """

    def suspend_endpoint(self, project_id: str, branch_id: str, endpoint_id: str) -> None: ...

    def delete_endpoint(self, project_id: str, branch_id: str, endpoint_id: str) -> None: ...

    def schema_dump(
        self, project_id: str, branch_id: str, database: str, *, at: PointInTime | None = None
    ) -> str | None:
        """Real DDL of the database (pg_dump --schema-only), now or ``at`` a past point, or None
        when there is no real data."""

    def apply_masking(self, project_id: str, branch_id: str, rules: Sequence[MaskRule]) -> None:
        """Static masking in the branch's own copy (never its parent's): each database's rules in
        one transaction; DataPlaneError naming the table or column that cannot be masked."""


class NullDataPlane:
    """Control plane only: every call is a no-op; URIs keep the real service's shapes."""

    enabled = False

    def start(self) -> None:
        return None

    def stop(self) -> None:
        return None

    def reset(self) -> None:
        return None

    def delete_project(self, project_id: str) -> None:
        return None

    def create_branch(
        self,
        project_id: str,
        branch_id: str,
        parent_branch_id: str | None,
        *,
        schema_only: bool = False,
        at: PointInTime | None = None,
    ) -> str | None:
        return None

    def reset_branch(
        self, project_id: str, branch_id: str, source_branch_id: str, *, at: PointInTime | None = None
    ) -> str | None:
        return None

    def history_start(self, project_id: str) -> str | None:
        return None

    def latest_lsn(self, project_id: str) -> str | None:
        return None

    def delete_branch(self, project_id: str, branch_id: str) -> None:
        return None

    def detach_branch(self, project_id: str, branch_id: str) -> None:
        return None

    def attach_branch(self, project_id: str, branch_id: str) -> None:
        return None

    def create_database(self, project_id: str, branch_id: str, name: str, owner: str) -> None:
        return None

    def delete_database(self, project_id: str, branch_id: str, name: str) -> None:
        return None

    def update_database(
        self, project_id: str, branch_id: str, name: str, *, new_name: str | None, owner: str | None
    ) -> None:
        return None

    def create_role(self, project_id: str, branch_id: str, name: str, password: str) -> None:
        return None

    def delete_role(self, project_id: str, branch_id: str, name: str) -> None:
        return None

    def set_role_password(self, project_id: str, branch_id: str, name: str, password: str) -> None:
        return None

    def reserve_endpoint(
        self, project_id: str, branch_id: str, endpoint_id: str, *, host: str, read_only: bool = False
    ) -> EndpointAddress | None:
        return None

    def start_endpoint(
        self,
        project_id: str,
        branch_id: str,
        endpoint_id: str,
        *,
        host: str | None = None,
        read_only: bool = False,
    ) -> EndpointAddress | None:
        return None

    def suspend_endpoint(self, project_id: str, branch_id: str, endpoint_id: str) -> None:
        return None

    def delete_endpoint(self, project_id: str, branch_id: str, endpoint_id: str) -> None:
        return None

    def schema_dump(
        self, project_id: str, branch_id: str, database: str, *, at: PointInTime | None = None
    ) -> str | None:
        return None

    def apply_masking(self, project_id: str, branch_id: str, rules: Sequence[MaskRule]) -> None:
        return None
