"""The physical layout behind the emulated branches: what each branch consists of (its server,
its databases and roles, their history of versions for point-in-time copies) and the names and
grants of its roles (see ``postgres.py`` for why).
"""

from __future__ import annotations

import datetime
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field

from jambo_emulator.dataplane.base import DataPlaneError, PointInTime, parse_lsn
from jambo_emulator.dataplane.pg_server import ADMIN_USER
from jambo_emulator.dataplane.pgwire import quote_ident
from jambo_emulator.dataplane.pool import GROUP_ROLE, BranchServer

#: Bytes of a logical name kept in physical names (PostgreSQL allows 63 in all).
LOGICAL_PREFIX_BYTES = 40
#: Suffix of the read-only counterpart of each role (read-only endpoints log in as it).
READ_ONLY_SUFFIX = "~ro"


@dataclass(frozen=True)
class Version:
    """What a branch consisted of from one moment on (its history, to find a past state in)."""

    time: float  # wall clock, after the change had committed
    lsn: int  # WAL insert position of the branch's server after the change
    databases: dict[str, tuple[str, str]]
    roles: dict[str, str] = field(repr=False)


@dataclass
class PhysicalBranch:
    #: The branch's own server, for its whole life (a reset copies into it), so its history of
    #: versions and the server's WAL (where point-in-time copies recover from) are one timeline.
    server: BranchServer
    #: logical -> (name on the server, owner); the same name but for ``CLUSTER_DATABASES`` and
    #: while a reset swaps copies in.
    databases: dict[str, tuple[str, str]] = field(default_factory=dict)
    roles: dict[str, str] = field(default_factory=dict, repr=False)  # role -> password (secret)
    history: list[Version] = field(default_factory=list, repr=False)

    def at(self, point: PointInTime) -> Version | None:
        """The version current at ``point`` (None: the branch did not exist yet)."""
        found = None
        for version in self.history:
            if point.lsn is not None and version.lsn > parse_lsn(point.lsn):
                break
            if point.timestamp is not None and version.time > point.timestamp:
                break
            found = version
        return found


@dataclass
class PhysicalEndpoint:
    project_id: str
    branch_id: str
    host: str
    read_only: bool
    port: int = 0
    running: bool = False


def role_name(logical: str, *, read_only: bool = False) -> str:
    """The server role behind a branch's role: the same name (each branch has its own server),
    or ``neondb_owner~ro`` for read-only endpoints, shortened with a hash when that would exceed
    PostgreSQL's 63 bytes."""
    if not read_only:
        return logical
    raw = logical.encode("utf-8")
    if len(raw) + len(READ_ONLY_SUFFIX) > 63:
        digest = hashlib.sha256(raw).hexdigest()[:8]
        logical = raw[: LOGICAL_PREFIX_BYTES - 9].decode("utf-8", "ignore") + "_" + digest
    return logical + READ_ONLY_SUFFIX


def database_access(physical: str, owner: str, roles: Iterable[str]) -> str:
    """SQL that makes the branch's roles the only ones that can reach one of its databases:
    its owner is the branch's owner role, nobody else (no PUBLIC) may connect; read-write roles
    may connect and make temp tables, read-only roles may only connect."""
    db = quote_ident(physical)
    statements = [
        f"ALTER DATABASE {db} OWNER TO {quote_ident(owner)}",
        f"REVOKE ALL ON DATABASE {db} FROM PUBLIC",
    ]
    for role in roles:
        statements.append(f"GRANT CONNECT, TEMPORARY ON DATABASE {db} TO {quote_ident(role)}")
        statements.append(f"GRANT CONNECT ON DATABASE {db} TO {quote_ident(role_name(role, read_only=True))}")
    return "; ".join(statements)


def check_role_name(name: str) -> None:
    if (
        not name
        or name.startswith("pg_")
        or name.endswith(READ_ONLY_SUFFIX)
        or name in (ADMIN_USER, GROUP_ROLE)
    ):
        raise DataPlaneError(
            f"role name {name!r} is reserved (names starting with 'pg_' or ending with "
            f"{READ_ONLY_SUFFIX!r}, {ADMIN_USER!r} and {GROUP_ROLE!r})"
        )


def version_at(branch: PhysicalBranch, branch_id: str, at: PointInTime) -> Version:
    """The branch's version current at ``at``, or an error naming the point."""
    version = branch.at(at)
    if version is None:
        raise DataPlaneError(f"branch {branch_id} did not exist yet at {describe(at)}")
    return version


def describe(at: PointInTime) -> str:
    if at.lsn is not None:
        return f"lsn {at.lsn}"
    assert at.timestamp is not None
    return datetime.datetime.fromtimestamp(at.timestamp, datetime.UTC).isoformat()
