"""``PostgresDataPlane``: real PostgreSQL data behind emulated branches.

Layout (why: one server starts in about a second and copies a small database in well under a
second; a server per branch would cost a second and ~40 MB each):

- one private server per emulator (``pg_server.PostgresServer``; Unix socket only);
- one physical database per (branch, database), named ``<logical>~<n>`` (``n`` is unique), so
  ``current_database()`` still starts with the logical name; the API's names never leave the
  emulator unmapped except there;
- roles are cluster-wide and keep their logical names (``neondb_owner``): a copied database's
  owners and grants then stay valid in the child, exactly as in a forked timeline. Which roles a
  branch *has*, and their per-branch passwords, live here; the proxy checks them (SCRAM);
- a branch copy is ``CREATE DATABASE ... TEMPLATE <parent's db>`` when nobody is connected to the
  parent's database, otherwise ``pg_dump | pg_restore`` from a consistent snapshot, so a branch
  create never disturbs the parent's sessions;
- one TCP listener for every endpoint (``proxy.ProxyHub``), routed by the TLS server name (the
  endpoint host, as the service routes) or ``options=endpoint=<id>``; suspend drops the endpoint's
  sessions and refuses logins until start (the real service would wake the compute on connect).

All methods are safe to call from several threads: DDL is serialised by one lock, and the proxies
read the branch registry under a second, short-held lock.
"""

from __future__ import annotations

import atexit
import contextlib
import datetime
import itertools
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator, Sequence

from jambo_emulator.dataplane.base import (
    DataPlaneError,
    EndpointAddress,
    PointInTime,
    format_lsn,
    parse_lsn,
)
from jambo_emulator.dataplane.masking import MaskRule, masking_statements
from jambo_emulator.dataplane.pg_server import (
    Binaries,
    PostgresServer,
    find_binaries,
)
from jambo_emulator.dataplane.pgwire import (
    DEPENDENT_OBJECTS_STILL_EXIST,
    DUPLICATE_OBJECT,
    OBJECT_IN_USE,
    AdminConnection,
    PgServerError,
    quote_ident,
    quote_literal,
)
from jambo_emulator.dataplane.physical import (
    GROUP_ROLE,
    LOGICAL_PREFIX_BYTES,
    PhysicalBranch,
    PhysicalEndpoint,
    Version,
    check_role_name,
    database_access,
    role_name,
)
from jambo_emulator.dataplane.proxy import ProxyHub, Route
from jambo_emulator.dataplane.schema import clean_dump
from jambo_emulator.dataplane.tls import server_context

DEFAULT_HOST_SUFFIX = "us-east-2.aws.neon.tech"
#: Replaying a long history into the temporary server can take a while.
_RECOVERY_TIMEOUT = 300.0


class PostgresDataPlane:
    enabled = True

    def __init__(
        self,
        binaries: Binaries | None = None,
        *,
        bind_host: str = "127.0.0.1",
        port: int = 0,
        advertise_host: str | None = None,
    ) -> None:
        """``bind_host``/``port``: where the one proxy listener for all endpoints is bound (0: a
        free port); ``advertise_host``: the address URIs carry as ``hostaddr`` (another host or
        container reaches the data plane there; default the bind address, or 127.0.0.1 when
        bound to all interfaces). A name is resolved to its IPv4 address (``hostaddr`` is numeric)."""
        self._bind_host, self._port = bind_host, port
        advertise = advertise_host or ("127.0.0.1" if bind_host in ("0.0.0.0", "") else bind_host)
        try:
            self._advertise = socket.gethostbyname(advertise)
        except OSError as exc:
            raise DataPlaneError(
                f"cannot resolve the advertised data-plane host {advertise!r}: {exc}"
            ) from exc
        found = binaries or find_binaries()
        if found is None:
            raise DataPlaneError("no PostgreSQL server binaries found (see server.find_binaries)")
        self._server = PostgresServer(found, history=True)
        self._lock = threading.RLock()  # DDL, admin connection, lifecycle
        self._state = threading.Lock()  # registry reads by the proxies
        self._branches: dict[tuple[str, str], PhysicalBranch] = {}
        #: Soft-deleted branches: their databases and roles are kept, but nothing routes to them.
        self._detached: dict[tuple[str, str], PhysicalBranch] = {}
        self._endpoints: dict[tuple[str, str], PhysicalEndpoint] = {}
        self._names = itertools.count(1)
        self._history_start: dict[str, int] = {}  # project -> WAL position its data began at
        self._admin: AdminConnection | None = None
        self._hub: ProxyHub | None = None

    # -- lifecycle -------------------------------------------------------------------------------

    @property
    def server(self) -> PostgresServer:
        return self._server

    def start(self) -> None:
        with self._lock:
            if self._admin is not None:
                return
            self._server.start()
            atexit.register(self.stop)
            try:
                self._admin = self._server.admin()
                self._admin.execute(
                    f"CREATE ROLE {GROUP_ROLE} NOLOGIN IN ROLE pg_read_all_data, pg_write_all_data"
                )
                self._hub = ProxyHub(
                    self._server.socket_path,
                    server_context(self._server.base_dir),
                    self._route,
                    bind_host=self._bind_host,
                    port=self._port,
                )
                self._hub.start()
            except BaseException:
                self.stop()
                raise

    def stop(self) -> None:
        with self._lock:
            atexit.unregister(self.stop)
            hub, self._hub = self._hub, None
            if hub is not None:
                hub.stop()
            admin, self._admin = self._admin, None
            if admin is not None:
                admin.close()
            self._server.stop()
            with self._state:
                self._branches.clear()
                self._detached.clear()
                self._endpoints.clear()

    def reset(self) -> None:
        with self._lock:
            for project_id in {p for p, _ in (*self._branches, *self._detached, *self._endpoints)}:
                self.delete_project(project_id)

    def delete_project(self, project_id: str) -> None:
        with self._lock:
            for key in [k for k in self._endpoints if k[0] == project_id]:
                self.delete_endpoint(key[0], "", key[1])
            for _, branch_id in [k for k in (*self._branches, *self._detached) if k[0] == project_id]:
                self.delete_branch(project_id, branch_id)
            self._history_start.pop(project_id, None)

    # -- branches --------------------------------------------------------------------------------

    def create_branch(
        self,
        project_id: str,
        branch_id: str,
        parent_branch_id: str | None,
        *,
        schema_only: bool = False,
        at: PointInTime | None = None,
    ) -> str | None:
        with self._lock:
            existing = self._branches.get((project_id, branch_id))
            if existing is not None:
                return format_lsn(existing.history[0].lsn) if existing.history else None
            branch = PhysicalBranch(tag=next(self._names))
            lsn = None
            if parent_branch_id is not None:
                parent = self._branch(project_id, parent_branch_id)
                branch.databases, branch.roles, lsn = self._copy_branch(
                    parent, branch.tag, at, schema_only=schema_only
                )
            with self._state:
                self._branches[(project_id, branch_id)] = branch
            now_lsn = self._remember(branch)
            if parent_branch_id is None:
                self._history_start.setdefault(project_id, now_lsn)
                return None
            return format_lsn(lsn if lsn is not None else now_lsn)

    def reset_branch(
        self, project_id: str, branch_id: str, source_branch_id: str, *, at: PointInTime | None = None
    ) -> str | None:
        with self._lock:
            source = self._branch(project_id, source_branch_id)
            target = self._branches.get((project_id, branch_id))
            tag = target.tag if target is not None else next(self._names)
            # Copy first: if that fails, the branch keeps its old data.
            databases, roles, lsn = self._copy_branch(source, tag, at, schema_only=False)
            history = list(target.history) if target is not None else []
            replaced = PhysicalBranch(tag, databases, roles, history)
            with self._state:
                self._branches[(project_id, branch_id)] = replaced
            if target is not None:
                for physical, _ in target.databases.values():
                    self._drop_database(physical)
                self._drop_roles(tag, set(target.roles) - set(roles))
            now_lsn = self._remember(replaced)
            return format_lsn(lsn if lsn is not None else now_lsn)

    def history_start(self, project_id: str) -> str | None:
        start = self._history_start.get(project_id)
        return format_lsn(start) if start is not None else None

    def delete_branch(self, project_id: str, branch_id: str) -> None:
        with self._lock:
            self._delete_branch_endpoints(project_id, branch_id)
            with self._state:
                live = self._branches.pop((project_id, branch_id), None)
                detached = self._detached.pop((project_id, branch_id), None)
            for branch in (live, detached):
                if branch is None:
                    continue
                for physical, _ in branch.databases.values():
                    self._drop_database(physical)
                self._drop_roles(branch.tag, set(branch.roles))

    def detach_branch(self, project_id: str, branch_id: str) -> None:
        with self._lock:
            self._delete_branch_endpoints(project_id, branch_id)
            with self._state:
                branch = self._branches.pop((project_id, branch_id), None)
                if branch is not None:
                    self._detached[(project_id, branch_id)] = branch

    def attach_branch(self, project_id: str, branch_id: str) -> None:
        with self._lock, self._state:
            key = (project_id, branch_id)
            branch = self._detached.pop(key, None)
            if branch is not None:
                self._branches[key] = branch
            elif key not in self._branches:
                raise DataPlaneError(
                    f"branch {branch_id} of project {project_id} has no kept data to recover"
                )

    def _delete_branch_endpoints(self, project_id: str, branch_id: str) -> None:
        for key, endpoint in list(self._endpoints.items()):
            if key[0] == project_id and endpoint.branch_id == branch_id:
                self.delete_endpoint(project_id, branch_id, key[1])

    # -- databases and roles ---------------------------------------------------------------------

    def create_database(self, project_id: str, branch_id: str, name: str, owner: str) -> None:
        with self._lock:
            branch = self._branch(project_id, branch_id)
            if name in branch.databases:
                return
            if owner not in branch.roles:
                raise DataPlaneError(f"owner role {owner!r} does not exist on branch {branch_id}")
            physical = self._physical_name(name)
            self._sql(
                f"CREATE DATABASE {quote_ident(physical)} OWNER {quote_ident(role_name(owner, branch.tag))} "
                "TEMPLATE template0"
            )
            # Every branch role may create objects in public, as on the real service; large
            # objects are writes a read-only role could otherwise make (outside table grants).
            self._sql_in(
                physical,
                f"GRANT ALL ON SCHEMA public TO {GROUP_ROLE}; "
                "REVOKE EXECUTE ON FUNCTION lo_creat(integer), lo_create(oid), lo_from_bytea(oid, bytea) "
                f"FROM PUBLIC; GRANT EXECUTE ON FUNCTION lo_creat(integer), lo_create(oid), "
                f"lo_from_bytea(oid, bytea) TO {GROUP_ROLE}",
            )
            self._sql(database_access(physical, branch.tag, owner, branch.roles))
            with self._state:
                branch.databases[name] = (physical, owner)
            self._remember(branch)

    def delete_database(self, project_id: str, branch_id: str, name: str) -> None:
        with self._lock:
            branch = self._branches.get((project_id, branch_id))
            if branch is None or name not in branch.databases:
                return
            with self._state:
                physical, _ = branch.databases.pop(name)
            self._drop_database(physical)
            self._remember(branch)

    def update_database(
        self, project_id: str, branch_id: str, name: str, *, new_name: str | None, owner: str | None
    ) -> None:
        with self._lock:
            branch = self._branch(project_id, branch_id)
            if name not in branch.databases:
                raise DataPlaneError(f"database {name!r} does not exist on branch {branch_id}")
            physical, current_owner = branch.databases[name]
            if owner is not None and owner not in branch.roles:
                raise DataPlaneError(f"owner role {owner!r} does not exist on branch {branch_id}")
            if new_name is not None and new_name != name:
                if new_name in branch.databases:
                    raise DataPlaneError(f"database {new_name!r} already exists on branch {branch_id}")
                renamed = self._physical_name(new_name)
                self._rename_database(physical, renamed)
                with self._state:
                    del branch.databases[name]
                    branch.databases[new_name] = (renamed, current_owner)
                name, physical = new_name, renamed
            if owner is not None and owner != current_owner:
                self._sql(database_access(physical, branch.tag, owner, branch.roles))
                with self._state:
                    branch.databases[name] = (physical, owner)
            self._remember(branch)

    def _rename_database(self, physical: str, renamed: str) -> None:
        """``ALTER DATABASE ... RENAME`` needs the database free of sessions: new logins are held
        off, the existing sessions ended (the real service restarts the compute to apply it)."""
        db = quote_ident(physical)
        self._sql(f"ALTER DATABASE {db} ALLOW_CONNECTIONS false")
        try:
            self._sql(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                f"WHERE datname = {quote_literal(physical)} AND pid <> pg_backend_pid()"
            )
            for attempt in itertools.count():
                try:
                    self._sql(f"ALTER DATABASE {db} RENAME TO {quote_ident(renamed)}")
                    break
                except PgServerError as exc:
                    # A terminated backend may take a moment to leave pg_stat_activity.
                    if exc.sqlstate != OBJECT_IN_USE or attempt >= 50:
                        raise
                    time.sleep(0.05)
        except BaseException:
            self._sql(f"ALTER DATABASE {db} ALLOW_CONNECTIONS true")
            raise
        self._sql(f"ALTER DATABASE {quote_ident(renamed)} ALLOW_CONNECTIONS true")

    def create_role(self, project_id: str, branch_id: str, name: str, password: str) -> None:
        with self._lock:
            branch = self._branch(project_id, branch_id)
            check_role_name(name)
            if name not in branch.roles:
                self._ensure_roles(branch.tag, [name])
                for physical, owner in branch.databases.values():
                    self._sql(database_access(physical, branch.tag, owner, [*branch.roles, name]))
            with self._state:
                branch.roles[name] = password
            self._remember(branch)

    def delete_role(self, project_id: str, branch_id: str, name: str) -> None:
        with self._lock:
            branch = self._branches.get((project_id, branch_id))
            if branch is None or name not in branch.roles:
                return
            with self._state:
                del branch.roles[name]
            self._disown(branch, name)
            self._drop_roles(branch.tag, {name})
            self._remember(branch)

    def set_role_password(self, project_id: str, branch_id: str, name: str, password: str) -> None:
        with self._lock:
            branch = self._branch(project_id, branch_id)
            if name not in branch.roles:
                raise DataPlaneError(f"role {name!r} does not exist on branch {branch_id}")
            with self._state:
                branch.roles[name] = password
            self._remember(branch)

    # -- endpoints -------------------------------------------------------------------------------

    def reserve_endpoint(
        self, project_id: str, branch_id: str, endpoint_id: str, *, host: str, read_only: bool = False
    ) -> EndpointAddress | None:
        # Only the registry lock: a branch copy may hold self._lock for seconds.
        hub = self._hub
        if hub is None:
            return None
        with self._state:
            self._endpoints[(project_id, endpoint_id)] = PhysicalEndpoint(
                project_id, branch_id, host, read_only, port=hub.port
            )
        return self._address(host)

    def start_endpoint(
        self,
        project_id: str,
        branch_id: str,
        endpoint_id: str,
        *,
        host: str | None = None,
        read_only: bool = False,
    ) -> EndpointAddress | None:
        with self._lock:
            hub = self._running_hub()
            endpoint = self._endpoints.get((project_id, endpoint_id))
            if endpoint is None:
                endpoint = PhysicalEndpoint(
                    project_id, branch_id, host or f"{endpoint_id}.{DEFAULT_HOST_SUFFIX}", read_only
                )
            elif host:
                endpoint.host = host
            moved = endpoint.running and (endpoint.branch_id != branch_id or endpoint.read_only != read_only)
            with self._state:
                endpoint.branch_id = branch_id
                endpoint.read_only = read_only
                endpoint.running = True
                endpoint.port = hub.port
                self._endpoints[(project_id, endpoint_id)] = endpoint
            if moved:  # sessions of the old branch or mode must not stay on the endpoint
                hub.drop_sessions(_proxy_key(project_id, endpoint_id))
            return self._address(endpoint.host)

    def suspend_endpoint(self, project_id: str, branch_id: str, endpoint_id: str) -> None:
        with self._lock:
            endpoint = self._endpoints.get((project_id, endpoint_id))
            if endpoint is None or not endpoint.running:
                return
            with self._state:
                endpoint.running = False
            self._running_hub().drop_sessions(_proxy_key(project_id, endpoint_id))

    def delete_endpoint(self, project_id: str, branch_id: str, endpoint_id: str) -> None:
        with self._lock:
            with self._state:
                endpoint = self._endpoints.pop((project_id, endpoint_id), None)
            if endpoint is not None and self._hub is not None:
                self._hub.drop_sessions(_proxy_key(project_id, endpoint_id))

    def endpoint_running(self, project_id: str, endpoint_id: str) -> bool:
        """Whether the endpoint accepts logins (for tests and the control plane's checks)."""
        with self._state:
            endpoint = self._endpoints.get((project_id, endpoint_id))
            return self._hub is not None and endpoint is not None and endpoint.running

    @property
    def port(self) -> int | None:
        """The one port every endpoint is reached on (routed by TLS server name), once started."""
        return self._hub.port if self._hub is not None else None

    def _address(self, host: str) -> EndpointAddress:
        assert self._hub is not None
        return EndpointAddress(
            host=host,
            pooler_host=_pooler_host(host),
            port=self._hub.port,
            query=f"sslmode=require&hostaddr={self._advertise}",
        )

    # -- schema ----------------------------------------------------------------------------------

    def schema_dump(
        self, project_id: str, branch_id: str, database: str, *, at: PointInTime | None = None
    ) -> str | None:
        with self._lock:
            branch = self._branches.get((project_id, branch_id))
            if branch is None:
                return None
            if at is None:
                found = branch.databases.get(database)
                if found is None:
                    return None
                physical, roles = found[0], list(branch.roles)
                raw = self._schema_only(self._server, physical)
            else:
                version = self._version_at(branch, branch_id, at)
                if database not in version.databases:
                    return None
                physical, roles = version.databases[database][0], list(version.roles)
                with self._recovered(at) as (past, _):
                    raw = self._schema_only(past, physical)
        names = {physical: database}
        for role in roles:
            names[role_name(role, branch.tag)] = role
            names[role_name(role, branch.tag, read_only=True)] = role
        return clean_dump(raw.decode("utf-8"), names)

    def _schema_only(self, server: PostgresServer, physical: str) -> bytes:
        return server.run_tool(
            [server.binaries.tool("pg_dump"), "--schema-only", "-d", server.conninfo(physical)]
        )

    # -- masking ---------------------------------------------------------------------------------

    def apply_masking(self, project_id: str, branch_id: str, rules: Sequence[MaskRule]) -> None:
        with self._lock:
            branch = self._branch(project_id, branch_id)
            by_database: dict[str, list[MaskRule]] = {}
            for rule in rules:
                by_database.setdefault(rule.database, []).append(rule)
            for database, database_rules in by_database.items():
                if database not in branch.databases:
                    raise DataPlaneError(f"database {database!r} does not exist on branch {branch_id}")
                # One simple query: its statements run in one implicit transaction (all or nothing).
                self._sql_in(branch.databases[database][0], "; ".join(masking_statements(database_rules)))

    # -- internals -------------------------------------------------------------------------------

    def _route(self, endpoint_id: str, user: str, database: str) -> Route | None:
        """Called by the proxy (loop thread) for each login; None: no such endpoint."""
        with self._state:
            found_endpoint = [e for (_, eid), e in self._endpoints.items() if eid == endpoint_id]
            if len(found_endpoint) != 1:
                # Ids are global on the service; two projects sharing one cannot be told apart.
                return None
            endpoint = found_endpoint[0]
            key = _proxy_key(endpoint.project_id, endpoint_id)
            branch = self._branches.get((endpoint.project_id, endpoint.branch_id))
            if not endpoint.running or branch is None:
                return Route(None, None, endpoint.read_only, key=key, running=endpoint.running)
            found = branch.databases.get(database)
            backend_user = role_name(user, branch.tag, read_only=endpoint.read_only)
            return Route(
                found[0] if found else None, branch.roles.get(user), endpoint.read_only, backend_user, key
            )

    def _branch(self, project_id: str, branch_id: str) -> PhysicalBranch:
        branch = self._branches.get((project_id, branch_id))
        if branch is None:
            raise DataPlaneError(f"branch {branch_id} of project {project_id} has no data in the data plane")
        return branch

    def _running_hub(self) -> ProxyHub:
        if self._hub is None:
            raise DataPlaneError("the data plane is not running (call start() first)")
        return self._hub

    def _sql(self, sql: str) -> list[tuple[str | None, ...]]:
        if self._admin is None:
            raise DataPlaneError("the data plane is not running (call start() first)")
        return self._admin.execute(sql)

    def _sql_in(self, physical: str, sql: str) -> list[tuple[str | None, ...]]:
        conn = self._server.admin(physical)
        try:
            return conn.execute(sql)
        finally:
            conn.close()

    def _physical_name(self, logical: str) -> str:
        prefix = logical.encode("utf-8")[:LOGICAL_PREFIX_BYTES].decode("utf-8", "ignore")
        return f"{prefix}~{next(self._names)}"

    def _remember(self, branch: PhysicalBranch) -> int:
        """Add the branch's current state to its history; the WAL position it starts at."""
        rows = self._sql("SELECT pg_current_wal_insert_lsn()::text")
        lsn = parse_lsn(rows[0][0] or "0/0")
        version = Version(time.time(), lsn, dict(branch.databases), dict(branch.roles))
        with self._state:
            branch.history.append(version)
        return lsn

    def _version_at(self, branch: PhysicalBranch, branch_id: str, at: PointInTime) -> Version:
        version = branch.at(at)
        if version is None:
            raise DataPlaneError(f"branch {branch_id} did not exist yet at {_describe(at)}")
        return version

    def _copy_branch(
        self, source: PhysicalBranch, tag: int, at: PointInTime | None, *, schema_only: bool
    ) -> tuple[dict[str, tuple[str, str]], dict[str, str], int | None]:
        """The source's databases copied (now, or as they were ``at``) for the branch with
        physical role suffix ``tag``, its roles, and the WAL position of a point-in-time copy
        (None for a copy now). Objects owned by the source's roles are handed to the new
        branch's roles of the same logical name."""
        if at is None:
            roles = dict(source.roles)
            self._ensure_roles(tag, roles)
            return self._copy_databases(source, tag, roles, schema_only=schema_only), roles, None
        version = self._version_at(source, "(source)", at)
        roles = dict(version.roles)
        self._ensure_roles(tag, roles)
        # Roles deleted since then: the restored objects still name them, until handed over.
        revived = [r for r in roles if r not in source.roles and source.tag != tag]
        self._ensure_roles(source.tag, revived)
        copied: dict[str, tuple[str, str]] = {}
        try:
            with self._recovered(at) as (past, lsn):
                for logical, (physical, owner) in version.databases.items():
                    target = self._physical_name(logical)
                    self._create_copy_target(target, tag, owner)
                    copied[logical] = (target, owner)
                    self._dump_restore(past.conninfo(physical), target, schema_only=schema_only)
                    self._hand_over(target, source, tag, owner, roles)
        except BaseException:
            for new_physical, _ in copied.values():
                self._drop_database(new_physical)
            raise
        finally:
            self._drop_roles(source.tag, set(revived))
        return copied, roles, lsn

    def _create_copy_target(self, target: str, tag: int, owner: str, template: str = "template0") -> None:
        strategy = (
            " STRATEGY FILE_COPY" if template != "template0" and self._server.binaries.major >= 15 else ""
        )
        self._sql(
            f"CREATE DATABASE {quote_ident(target)} OWNER {quote_ident(role_name(owner, tag))} "
            f"TEMPLATE {quote_ident(template)}{strategy}"
        )

    def _hand_over(
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
    def _recovered(self, at: PointInTime) -> Iterator[tuple[PostgresServer, int]]:
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

    def _ensure_roles(self, tag: int, names: Iterable[str]) -> None:
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

    def _copy_databases(
        self, source: PhysicalBranch, tag: int, roles: dict[str, str], *, schema_only: bool
    ) -> dict[str, tuple[str, str]]:
        copied: dict[str, tuple[str, str]] = {}
        try:
            for logical, (physical, owner) in source.databases.items():
                target = self._copy_database(logical, physical, tag, owner, schema_only)
                copied[logical] = (target, owner)
                try:
                    self._hand_over(target, source, tag, owner, roles)
                except BaseException:
                    self._drop_database(target)
                    raise
        except BaseException:
            for new_physical, _ in copied.values():
                self._drop_database(new_physical)
            raise
        return copied

    def _copy_database(self, logical: str, source: str, tag: int, owner: str, schema_only: bool) -> str:
        target = self._physical_name(logical)
        if not schema_only and not self._has_sessions(source):
            try:
                self._create_copy_target(target, tag, owner, template=source)
                return target
            except PgServerError as exc:
                if exc.sqlstate != OBJECT_IN_USE:  # a session arrived just now: copy by dump
                    raise
        self._create_copy_target(target, tag, owner)
        try:
            self._dump_restore(self._server.conninfo(source), target, schema_only=schema_only)
        except BaseException:
            self._drop_database(target)
            raise
        return target

    def _has_sessions(self, physical: str) -> bool:
        # Client sessions only: CREATE DATABASE itself stops autovacuum workers on the template.
        rows = self._sql(
            "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' "
            f"AND datname = {quote_literal(physical)}"
        )
        return rows[0][0] != "0"

    def _dump_restore(self, source_conninfo: str, target: str, *, schema_only: bool) -> None:
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

    def _drop_database(self, physical: str) -> None:
        self._sql(f"DROP DATABASE IF EXISTS {quote_ident(physical)} WITH (FORCE)")

    def _disown(self, branch: PhysicalBranch, role: str) -> None:
        """Hand the role's objects in the branch's databases to each database's owner."""
        who = quote_ident(role_name(role, branch.tag))
        for physical, owner in branch.databases.values():
            if owner == role:
                continue  # the role owns the database itself; it keeps it (the API refuses this)
            heir = quote_ident(role_name(owner, branch.tag))
            self._sql_in(physical, f"REASSIGN OWNED BY {who} TO {heir}; DROP OWNED BY {who}")

    def _drop_roles(self, tag: int, names: set[str]) -> None:
        """Drop the physical roles (both kinds) of these logical names of one branch."""
        for name in sorted(names):
            for read_only in (False, True):
                try:
                    self._sql(f"DROP ROLE IF EXISTS {quote_ident(role_name(name, tag, read_only=read_only))}")
                except PgServerError as exc:
                    if exc.sqlstate != DEPENDENT_OBJECTS_STILL_EXIST:
                        raise
                    # Still owns a database it was left as owner of; harmless: no branch routes
                    # a login to it.


def _describe(at: PointInTime) -> str:
    if at.lsn is not None:
        return f"lsn {at.lsn}"
    assert at.timestamp is not None
    return datetime.datetime.fromtimestamp(at.timestamp, datetime.UTC).isoformat()


def _proxy_key(project_id: str, endpoint_id: str) -> str:
    return f"{project_id}/{endpoint_id}"


def _pooler_host(host: str) -> str:
    """The real service's pooled host inserts ``-pooler`` after the endpoint id."""
    first, dot, rest = host.partition(".")
    return f"{first}-pooler{dot}{rest}"
