"""The data plane's PostgreSQL servers: one per live branch, taken from a small pool of idle ones.

Why one server per branch: PostgreSQL allows one database of a name per cluster, and tools that
qualify names with the database (dbt writes ``"neondb"."public"."orders"``) need each branch's
databases under their own names (``current_database()`` is ``neondb``). A server per branch is
also what the service runs (a compute per branch), so a branch's roles keep their own names too.

A server starts in a few tenths of a second (a copy of the cached initdb result, then a base
backup for point-in-time copies), so the pool keeps ``spares`` started servers ready and a branch
create only copies data. A deleted branch's server, once emptied, goes back to the pool (up to
``keep_idle`` of them; more are stopped, so memory follows the number of live branches).

WAL positions: on the service a child's timeline continues its parent's, so every position on a
child comes after the point it was branched at (the API relies on it: a restored branch has no
history before its restore point). Each server here has its own WAL, so a new server's WAL starts
``HEADROOM`` past the highest position any server has reported (``pg_resetwal``, before its first
start), and a branch gets a server whose position is past its parent's (``acquire(after=...)``).
"""

from __future__ import annotations

import threading

from jambo_emulator.dataplane.base import DataPlaneError, parse_lsn
from jambo_emulator.dataplane.pg_server import ADMIN_USER, Binaries, PostgresServer
from jambo_emulator.dataplane.pgwire import AdminConnection, quote_literal

#: Group role every branch role belongs to, as on the real service (read/write on all data).
GROUP_ROLE = "neon_superuser"
#: Databases every cluster has: a branch database of one of these names gets another name on its
#: server (``postgres~3``), the only case where ``current_database()`` differs from the API's name.
CLUSTER_DATABASES = frozenset({"postgres", "template0", "template1"})

#: How far past the highest known WAL position a new server starts: room for its spares' future
#: parents to write this much WAL before a spare is too far behind to take their children.
HEADROOM = 1024**3
#: A branch's server serves one branch: a compute's limits, not the old shared server's.
#: No logical replication (the proxy refuses replication connections): one process less each.
_BRANCH_SERVER_SETTINGS = {
    "max_connections": "100",
    "shared_buffers": "16MB",
    "max_logical_replication_workers": "0",
}


class BranchServer:
    """One running server (with WAL history) and its admin connection. Not thread-safe: the data
    plane calls it under its DDL lock."""

    def __init__(self, binaries: Binaries, wal_start: int = 0) -> None:
        self.server = PostgresServer(
            binaries, history=True, settings=_BRANCH_SERVER_SETTINGS, wal_start=wal_start
        )
        self._admin: AdminConnection | None = None

    def start(self) -> None:
        self.server.start()
        try:
            self._admin = self.server.admin()
            self._admin.execute(
                f"CREATE ROLE {GROUP_ROLE} NOLOGIN IN ROLE pg_read_all_data, pg_write_all_data"
            )
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        admin, self._admin = self._admin, None
        if admin is not None:
            admin.close()
        self.server.stop()

    def pause(self) -> None:
        """Stop the processes (the branch has no running compute), keep the files; any later
        use starts them again."""
        admin, self._admin = self._admin, None
        if admin is not None:
            admin.close()
        self.server.pause()

    def running(self) -> None:
        """Make sure the server runs (a paused one is started again, ~0.1 s)."""
        if self.server.paused:
            self.server.resume()
        if self._admin is None:
            self._admin = self.server.admin()

    @property
    def socket_path(self) -> str:
        return self.server.socket_path

    def sql(self, sql: str) -> list[tuple[str | None, ...]]:
        """Run ``sql`` on the admin connection (in the ``postgres`` database)."""
        if self.server.pid is None:
            raise DataPlaneError("this branch server is not running")
        self.running()
        assert self._admin is not None
        return self._admin.execute(sql)

    def sql_in(self, database: str, sql: str) -> list[tuple[str | None, ...]]:
        self.running()
        conn = self.server.admin(database)
        try:
            return conn.execute(sql)
        finally:
            conn.close()

    def lsn(self) -> int:
        """The server's current WAL insert position."""
        return parse_lsn(self.sql("SELECT pg_current_wal_insert_lsn()::text")[0][0] or "0/0")

    def is_empty(self) -> bool:
        """No database or role left but the cluster's own (fit to serve another branch)."""
        databases = ", ".join(quote_literal(name) for name in sorted(CLUSTER_DATABASES))
        rows = self.sql(
            f"SELECT (SELECT count(*) FROM pg_database WHERE datname NOT IN ({databases})) + "
            f"(SELECT count(*) FROM pg_roles WHERE rolname NOT LIKE 'pg\\_%' "
            f"AND rolname NOT IN ({quote_literal(ADMIN_USER)}, {quote_literal(GROUP_ROLE)}))"
        )
        return rows[0][0] == "0"


class ServerPool:
    """Hands out started ``BranchServer``s and takes emptied ones back."""

    def __init__(self, binaries: Binaries, *, spares: int = 2, keep_idle: int = 4) -> None:
        self.binaries = binaries
        self._spares = spares
        #: At most this many idle servers keep running (more are stopped).
        self.keep_idle = max(spares, keep_idle)
        self._lock = threading.Lock()
        self._idle: list[BranchServer] = []
        self._frontier = 0  # the highest WAL position seen on any server (or a new one's start)
        self._filler: threading.Thread | None = None
        self._closed = True

    def start(self) -> None:
        """Start the first spare now (so a machine that cannot run a server fails here)."""
        with self._lock:
            self._closed = False
        server = self._new_server()
        server.start()
        with self._lock:
            self._idle.append(server)

    def saw(self, lsn: int) -> None:
        """A server reported this WAL position (new servers start past it)."""
        with self._lock:
            self._frontier = max(self._frontier, lsn)

    def acquire(self, after: int = 0) -> BranchServer:
        """An idle server whose WAL position is at least ``after``, or a new one started now;
        the pool then refills in the background."""
        with self._lock:
            if self._closed:
                raise DataPlaneError("the data plane is not running (call start() first)")
            idle = list(self._idle)
        # Only this thread (under the data plane's lock) uses an idle server's admin connection.
        # The lowest position that will do: servers far ahead stay for children of later parents.
        positions = [(s.lsn(), i) for i, s in enumerate(idle)]
        fitting = sorted(p for p in positions if p[0] >= after)
        server = idle[fitting[0][1]] if fitting else None
        if server is not None:
            with self._lock:
                self._idle.remove(server)
        else:
            server = self._new_server()
            server.start()
        self._refill()
        return server

    def _new_server(self) -> BranchServer:
        with self._lock:
            start = self._frontier + HEADROOM
            self._frontier = start
        return BranchServer(self.binaries, wal_start=start)

    def release(self, server: BranchServer) -> None:
        """Take back a server whose branch is gone: kept idle when empty and wanted, else stopped."""
        with self._lock:
            keep = not self._closed and len(self._idle) < self.keep_idle
        if keep and server.is_empty():
            with self._lock:
                if not self._closed:
                    self._idle.append(server)
                    return
        server.stop()

    def stop(self) -> None:
        with self._lock:
            self._closed = True
            filler, idle, self._idle = self._filler, self._idle, []
        if filler is not None:
            filler.join()
        for server in idle:
            server.stop()
        with self._lock:
            for server in self._idle:  # the filler's last one
                server.stop()
            self._idle = []

    @property
    def idle(self) -> list[PostgresServer]:
        with self._lock:
            return [s.server for s in self._idle]

    def _refill(self) -> None:
        with self._lock:
            if self._closed or len(self._idle) >= self._spares or (self._filler and self._filler.is_alive()):
                return
            self._filler = threading.Thread(target=self._fill, name="jambo-dataplane-pool", daemon=True)
            self._filler.start()

    def _fill(self) -> None:
        while True:
            with self._lock:
                if self._closed or len(self._idle) >= self._spares:
                    return
            server = self._new_server()
            try:
                server.start()
            except DataPlaneError:
                return  # the next acquire starts one itself and reports the reason
            with self._lock:
                if self._closed:
                    break
                self._idle.append(server)
        server.stop()
