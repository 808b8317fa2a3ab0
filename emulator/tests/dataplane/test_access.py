"""Logins through the endpoint proxies: URIs, TLS, passwords, roles, databases, suspend/start."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest

from .support import Project, scalar, uri


@pytest.mark.parametrize("pooled", [False, True], ids=["direct", "pooled"])
def test_uri_connects_with_logical_names_over_tls(project: Project, pooled: bool) -> None:
    address = project.endpoint("br-main")
    assert address.host == "ep-br-main.us-east-2.aws.neon.tech"
    assert address.pooler_host == "ep-br-main-pooler.us-east-2.aws.neon.tech"
    assert "sslmode=require" in address.query
    with project.connect(address, pooled=pooled) as conn:
        assert conn.info.dbname == "neondb"
        assert conn.info.user == "neondb_owner"
        assert conn.pgconn.ssl_in_use
        # Server-side the names are the API's too (each branch has its own server), so tools
        # that qualify names with the database (dbt) resolve them.
        assert scalar(conn, "SELECT current_user") == "neondb_owner"
        assert scalar(conn, "SELECT current_database()") == "neondb"


@pytest.mark.skipif(shutil.which("psql") is None, reason="psql CLI not installed")
def test_psql_cli_accepts_the_uri(project: Project) -> None:
    address = project.endpoint("br-main")
    result = subprocess.run(
        ["psql", uri(address, "neondb_owner", project.password, "neondb"), "-Atc", "SELECT 40 + 2"],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "PGCONNECT_TIMEOUT": "10"},
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "42"


def test_wrong_password_and_unknown_role_are_refused_alike(project: Project) -> None:
    address = project.endpoint("br-main")
    with pytest.raises(
        psycopg.OperationalError, match='password authentication failed for user "neondb_owner"'
    ):
        project.connect(address, password="wrong")
    with pytest.raises(psycopg.OperationalError, match='password authentication failed for user "nobody"'):
        project.connect(address, role="nobody")


def test_unknown_database_is_reported_after_login(project: Project) -> None:
    with pytest.raises(psycopg.OperationalError, match='database "nope" does not exist'):
        project.connect(project.endpoint("br-main"), database="nope")


def test_passwords_are_per_branch_and_can_change(project: Project) -> None:
    project.branch("br-child")
    child = project.endpoint("br-child")
    # The child starts with the parent's password (roles travel with the data) ...
    project.connect(child).close()
    # ... and a new one on the child leaves the parent's alone.
    project.plane.set_role_password(project.id, "br-child", "neondb_owner", "child-secret")
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        project.connect(child)
    project.connect(child, password="child-secret").close()
    project.connect(project.endpoint("br-main")).close()


def test_api_created_role_and_database_are_usable(project: Project) -> None:
    plane = project.plane
    plane.create_role(project.id, "br-main", "app_user", "app-secret")
    plane.create_database(project.id, "br-main", "appdb", "app_user")
    address = project.endpoint("br-main")
    with project.connect(address, role="app_user", password="app-secret", database="appdb") as conn:
        conn.execute("CREATE TABLE t (x int)")
        conn.execute("INSERT INTO t VALUES (1)")
        assert scalar(conn, "SELECT count(*) FROM t") == 1
    # A role created through the API can also work in the owner's database (group role grants).
    with project.connect(address, role="app_user", password="app-secret") as conn:
        conn.execute("CREATE TABLE made_by_app (x int)")
    # The database and role exist on that branch only.
    project.branch("br-before", parent="br-main")
    plane.create_role(project.id, "br-main", "late_role", "late-secret")
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        project.connect(project.endpoint("br-before"), role="late_role", password="late-secret")


def test_deleted_role_and_database_are_gone(project: Project) -> None:
    plane = project.plane
    plane.create_role(project.id, "br-main", "temp_role", "temp-secret")
    plane.create_database(project.id, "br-main", "tempdb", "neondb_owner")
    address = project.endpoint("br-main")
    with project.connect(address, role="temp_role", password="temp-secret") as conn:
        conn.execute("CREATE TABLE owned_by_temp (x int)")

    plane.delete_role(project.id, "br-main", "temp_role")
    plane.delete_database(project.id, "br-main", "tempdb")
    plane.delete_database(project.id, "br-main", "tempdb")  # already gone: no error

    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        project.connect(address, role="temp_role", password="temp-secret")
    with pytest.raises(psycopg.OperationalError, match='database "tempdb" does not exist'):
        project.connect(address, database="tempdb")
    with project.connect(address) as conn:  # the role's objects went to the database owner
        owner = scalar(
            conn, "SELECT split_part(tableowner, '~', 1) FROM pg_tables WHERE tablename = 'owned_by_temp'"
        )
        assert owner == "neondb_owner"


def test_reserved_role_names_are_refused(project: Project) -> None:
    from jambo_emulator.dataplane.base import DataPlaneError

    for name in ("pg_monitor", "jambo_admin", "neon_superuser"):
        with pytest.raises(DataPlaneError, match="reserved"):
            project.plane.create_role(project.id, "br-main", name, "x")


def test_read_only_endpoint_refuses_writes(project: Project) -> None:
    project.branch("br-child")
    address = project.endpoint("br-child", "ep-ro", read_only=True)
    with project.connect(address) as conn:
        assert scalar(conn, "SELECT 1") == 1
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            conn.execute("CREATE TABLE nope (x int)")


def test_suspend_drops_sessions_and_refuses_until_start_on_the_same_port(project: Project) -> None:
    address = project.endpoint("br-main")
    session = project.connect(address)
    project.plane.suspend_endpoint(project.id, "br-main", "ep-br-main")

    assert not project.plane.endpoint_running(project.id, "ep-br-main")
    with pytest.raises(psycopg.OperationalError):
        session.execute("SELECT 1")
    session.close()
    with pytest.raises(psycopg.OperationalError):
        project.connect(address)

    again = project.endpoint("br-main")
    assert again.port == address.port
    with project.connect(again) as conn:
        assert scalar(conn, "SELECT 1") == 1


def test_query_cancel_reaches_the_server(project: Project) -> None:
    # cancel_safe(), not cancel(): libpq's legacy PQcancel blocks while holding the GIL, which
    # deadlocks against a proxy running in the same Python process (as here).
    with project.connect(project.endpoint("br-main")) as conn:
        timer = threading.Timer(0.3, conn.cancel_safe)
        timer.start()
        try:
            with pytest.raises(psycopg.errors.QueryCanceled):
                conn.execute("SELECT pg_sleep(30)")
        finally:
            timer.cancel()


def test_concurrent_branch_creates_and_logins(project: Project) -> None:
    with project.connect(project.endpoint("br-main")) as conn:
        conn.execute("CREATE TABLE n AS SELECT 7 AS v")

    def work(i: int) -> int:
        project.branch(f"br-par-{i}")
        with project.connect(project.endpoint(f"br-par-{i}")) as conn:
            conn.execute(f"UPDATE n SET v = {i}")
            return int(scalar(conn, "SELECT v FROM n"))  # type: ignore[call-overload]

    with ThreadPoolExecutor(max_workers=6) as pool:
        assert list(pool.map(work, range(6))) == list(range(6))
    with project.connect(project.endpoint("br-main")) as conn:
        assert scalar(conn, "SELECT v FROM n") == 7


def test_odd_database_and_role_names_round_trip(project: Project) -> None:
    from urllib.parse import quote

    odd_db, odd_role = 'my "odd" db\'s ~name', "Odd Role"
    project.plane.create_role(project.id, "br-main", odd_role, "odd-secret")
    project.plane.create_database(project.id, "br-main", odd_db, odd_role)
    address = project.endpoint("br-main")
    with project.connect(
        address, role=quote(odd_role), password="odd-secret", database=quote(odd_db)
    ) as conn:
        assert scalar(conn, "SELECT split_part(current_user, '~', 1)") == odd_role
        conn.execute("CREATE TABLE t (x int)")
    project.branch("br-odd-child")
    with project.connect(
        project.endpoint("br-odd-child"), role=quote(odd_role), password="odd-secret", database=quote(odd_db)
    ) as conn:
        assert scalar(conn, "SELECT count(*) FROM t") == 0
    dump = project.plane.schema_dump(project.id, "br-main", odd_db)
    assert dump is not None
    assert 'OWNER TO "Odd Role"' in dump


def test_psycopg2_and_postgres_hook_accept_the_uri(project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    """``hostaddr`` in the query keeps the real host name in the URI while connecting to loopback."""
    psycopg2 = pytest.importorskip("psycopg2")
    postgres_hook = pytest.importorskip("airflow.providers.postgres.hooks.postgres")
    from airflow.models.connection import Connection

    address = project.endpoint("br-main")
    pooled = uri(address, "neondb_owner", project.password, "neondb", pooled=True)
    with psycopg2.connect(pooled) as conn, conn.cursor() as cur:
        cur.execute("SELECT split_part(current_user, '~', 1)")
        assert cur.fetchone() == ("neondb_owner",)

    connection = Connection(
        conn_id="jambo_branch", uri=uri(address, "neondb_owner", project.password, "neondb")
    )
    assert connection.host == address.host
    assert connection.extra_dejson == {"sslmode": "require", "hostaddr": "127.0.0.1"}
    monkeypatch.setenv("AIRFLOW_CONN_JAMBO_BRANCH", connection.get_uri())
    hook = postgres_hook.PostgresHook(postgres_conn_id="jambo_branch")
    assert hook.get_records("SELECT split_part(current_user, '~', 1), 40 + 2") == [("neondb_owner", 42)]


def test_negotiation_answers_gss_and_ssl_requests_and_survives_garbage(project: Project) -> None:
    import socket
    import struct

    address = project.endpoint("br-main")
    with socket.create_connection(("127.0.0.1", address.port), timeout=10) as sock:
        sock.sendall(struct.pack("!II", 8, 80877104))  # GSSENCRequest
        assert sock.recv(1) == b"N"
        sock.sendall(struct.pack("!II", 8, 80877103))  # SSLRequest
        assert sock.recv(1) == b"S"
    with socket.create_connection(("127.0.0.1", address.port), timeout=10) as sock:
        sock.sendall(b"\xff" * 64)  # not a PostgreSQL client: dropped without an answer
        try:
            answer = sock.recv(1)
        except ConnectionResetError:  # closed with our bytes unread: a reset, also fine
            answer = b""
        assert answer == b""
    with project.connect(address) as conn:  # the proxy still serves
        assert scalar(conn, "SELECT 1") == 1


def test_neon_endpoint_option_is_accepted(project: Project) -> None:
    """Clients without SNI pass ``options=endpoint=<id>`` to the real service; it must not reach
    the server as an unknown command-line option."""
    address = project.endpoint("br-main")
    target = uri(address, "neondb_owner", project.password, "neondb") + "&options=endpoint%3Dep-br-main"
    with psycopg.connect(target) as conn:
        assert scalar(conn, "SELECT 1") == 1


def test_endpoint_moved_to_another_branch_keeps_its_port(project: Project) -> None:
    with project.connect(project.endpoint("br-main")) as conn:
        conn.execute("CREATE TABLE marker AS SELECT 'main' AS branch")
    project.branch("br-other")
    with project.connect(project.endpoint("br-other")) as conn:
        conn.execute("UPDATE marker SET branch = 'other'")
    first = project.endpoint("br-main", "ep-moving")
    second = project.endpoint("br-other", "ep-moving")
    assert second.port == first.port
    with project.connect(second) as conn:
        assert scalar(conn, "SELECT branch FROM marker") == "other"
