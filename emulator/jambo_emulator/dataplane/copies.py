"""Making, copying and dropping the physical databases and roles of branches on the one server:
``CREATE DATABASE ... TEMPLATE`` when nobody is connected to the source, else ``pg_dump |
pg_restore`` from one consistent snapshot; a point-in-time copy from a temporary server recovered
to that point; and the hand-over of a copy's objects to the new branch's roles.

``PostgresDataPlane`` (``postgres.py``) decides when; this module knows how. Callers hold the data
plane's DDL lock.
"""

from __future__ import annotations

import contextlib
import datetime
import itertools
import subprocess
import tempfile
from collections.abc import Callable, Iterable, Iterator

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
    GROUP_ROLE,
    LOGICAL_PREFIX_BYTES,
    PhysicalBranch,
    check_role_name,
    database_access,
    role_name,
    version_at,
)

#: Replaying a long history into the temporary server can take a while.
_RECOVERY_TIMEOUT = 300.0


class PhysicalCopies:
    """The copy machinery of one server (and the numbering of branch tags and physical names)."""

    def __init__(self, server: PostgresServer, sql: Callable[[str], list[tuple[str | None, ...]]]) -> None:
        """``sql``: runs a statement on the server's admin connection (in its ``postgres`` database)."""
        self._server = server
        self._sql = sql
        #: One sequence for branch tags and physical database names (each number used once).
        self._names = itertools.count(1)

    def next_number(self) -> int:
        return next(self._names)

    def _sql_in(self, physical: str, sql: str) -> list[tuple[str | None, ...]]:
        conn = self._server.admin(physical)
        try:
            return conn.execute(sql)
        finally:
            conn.close()

    def copy_branch(
        self, source: PhysicalBranch, tag: int, at: PointInTime | None, *, schema_only: bool
    ) -> tuple[dict[str, tuple[str, str]], dict[str, str], int | None]:
        """The source's databases copied (now, or as they were ``at``) for the branch with
        physical role suffix ``tag``, its roles, and the WAL position of a point-in-time copy
        (None for a copy now). Objects owned by the source's roles are handed to the new
        branch's roles of the same logical name."""
        if at is None:
            roles = dict(source.roles)
            self.ensure_roles(tag, roles)
            return self.copy_databases(source, tag, roles, schema_only=schema_only), roles, None
        version = version_at(source, "(source)", at)
        roles = dict(version.roles)
        self.ensure_roles(tag, roles)
        # Roles deleted since then: the restored objects still name them, until handed over.
        revived = [r for r in roles if r not in source.roles and source.tag != tag]
        self.ensure_roles(source.tag, revived)
        copied: dict[str, tuple[str, str]] = {}
        try:
            with self.recovered(at) as (past, lsn):
                for logical, (physical, owner) in version.databases.items():
                    target = self.physical_name(logical)
                    self.create_copy_target(target, tag, owner)
                    copied[logical] = (target, owner)
                    self.dump_restore(past.conninfo(physical), target, schema_only=schema_only)
                    self.hand_over(target, source, tag, owner, roles)
        except BaseException:
            for new_physical, _ in copied.values():
                self.drop_database(new_physical)
            raise
        finally:
            self.drop_roles(source.tag, set(revived))
        return copied, roles, lsn

    def create_copy_target(self, target: str, tag: int, owner: str, template: str = "template0") -> None:
        strategy = (
            " STRATEGY FILE_COPY" if template != "template0" and self._server.binaries.major >= 15 else ""
        )
        self._sql(
            f"CREATE DATABASE {quote_ident(target)} OWNER {quote_ident(role_name(owner, tag))} "
            f"TEMPLATE {quote_ident(template)}{strategy}"
        )

    def hand_over(
        self, physical: str, source: PhysicalBranch, tag: int, owner: str, roles: dict[str, str]
    ) -> None:
        """In a fresh copy, move everything the source branch's roles own or were granted to the
        new branch's roles (one transaction). ``REASSIGN``/``DROP OWNED`` also touch shared objects,
        so the source's own databases get their owners and grants back in the same transaction."""
        statements: list[str] = []
        if source.tag != tag:
            for role in roles:
                old, new = quote_ident(role_name(role, source.tag)), quote_ident(role_name(role, tag))
                statements.append(f"REASSIGN OWNED BY {old} TO {new}; DROP OWNED BY {old}")
            for source_db, source_owner in source.databases.values():
                statements.append(database_access(source_db, source.tag, source_owner, source.roles))
        statements.append(database_access(physical, tag, owner, roles))
        self._sql_in(physical, "BEGIN; " + "; ".join(statements) + "; COMMIT")

    @contextlib.contextmanager
    def recovered(self, at: PointInTime) -> Iterator[tuple[PostgresServer, int]]:
        """A temporary server holding the whole cluster as it was ``at`` (PostgreSQL's own
        point-in-time recovery from the start-up base backup and the WAL since), and the WAL
        position recovery stopped at. Stopped and removed on exit."""
        current = parse_lsn(self._sql("SELECT pg_current_wal_insert_lsn()::text")[0][0] or "0/0")
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
        self._sql("SELECT pg_current_xact_id()")
        past = self._server.recovery_server(target)
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

    def ensure_roles(self, tag: int, names: Iterable[str]) -> None:
        """The branch's physical roles for these logical names: a read-write one (member of the
        group role: all data of the databases it may connect to) and a read-only one (SELECT only,
        read-only transactions by default) for read-only endpoints. Neither is a superuser, can
        create roles or databases, or is a member of any other branch's roles."""
        for name in names:
            check_role_name(name)
            for read_only in (False, True):
                physical = quote_ident(role_name(name, tag, read_only=read_only))
                group = "pg_read_all_data" if read_only else GROUP_ROLE
                try:
                    self._sql(f"CREATE ROLE {physical} LOGIN IN ROLE {group}")
                except PgServerError as exc:
                    if exc.sqlstate != DUPLICATE_OBJECT:
                        raise
                if read_only:
                    self._sql(f"ALTER ROLE {physical} SET default_transaction_read_only = on")

    def copy_databases(
        self, source: PhysicalBranch, tag: int, roles: dict[str, str], *, schema_only: bool
    ) -> dict[str, tuple[str, str]]:
        copied: dict[str, tuple[str, str]] = {}
        try:
            for logical, (physical, owner) in source.databases.items():
                target = self.copy_database(logical, physical, tag, owner, schema_only)
                copied[logical] = (target, owner)
                try:
                    self.hand_over(target, source, tag, owner, roles)
                except BaseException:
                    self.drop_database(target)
                    raise
        except BaseException:
            for new_physical, _ in copied.values():
                self.drop_database(new_physical)
            raise
        return copied

    def copy_database(self, logical: str, source: str, tag: int, owner: str, schema_only: bool) -> str:
        target = self.physical_name(logical)
        if not schema_only and not self.has_sessions(source):
            try:
                self.create_copy_target(target, tag, owner, template=source)
                return target
            except PgServerError as exc:
                if exc.sqlstate != OBJECT_IN_USE:  # a session arrived just now: copy by dump
                    raise
        self.create_copy_target(target, tag, owner)
        try:
            self.dump_restore(self._server.conninfo(source), target, schema_only=schema_only)
        except BaseException:
            self.drop_database(target)
            raise
        return target

    def has_sessions(self, physical: str) -> bool:
        # Client sessions only: CREATE DATABASE itself stops autovacuum workers on the template.
        rows = self._sql(
            "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' "
            f"AND datname = {quote_literal(physical)}"
        )
        return rows[0][0] != "0"

    def dump_restore(self, source_conninfo: str, target: str, *, schema_only: bool) -> None:
        """Copy the database at ``source_conninfo`` into the empty ``target`` (on this plane's
        server) from one consistent snapshot (pg_dump's)."""
        dump_argv = [self._server.binaries.tool("pg_dump"), "-Fc", "-d", source_conninfo]
        if schema_only:
            dump_argv.insert(1, "--schema-only")
        restore_argv = [
            self._server.binaries.tool("pg_restore"),
            "--exit-on-error",
            "-d",
            self._server.conninfo(target),
        ]
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

    def drop_database(self, physical: str) -> None:
        self._sql(f"DROP DATABASE IF EXISTS {quote_ident(physical)} WITH (FORCE)")

    def disown(self, branch: PhysicalBranch, role: str) -> None:
        """Hand the role's objects in the branch's databases to each database's owner."""
        who = quote_ident(role_name(role, branch.tag))
        for physical, owner in branch.databases.values():
            if owner == role:
                continue  # the role owns the database itself; it keeps it (the API refuses this)
            heir = quote_ident(role_name(owner, branch.tag))
            self._sql_in(physical, f"REASSIGN OWNED BY {who} TO {heir}; DROP OWNED BY {who}")

    def drop_roles(self, tag: int, names: set[str]) -> None:
        """Drop the physical roles (both kinds) of these logical names of one branch."""
        for name in sorted(names):
            for read_only in (False, True):
                try:
                    self._sql(f"DROP ROLE IF EXISTS {quote_ident(role_name(name, tag, read_only=read_only))}")
                except PgServerError as exc:
                    if exc.sqlstate != DEPENDENT_OBJECTS_STILL_EXIST:
                        raise

    def physical_name(self, logical: str) -> str:
        prefix = logical.encode("utf-8")[:LOGICAL_PREFIX_BYTES].decode("utf-8", "ignore")
        return f"{prefix}~{self.next_number()}"
