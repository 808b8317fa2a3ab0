"""``PostgresDataPlane``: real PostgreSQL data behind emulated branches.

Layout (why: tools that qualify names with the database, as dbt does with
``"neondb"."public"."orders"``, need every branch's databases under their own names, and a
PostgreSQL cluster holds one database of a name):

- one private server per live branch (``pool.BranchServer``; Unix socket only), taken from a small
  pool of started ones (``pool.ServerPool``) and given back, emptied, when the branch is deleted;
  the branch keeps it for life, so its history of versions and the server's WAL (where its
  point-in-time copies recover from) are one timeline, as a branch is on the service;
- a branch's databases and roles have their own names on its server (``neondb``,
  ``neondb_owner``; ``neondb_owner~ro`` for read-only endpoints); only the names every cluster
  has (``postgres``, ``template0/1``) get another (``postgres~3``). Which roles a branch *has*,
  and their per-branch passwords, live here; the proxy checks them (SCRAM);
- a branch copy is ``pg_dump | pg_restore`` from one consistent snapshot of the parent's server
  into the child's, so a branch create never disturbs the parent's sessions; a reset copies into
  the branch's own server under temporary names first and swaps them in only once the copy is
  whole (``copies.py``; the per-branch versions: ``physical.py``);
- one TCP listener for every endpoint (``proxy.ProxyHub``), routed by the TLS server name (the
  endpoint host, as the service routes) or ``options=endpoint=<id>`` to the socket of the
  endpoint's branch's server; suspend drops the endpoint's sessions and refuses logins until
  start (the real service would wake the compute on connect).

A branch with no running compute (its last endpoint suspended or deleted, or the branch detached)
has no server processes, only its files (``BranchServer.pause``); starting an endpoint, DDL, a copy
or a schema dump starts them again, as the service's computes suspend and wake.

WAL positions (LSNs) are per server, as they are per timeline on the service: a branch's
positions are its server's.

All methods are safe to call from several threads: DDL is serialised by one lock, and the proxies
read the branch registry under a second, short-held lock.
"""

from __future__ import annotations

import atexit
import itertools
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Sequence

from jambo_emulator.dataplane.base import (
    DataPlaneError,
    EndpointAddress,
    PointInTime,
    format_lsn,
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
    PgServerError,
    quote_ident,
    quote_literal,
)
from jambo_emulator.dataplane.physical import (
    PhysicalBranch,
    PhysicalEndpoint,
    Version,
    check_role_name,
    database_access,
    role_name,
    version_at,
)
from jambo_emulator.dataplane.pool import GROUP_ROLE, BranchServer, ServerPool
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
        self._pool = ServerPool(found)
        self._lock = threading.RLock()  # DDL, admin connections, lifecycle
        self._state = threading.Lock()  # registry reads by the proxies
        self._branches: dict[tuple[str, str], PhysicalBranch] = {}
        #: Soft-deleted branches: their databases and roles are kept, but nothing routes to them.
        self._detached: dict[tuple[str, str], PhysicalBranch] = {}
        self._endpoints: dict[tuple[str, str], PhysicalEndpoint] = {}
        self._copies = PhysicalCopies()
        self._history_start: dict[str, int] = {}  # project -> WAL position its data began at
        self._latest = 0  # the highest WAL position any branch's server has reported
        self._hub: ProxyHub | None = None

    # -- lifecycle -------------------------------------------------------------------------------

    @property
    def binaries(self) -> Binaries:
        return self._pool.binaries

    @property
    def servers(self) -> list[PostgresServer]:
        """Every running server: the live and detached branches', then the pool's idle ones."""
        with self._state:
            branches = [b.server.server for b in (*self._branches.values(), *self._detached.values())]
        return branches + self._pool.idle

    def branch_server(self, project_id: str, branch_id: str) -> PostgresServer:
        """The server holding the branch's (or a detached branch's) databases, for tests and
        tools that look inside."""
        with self._state:
            branch = self._branches.get((project_id, branch_id)) or self._detached.get(
                (project_id, branch_id)
            )
        if branch is None:
            raise DataPlaneError(f"branch {branch_id} of project {project_id} has no data in the data plane")
        return branch.server.server

    def start(self) -> None:
        with self._lock:
            if self._hub is not None:
                return
            atexit.register(self.stop)
            try:
                self._pool.start()
                # The key and certificate are read into the context; no file needs to stay.
                tls_dir = tempfile.mkdtemp(prefix="jambo-tls-")
                try:
                    tls = server_context(tls_dir)
                finally:
                    shutil.rmtree(tls_dir, ignore_errors=True)
                self._hub = ProxyHub(
                    tls, self._route, self._server_sockets, bind_host=self._bind_host, port=self._port
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
            with self._state:
                branches = [*self._branches.values(), *self._detached.values()]
                self._branches.clear()
                self._detached.clear()
                self._endpoints.clear()
            for branch in branches:
                branch.server.stop()
            self._pool.stop()

    def reset(self) -> None:
        with self._lock:
            for project_id in {p for p, _ in (*self._branches, *self._detached, *self._endpoints)}:
                self.delete_project(project_id)

    def delete_project(self, project_id: str) -> None:
        with self._lock:
            for key in [k for k in self._endpoints if k[0] == project_id]:
                self._drop_endpoint(key[0], key[1], pause=False)
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
            parent = self._branch(project_id, parent_branch_id) if parent_branch_id is not None else None
            # The child's positions come after the parent's current one (where the copy stands).
            server = self._pool.acquire(after=parent.server.lsn() if parent is not None else 0)
            branch = PhysicalBranch(server)
            lsn = None
            if parent is not None:
                try:
                    branch.databases, branch.roles, lsn = self._copies.copy_branch(
                        parent, server, at, schema_only=schema_only, latest=self._latest
                    )
                except BaseException:
                    self._release(branch)
                    raise
                if lsn is None:  # a copy now: the parent's position it stands at
                    lsn = self._seen(parent.server.lsn())
            with self._state:
                self._branches[(project_id, branch_id)] = branch
            now_lsn = self._remember(branch)
            start = self._history_start.get(project_id)
            # Each branch's positions are its own server's: the project's history begins at the
            # lowest of them (a point before it never existed on any of its branches).
            self._history_start[project_id] = now_lsn if start is None else min(start, now_lsn)
            if parent is None:
                return None
            return format_lsn(lsn if lsn is not None else now_lsn)

    def reset_branch(
        self, project_id: str, branch_id: str, source_branch_id: str, *, at: PointInTime | None = None
    ) -> str | None:
        with self._lock:
            source = self._branch(project_id, source_branch_id)
            target = self._branches.get((project_id, branch_id))
            if target is None:
                return self.create_branch(project_id, branch_id, source_branch_id, at=at)
            # Copy aside first: if that fails, the branch keeps its old data.
            databases, roles, lsn = self._copies.copy_branch(
                source, target.server, at, schema_only=False, aside=True, latest=self._latest
            )
            if lsn is None:
                lsn = self._seen(source.server.lsn())
            for physical, _ in target.databases.values():
                self._copies.drop_database(target.server, physical)
            swapped: dict[str, tuple[str, str]] = {}
            for logical, (aside, owner) in databases.items():
                name = self._copies.server_name(logical)
                self._rename_database(target.server, aside, name)
                swapped[logical] = (name, owner)
            self._copies.drop_roles(target.server, set(target.roles) - set(roles))
            with self._state:
                target.databases, target.roles = swapped, roles
            self._remember(target)
            return format_lsn(lsn)

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
            self._delete_branch_endpoints(project_id, branch_id, pause=False)
            with self._state:
                live = self._branches.pop((project_id, branch_id), None)
                detached = self._detached.pop((project_id, branch_id), None)
            for branch in (live, detached):
                if branch is not None:
                    self._release(branch)

    def _release(self, branch: PhysicalBranch) -> None:
        """Empty the branch's server and give it back to the pool."""
        try:
            for physical, _ in branch.databases.values():
                self._copies.drop_database(branch.server, physical)
            self._copies.drop_roles(branch.server, set(branch.roles))
        except (PgServerError, DataPlaneError, OSError):
            branch.server.stop()  # not empty for sure: nobody else gets it
            return
        self._pool.release(branch.server)

    def detach_branch(self, project_id: str, branch_id: str) -> None:
        with self._lock:
            self._delete_branch_endpoints(project_id, branch_id, pause=False)
            with self._state:
                branch = self._branches.pop((project_id, branch_id), None)
                if branch is not None:
                    self._detached[(project_id, branch_id)] = branch
            if branch is not None:
                branch.server.pause()  # no compute until it is attached again

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

    def _delete_branch_endpoints(self, project_id: str, branch_id: str, *, pause: bool) -> None:
        for key, endpoint in list(self._endpoints.items()):
            if key[0] == project_id and endpoint.branch_id == branch_id:
                self._drop_endpoint(project_id, key[1], pause=pause)

    # -- databases and roles ---------------------------------------------------------------------

    def create_database(self, project_id: str, branch_id: str, name: str, owner: str) -> None:
        with self._lock:
            branch = self._branch(project_id, branch_id)
            if name in branch.databases:
                return
            if owner not in branch.roles:
                raise DataPlaneError(f"owner role {owner!r} does not exist on branch {branch_id}")
            physical = self._copies.server_name(name)
            self._copies.create_database(branch.server, physical, owner)
            # Every branch role may create objects in public, as on the real service; large
            # objects are writes a read-only role could otherwise make (outside table grants).
            branch.server.sql_in(
                physical,
                f"GRANT ALL ON SCHEMA public TO {GROUP_ROLE}; "
                "REVOKE EXECUTE ON FUNCTION lo_creat(integer), lo_create(oid), lo_from_bytea(oid, bytea) "
                f"FROM PUBLIC; GRANT EXECUTE ON FUNCTION lo_creat(integer), lo_create(oid), "
                f"lo_from_bytea(oid, bytea) TO {GROUP_ROLE}",
            )
            branch.server.sql(database_access(physical, owner, branch.roles))
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
            self._copies.drop_database(branch.server, physical)
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
                renamed = self._copies.server_name(new_name)
                self._rename_database(branch.server, physical, renamed, ended=True)
                with self._state:
                    del branch.databases[name]
                    branch.databases[new_name] = (renamed, current_owner)
                name, physical = new_name, renamed
            if owner is not None and owner != current_owner:
                branch.server.sql(database_access(physical, owner, branch.roles))
                with self._state:
                    branch.databases[name] = (physical, owner)
            self._remember(branch)

    def _rename_database(
        self, server: BranchServer, physical: str, renamed: str, *, ended: bool = False
    ) -> None:
        """``ALTER DATABASE ... RENAME`` needs the database free of sessions. ``ended``: new logins
        are held off and the existing sessions ended (the real service restarts the compute to
        apply a rename); a copy being swapped in has none."""
        db = quote_ident(physical)
        if ended:
            server.sql(f"ALTER DATABASE {db} ALLOW_CONNECTIONS false")
        try:
            if ended:
                server.sql(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    f"WHERE datname = {quote_literal(physical)} AND pid <> pg_backend_pid()"
                )
            for attempt in itertools.count():
                try:
                    server.sql(f"ALTER DATABASE {db} RENAME TO {quote_ident(renamed)}")
                    break
                except PgServerError as exc:
                    # A terminated backend may take a moment to leave pg_stat_activity.
                    if exc.sqlstate != OBJECT_IN_USE or attempt >= 50:
                        raise
                    time.sleep(0.05)
        except BaseException:
            if ended:
                server.sql(f"ALTER DATABASE {db} ALLOW_CONNECTIONS true")
            raise
        if ended:
            server.sql(f"ALTER DATABASE {quote_ident(renamed)} ALLOW_CONNECTIONS true")

    def create_role(self, project_id: str, branch_id: str, name: str, password: str) -> None:
        with self._lock:
            branch = self._branch(project_id, branch_id)
            check_role_name(name)
            if name not in branch.roles:
                self._copies.ensure_roles(branch.server, [name])
                for physical, owner in branch.databases.values():
                    branch.server.sql(database_access(physical, owner, [*branch.roles, name]))
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
            self._copies.drop_roles(branch.server, {name})
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
            old_branch = endpoint.branch_id
            branch = self._branches.get((project_id, branch_id))
            if branch is not None:
                branch.server.running()  # the compute starts: its server too
            with self._state:
                endpoint.branch_id = branch_id
                endpoint.read_only = read_only
                endpoint.running = True
                endpoint.port = hub.port
                self._endpoints[(project_id, endpoint_id)] = endpoint
            if moved:  # sessions of the old branch or mode must not stay on the endpoint
                hub.drop_sessions(_proxy_key(project_id, endpoint_id))
                self._pause_if_unused(project_id, old_branch)
            return self._address(endpoint.host)

    def suspend_endpoint(self, project_id: str, branch_id: str, endpoint_id: str) -> None:
        with self._lock:
            endpoint = self._endpoints.get((project_id, endpoint_id))
            if endpoint is None or not endpoint.running:
                return
            with self._state:
                endpoint.running = False
            self._running_hub().drop_sessions(_proxy_key(project_id, endpoint_id))
            self._pause_if_unused(project_id, endpoint.branch_id)

    def delete_endpoint(self, project_id: str, branch_id: str, endpoint_id: str) -> None:
        self._drop_endpoint(project_id, endpoint_id, pause=True)

    def _drop_endpoint(self, project_id: str, endpoint_id: str, *, pause: bool) -> None:
        """``pause``: False when the branch's data goes too (no point stopping its server first)."""
        with self._lock:
            with self._state:
                endpoint = self._endpoints.pop((project_id, endpoint_id), None)
            if endpoint is not None and self._hub is not None:
                self._hub.drop_sessions(_proxy_key(project_id, endpoint_id))
            if pause and endpoint is not None and endpoint.running:
                self._pause_if_unused(project_id, endpoint.branch_id)

    def _pause_if_unused(self, project_id: str, branch_id: str) -> None:
        """A branch with no running compute left keeps its files but not its server's processes
        (the service suspends computes too); its next use starts them again."""
        branch = self._branches.get((project_id, branch_id)) or self._detached.get((project_id, branch_id))
        if branch is None:
            return
        if any(
            e.running and e.project_id == project_id and e.branch_id == branch_id
            for e in self._endpoints.values()
        ):
            return
        branch.server.pause()

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
            if at is not None:
                version = version_at(branch, branch_id, at)
                at = self._copies.past(branch.server, at, self._latest)
            if at is None:
                found = branch.databases.get(database)
                if found is None:
                    return None
                physical, roles = found[0], list(branch.roles)
                branch.server.running()
                raw = self._schema_only(branch.server.server, physical)
            else:
                if database not in version.databases:
                    return None
                physical, roles = version.databases[database][0], list(version.roles)
                with self._copies.recovered(branch.server, at) as (past, _):
                    raw = self._schema_only(past, physical)
        names = {physical: database}
        for role in roles:
            names[role_name(role, read_only=True)] = role
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
                branch.server.sql_in(
                    branch.databases[database][0], "; ".join(masking_statements(database_rules))
                )

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
            backend_user = role_name(user, read_only=endpoint.read_only)
            return Route(
                found[0] if found else None,
                branch.roles.get(user),
                endpoint.read_only,
                backend_user,
                key,
                socket=branch.server.socket_path,
            )

    def _server_sockets(self) -> list[str]:
        """Every live branch server's socket (a cancel request names no endpoint: each server
        ignores a key that is not its own)."""
        with self._state:
            return [b.server.socket_path for b in self._branches.values()]

    def _branch(self, project_id: str, branch_id: str) -> PhysicalBranch:
        branch = self._branches.get((project_id, branch_id))
        if branch is None:
            raise DataPlaneError(f"branch {branch_id} of project {project_id} has no data in the data plane")
        return branch

    def _running_hub(self) -> ProxyHub:
        if self._hub is None:
            raise DataPlaneError("the data plane is not running (call start() first)")
        return self._hub

    def _remember(self, branch: PhysicalBranch) -> int:
        """Add the branch's current state to its history; the WAL position it starts at."""
        lsn = self._seen(branch.server.lsn())
        version = Version(time.time(), lsn, dict(branch.databases), dict(branch.roles))
        with self._state:
            branch.history.append(version)
        return lsn

    def _seen(self, lsn: int) -> int:
        self._latest = max(self._latest, lsn)
        self._pool.saw(lsn)
        return lsn


def _proxy_key(project_id: str, endpoint_id: str) -> str:
    return f"{project_id}/{endpoint_id}"


def _pooler_host(host: str) -> str:
    """The real service's pooled host inserts ``-pooler`` after the endpoint id."""
    first, dot, rest = host.partition(".")
    return f"{first}-pooler{dot}{rest}"
