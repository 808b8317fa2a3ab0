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
  create never disturbs the parent's sessions (``copies.py``; the names and per-branch
  versions: ``physical.py``);
- one TCP listener for every endpoint (``proxy.ProxyHub``), routed by the TLS server name (the
  endpoint host, as the service routes) or ``options=endpoint=<id>``; suspend drops the endpoint's
  sessions and refuses logins until start (the real service would wake the compute on connect).

All methods are safe to call from several threads: DDL is serialised by one lock, and the proxies
read the branch registry under a second, short-held lock.
"""

from __future__ import annotations

import atexit
import itertools
import socket
import threading
import time
from collections.abc import Sequence

from jambo_emulator.dataplane.base import (
    DataPlaneError,
    EndpointAddress,
    PointInTime,
    format_lsn,
    parse_lsn,
)
from jambo_emulator.dataplane.copies import PhysicalCopies
from jambo_emulator.dataplane.masking import MaskRule, masking_statements
from jambo_emulator.dataplane.pg_server import (
    Binaries,
    PostgresServer,
    find_binaries,
)
from jambo_emulator.dataplane.pgwire import (
    OBJECT_IN_USE,
    AdminConnection,
    PgServerError,
    quote_ident,
    quote_literal,
)
from jambo_emulator.dataplane.physical import (
    GROUP_ROLE,
    PhysicalBranch,
    PhysicalEndpoint,
    Version,
    check_role_name,
    database_access,
    role_name,
    version_at,
)
from jambo_emulator.dataplane.proxy import ProxyHub, Route
from jambo_emulator.dataplane.schema import clean_dump
from jambo_emulator.dataplane.tls import server_context

DEFAULT_HOST_SUFFIX = "us-east-2.aws.neon.tech"


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
        self._copies = PhysicalCopies(self._server, self._sql)
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
            branch = PhysicalBranch(tag=self._copies.next_number())
            lsn = None
            if parent_branch_id is not None:
                parent = self._branch(project_id, parent_branch_id)
                branch.databases, branch.roles, lsn = self._copies.copy_branch(
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
            tag = target.tag if target is not None else self._copies.next_number()
            # Copy first: if that fails, the branch keeps its old data.
            databases, roles, lsn = self._copies.copy_branch(source, tag, at, schema_only=False)
            history = list(target.history) if target is not None else []
            replaced = PhysicalBranch(tag, databases, roles, history)
            with self._state:
                self._branches[(project_id, branch_id)] = replaced
            if target is not None:
                for physical, _ in target.databases.values():
                    self._copies.drop_database(physical)
                self._copies.drop_roles(tag, set(target.roles) - set(roles))
            now_lsn = self._remember(replaced)
            return format_lsn(lsn if lsn is not None else now_lsn)

    def history_start(self, project_id: str) -> str | None:
        start = self._history_start.get(project_id)
        return format_lsn(start) if start is not None else None

    def latest_lsn(self, project_id: str) -> str | None:
        with self._state:
            positions = [
                b.history[-1].lsn for (pid, _), b in self._branches.items() if pid == project_id and b.history
            ]
        return format_lsn(max(positions)) if positions else None

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
                    self._copies.drop_database(physical)
                self._copies.drop_roles(branch.tag, set(branch.roles))

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
            physical = self._copies.physical_name(name)
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
            self._copies.drop_database(physical)
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
                renamed = self._copies.physical_name(new_name)
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
                self._copies.ensure_roles(branch.tag, [name])
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
            self._copies.disown(branch, name)
            self._copies.drop_roles(branch.tag, {name})
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
                version = version_at(branch, branch_id, at)
                if database not in version.databases:
                    return None
                physical, roles = version.databases[database][0], list(version.roles)
                with self._copies.recovered(at) as (past, _):
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

    def _remember(self, branch: PhysicalBranch) -> int:
        """Add the branch's current state to its history; the WAL position it starts at."""
        rows = self._sql("SELECT pg_current_wal_insert_lsn()::text")
        lsn = parse_lsn(rows[0][0] or "0/0")
        version = Version(time.time(), lsn, dict(branch.databases), dict(branch.roles))
        with self._state:
            branch.history.append(version)
        return lsn

        # Still owns a database it was left as owner of; harmless: no branch routes
        # a login to it.


def _proxy_key(project_id: str, endpoint_id: str) -> str:
    return f"{project_id}/{endpoint_id}"


def _pooler_host(host: str) -> str:
    """The real service's pooled host inserts ``-pooler`` after the endpoint id."""
    first, dot, rest = host.partition(".")
    return f"{first}-pooler{dot}{rest}"
