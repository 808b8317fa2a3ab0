"""Making, copying and dropping the databases and roles of branches on their servers: ``pg_dump |
pg_restore`` from one consistent snapshot into the branch's own server (``CREATE DATABASE ...
TEMPLATE`` when source and copy share a server and nobody is connected to the source), and a
point-in-time copy from a temporary server recovered from the source's server to that point.

Every branch has its own server, where its roles have their own names, so a copy's owners and
grants name roles that exist in the target as they are: nothing is renamed after a copy.

``PostgresDataPlane`` (``postgres.py``) decides when; this module knows how. Callers hold the data
plane's DDL lock.
"""

from __future__ import annotations

import contextlib
import datetime
import itertools
import subprocess
import tempfile
from collections.abc import Iterable, Iterator

from jambo_emulator.dataplane.base import DataPlaneError, PointInTime, format_lsn, parse_lsn
from jambo_emulator.dataplane.pg_server import PostgresServer
from jambo_emulator.dataplane.pgwire import (
    DEPENDENT_OBJECTS_STILL_EXIST,
    DUPLICATE_OBJECT,
    OBJECT_IN_USE,
    PgServerError,
    quote_ident,
    quote_literal,
)
from jambo_emulator.dataplane.physical import (
    LOGICAL_PREFIX_BYTES,
    PhysicalBranch,
    Version,
    check_role_name,
    database_access,
    role_name,
    version_at,
)
from jambo_emulator.dataplane.pool import CLUSTER_DATABASES, GROUP_ROLE, BranchServer

#: Replaying a long history into the temporary server can take a while.
_RECOVERY_TIMEOUT = 300.0


class PhysicalCopies:
    """The copy machinery (and the numbering of temporary and reserved-name databases)."""

    def __init__(self) -> None:
        self._names = itertools.count(1)

    def copy_branch(
        self,
        source: PhysicalBranch,
        target: BranchServer,
        at: PointInTime | None,
        *,
        schema_only: bool,
        aside: bool = False,
        latest: int = 0,
    ) -> tuple[dict[str, tuple[str, str]], dict[str, str], int | None]:
        """The source's databases copied into ``target`` (now, or as they were ``at``), its roles,
        and the WAL position of a point-in-time copy (None for a copy now). ``aside``: under
        temporary names (a reset swaps them in afterwards). ``latest``: the highest WAL position
        any server has reached; a position past the source's own, but not past that, is the
        source's current state (its timeline has written nothing since)."""
        version: Version | None = None
        if at is not None:
            version = version_at(source, "(source)", at)
            at = self.past(source.server, at, latest)
        databases = source.databases if version is None or at is None else version.databases
        roles = dict(source.roles if version is None or at is None else version.roles)
        self.ensure_roles(target, roles)
        copied: dict[str, tuple[str, str]] = {}
        lsn = None
        try:
            with contextlib.ExitStack() as stack:
                origin = source.server
                if at is not None:
                    past, lsn = stack.enter_context(self.recovered(source.server, at))
                for logical, (physical, owner) in databases.items():
                    name = self.temporary_name(logical) if aside else self.server_name(logical)
                    copied[logical] = (name, owner)
                    if at is not None:
                        self.create_database(target, name, owner)
                        self.dump_restore(past.conninfo(physical), target, name, schema_only=schema_only)
                    else:
                        self.copy_database(origin, physical, target, name, owner, schema_only)
                    target.sql(database_access(name, owner, roles))
        except BaseException:
            for name, _ in copied.values():
                self.drop_database(target, name)
            raise
        return copied, roles, lsn

    def past(self, server: BranchServer, at: PointInTime, latest: int) -> PointInTime | None:
        """``at``, or None when it is the server's present: a position past the server's own but
        not past ``latest`` (the highest any server has reached; WAL positions are per server, as
        per timeline on the service) names a moment after the server's last write."""
        if at.lsn is None:
            return at
        current = server.lsn()
        if parse_lsn(at.lsn) <= current:
            return at
        if parse_lsn(at.lsn) > latest:
            raise DataPlaneError(f"lsn {at.lsn} has not been written yet (now at {format_lsn(current)})")
        return None

    def create_database(
        self, server: BranchServer, name: str, owner: str, template: str = "template0"
    ) -> None:
        strategy = (
            " STRATEGY FILE_COPY" if template != "template0" and server.server.binaries.major >= 15 else ""
        )
        server.sql(
            f"CREATE DATABASE {quote_ident(name)} OWNER {quote_ident(owner)} "
            f"TEMPLATE {quote_ident(template)}{strategy}"
        )

    @contextlib.contextmanager
    def recovered(self, server: BranchServer, at: PointInTime) -> Iterator[tuple[PostgresServer, int]]:
        """A temporary server holding ``server``'s whole cluster as it was ``at`` (PostgreSQL's own
        point-in-time recovery from its start-up base backup and the WAL since), and the WAL
        position recovery stopped at. Stopped and removed on exit."""
        current = server.lsn()
        if at.lsn is not None:
            if parse_lsn(at.lsn) > current:
                raise DataPlaneError(f"lsn {at.lsn} has not been written yet (now at {format_lsn(current)})")
            # Stop just before the first record at or after the position: the state *at* it.
            target = {"recovery_target_lsn": at.lsn, "recovery_target_inclusive": "off"}
        else:
            assert at.timestamp is not None
            when = datetime.datetime.fromtimestamp(at.timestamp, datetime.UTC)
            target = {"recovery_target_time": when.isoformat(sep=" ")}
        # Recovery stops at the first commit past the target, so one must exist (a transaction
        # with an xid commits with a WAL record; commits are synchronous, so it is on disk).
        server.sql("SELECT pg_current_xact_id()")
        past = server.server.recovery_server(target)
        try:
            past.start(timeout=_RECOVERY_TIMEOUT)
            admin = past.admin()
            try:
                replayed = admin.execute("SELECT pg_last_wal_replay_lsn()::text")
            finally:
                admin.close()
            yield past, parse_lsn(replayed[0][0] or format_lsn(current))
        finally:
            past.stop()

    def ensure_roles(self, server: BranchServer, names: Iterable[str]) -> None:
        """The server roles for these branch roles: a read-write one of the same name (member of
        the group role: all data of the databases it may connect to) and a read-only one (SELECT
        only, read-only transactions by default) for read-only endpoints. Neither is a superuser
        or can create roles or databases."""
        for name in names:
            check_role_name(name)
            for read_only in (False, True):
                physical = quote_ident(role_name(name, read_only=read_only))
                group = "pg_read_all_data" if read_only else GROUP_ROLE
                try:
                    server.sql(f"CREATE ROLE {physical} LOGIN IN ROLE {group}")
                except PgServerError as exc:
                    if exc.sqlstate != DUPLICATE_OBJECT:
                        raise
                if read_only:
                    server.sql(f"ALTER ROLE {physical} SET default_transaction_read_only = on")

    def copy_database(
        self,
        origin: BranchServer,
        source: str,
        target: BranchServer,
        name: str,
        owner: str,
        schema_only: bool,
    ) -> None:
        """``source`` on ``origin`` copied as ``name`` on ``target``: by template when both are on
        one server and the source has no session, else by dump and restore."""
        if origin is target and not schema_only and not self.has_sessions(origin, source):
            try:
                self.create_database(target, name, owner, template=source)
                return
            except PgServerError as exc:
                if exc.sqlstate != OBJECT_IN_USE:  # a session arrived just now: copy by dump
                    raise
        self.create_database(target, name, owner)
        origin.running()
        try:
            self.dump_restore(origin.server.conninfo(source), target, name, schema_only=schema_only)
        except BaseException:
            self.drop_database(target, name)
            raise

    def has_sessions(self, server: BranchServer, database: str) -> bool:
        # Client sessions only: CREATE DATABASE itself stops autovacuum workers on the template.
        rows = server.sql(
            "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' "
            f"AND datname = {quote_literal(database)}"
        )
        return rows[0][0] != "0"

    def dump_restore(
        self, source_conninfo: str, target: BranchServer, name: str, *, schema_only: bool
    ) -> None:
        """Copy the database at ``source_conninfo`` into the empty database ``name`` on ``target``
        from one consistent snapshot (pg_dump's)."""
        tools = target.server.binaries
        dump_argv = [tools.tool("pg_dump"), "-Fc", "-d", source_conninfo]
        if schema_only:
            dump_argv.insert(1, "--schema-only")
        restore_argv = [tools.tool("pg_restore"), "--exit-on-error", "-d", target.server.conninfo(name)]
        with tempfile.TemporaryFile() as dump_err:
            dump = subprocess.Popen(dump_argv, stdout=subprocess.PIPE, stderr=dump_err)
            assert dump.stdout is not None
            restore = subprocess.run(restore_argv, stdin=dump.stdout, capture_output=True, check=False)
            dump.stdout.close()
            dump.wait()
            dump_err.seek(0)
            dump_text = dump_err.read().decode("utf-8", "replace").strip()
        if dump.returncode != 0:
            raise DataPlaneError(f"pg_dump failed: {dump_text[-2000:]}")
        if restore.returncode != 0:
            err = restore.stderr.decode("utf-8", "replace").strip()
            raise DataPlaneError(f"pg_restore failed: {err[-2000:]}")

    def drop_database(self, server: BranchServer, name: str) -> None:
        server.sql(f"DROP DATABASE IF EXISTS {quote_ident(name)} WITH (FORCE)")

    def disown(self, branch: PhysicalBranch, role: str) -> None:
        """Hand the role's objects in the branch's databases to each database's owner."""
        who = quote_ident(role)
        for physical, owner in branch.databases.values():
            if owner == role:
                continue  # the role owns the database itself; it keeps it (the API refuses this)
            branch.server.sql_in(
                physical, f"REASSIGN OWNED BY {who} TO {quote_ident(owner)}; DROP OWNED BY {who}"
            )

    def drop_roles(self, server: BranchServer, names: set[str]) -> None:
        """Drop the server roles (both kinds) of these branch roles."""
        for name in sorted(names):
            for read_only in (False, True):
                try:
                    server.sql(f"DROP ROLE IF EXISTS {quote_ident(role_name(name, read_only=read_only))}")
                except PgServerError as exc:
                    if exc.sqlstate != DEPENDENT_OBJECTS_STILL_EXIST:
                        raise

    def server_name(self, logical: str) -> str:
        """The name a branch database has on its server: its own, unless every cluster has it."""
        return self.temporary_name(logical) if logical in CLUSTER_DATABASES else logical

    def temporary_name(self, logical: str) -> str:
        prefix = logical.encode("utf-8")[:LOGICAL_PREFIX_BYTES].decode("utf-8", "ignore")
        return f"{prefix}~{next(self._names)}"
