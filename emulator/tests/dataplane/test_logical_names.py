"""Every branch's databases answer to their own names (``current_database()`` is ``neondb``), so
names qualified with the database, as dbt writes them (``"neondb"."public"."orders"``), resolve:
on a branch, its children, point-in-time copies and after a reset, with branches kept apart."""

from __future__ import annotations

import time
from pathlib import Path

import psycopg
import pytest

from jambo_emulator.dataplane.base import PointInTime

from .support import Project, scalar


def _orders(project: Project, branch: str, database: str = "neondb") -> list[int]:
    with project.connect(project.endpoint(branch), database=database) as conn:
        assert scalar(conn, "SELECT current_database()") == database
        rows = conn.execute(f'SELECT id FROM "{database}"."public"."orders" ORDER BY id').fetchall()
    return [row[0] for row in rows]


def test_database_qualified_names_resolve_on_a_branch_and_its_child(project: Project) -> None:
    with project.connect(project.endpoint("br-main")) as conn:
        conn.execute('CREATE TABLE "neondb"."public"."orders" (id int PRIMARY KEY)')
        conn.execute('INSERT INTO "neondb"."public"."orders" VALUES (1), (2)')
    assert _orders(project, "br-main") == [1, 2]

    project.branch("br-child")
    assert _orders(project, "br-child") == [1, 2]
    with project.connect(project.endpoint("br-child")) as conn:
        conn.execute('CREATE TABLE "neondb"."public"."orders_v2" AS SELECT id * 10 AS id FROM orders')
        conn.execute('INSERT INTO "neondb"."public"."orders" VALUES (3)')
        assert scalar(conn, 'SELECT sum(id) FROM "neondb"."public"."orders_v2"') == 30
    assert _orders(project, "br-child") == [1, 2, 3]
    assert _orders(project, "br-main") == [1, 2]  # the child's writes stay on the child


def test_every_database_keeps_its_name_in_children(project: Project) -> None:
    project.plane.create_database(project.id, "br-main", "analytics", "neondb_owner")
    with project.connect(project.endpoint("br-main"), database="analytics") as conn:
        conn.execute('CREATE TABLE "analytics"."public"."orders" AS SELECT 7 AS id')
    project.branch("br-child")
    assert _orders(project, "br-child", database="analytics") == [7]
    with (
        project.connect(project.endpoint("br-child"), database="analytics") as conn,
        pytest.raises(
            psycopg.errors.FeatureNotSupported, match="cross-database references are not implemented"
        ),
    ):
        conn.execute('SELECT * FROM "neondb"."public"."orders"')  # another database: as in PostgreSQL


def test_branches_and_projects_stay_apart(project: Project) -> None:
    other = Project(
        project.plane, f"{project.id}-other", password="other-secret", endpoint_prefix="ep-other-"
    )
    project.plane.create_branch(other.id, "br-main", None)
    project.plane.create_role(other.id, "br-main", "neondb_owner", other.password)
    project.plane.create_database(other.id, "br-main", "neondb", "neondb_owner")
    try:
        for proj, value in ((project, 1), (other, 2)):
            with proj.connect(proj.endpoint("br-main")) as conn:
                conn.execute(f"CREATE TABLE orders AS SELECT {value} AS id")
        project.branch("br-a")
        project.plane.create_role(project.id, "br-a", "only_a", "only-a-secret")
        project.branch("br-b")
        with project.connect(project.endpoint("br-a")) as conn:
            conn.execute("INSERT INTO orders VALUES (10)")

        assert _orders(project, "br-a") == [1, 10]
        assert _orders(project, "br-b") == [1]
        assert _orders(other, "br-main") == [2]
        # A role of branch A is nobody on branch B, nor on another project's branch.
        project.connect(project.endpoint("br-a"), role="only_a", password="only-a-secret").close()
        for address in (project.endpoint("br-b"), other.endpoint("br-main")):
            with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
                project.connect(address, role="only_a", password="only-a-secret")
        # The same role name with one project's password does not open the other's branch.
        with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
            project.connect(other.endpoint("br-main"))
    finally:
        project.plane.delete_project(other.id)


def test_point_in_time_child_sees_the_old_state_under_its_name(project: Project) -> None:
    with project.connect(project.endpoint("br-main")) as conn:
        conn.execute("CREATE TABLE orders (id int); INSERT INTO orders VALUES (1)")
        time.sleep(0.05)
        point = time.time()
        time.sleep(0.05)
        conn.execute("INSERT INTO orders VALUES (2)")
    project.plane.create_branch(project.id, "br-then", "br-main", at=PointInTime(timestamp=point))
    assert _orders(project, "br-then") == [1]
    assert _orders(project, "br-main") == [1, 2]


def test_reset_and_restore_keep_the_names(project: Project) -> None:
    with project.connect(project.endpoint("br-main")) as conn:
        conn.execute("CREATE TABLE orders (id int); INSERT INTO orders VALUES (1)")
    project.branch("br-child")
    with project.connect(project.endpoint("br-main")) as conn:
        conn.execute("INSERT INTO orders VALUES (2)")
    point = time.time()
    time.sleep(0.05)
    with project.connect(project.endpoint("br-child")) as conn:
        conn.execute("INSERT INTO orders VALUES (3)")

    project.plane.reset_branch(project.id, "br-child", "br-main")  # to the parent's latest
    assert _orders(project, "br-child") == [1, 2]
    with project.connect(project.endpoint("br-child")) as conn:
        conn.execute("INSERT INTO orders VALUES (4)")
    project.plane.reset_branch(project.id, "br-child", "br-child", at=PointInTime(timestamp=point))
    assert _orders(project, "br-child") == [1]  # its own past: before the reset to main


def test_a_database_named_like_the_clusters_own_works_under_another_name(project: Project) -> None:
    project.plane.create_database(project.id, "br-main", "postgres", "neondb_owner")
    with project.connect(project.endpoint("br-main"), database="postgres") as conn:
        conn.execute("CREATE TABLE orders AS SELECT 5 AS id")
        # The one exception: every cluster has its own `postgres`, so this one is `postgres~<n>`.
        assert str(scalar(conn, "SELECT current_database()")).startswith("postgres~")
    project.branch("br-child")
    with project.connect(project.endpoint("br-child"), database="postgres") as conn:
        assert scalar(conn, "SELECT id FROM orders") == 5


def test_a_deleted_branchs_server_serves_the_next_branch(project: Project) -> None:
    """Servers follow the live branches: a deleted branch's server, emptied, serves the next one
    (no server started per create), and only the pool's few idle ones are kept running."""
    used = []
    for i in range(5):
        project.branch(f"br-{i}")
        used.append(project.plane.branch_server(project.id, f"br-{i}").base_dir)
        with project.connect(project.endpoint(f"br-{i}")) as conn:  # main's (empty) `neondb`, copied
            assert scalar(conn, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'") == 0
        project.plane.delete_branch(project.id, f"br-{i}")
        assert len(project.plane.servers) <= len(project.plane._branches) + project.plane._pool.keep_idle
    assert len(set(used)) < len(used)


def _postmaster_running(project: Project, branch: str) -> bool:
    server = project.plane.branch_server(project.id, branch)
    return Path(server.data_dir, "postmaster.pid").exists()


def test_a_branch_without_a_running_compute_has_no_server_processes(project: Project) -> None:
    """As the service suspends computes: suspending a branch's last endpoint stops its server's
    processes (its files stay); starting the endpoint, DDL or a child's copy start them again."""
    address = project.endpoint("br-main")
    with project.connect(address) as conn:
        conn.execute("CREATE TABLE orders AS SELECT 1 AS id")
    project.branch("br-child")
    child_address = project.endpoint("br-child")
    project.plane.suspend_endpoint(project.id, "br-main", "ep-br-main")
    assert not _postmaster_running(project, "br-main")
    assert _postmaster_running(project, "br-child")  # its own compute still runs
    with pytest.raises(psycopg.OperationalError, match="not running"):
        project.connect(address)

    project.branch("br-grandchild", parent="br-main")  # copied from the suspended branch
    assert _orders(project, "br-grandchild") == [1]
    project.plane.create_database(project.id, "br-main", "analytics", "neondb_owner")  # DDL
    project.plane.suspend_endpoint(project.id, "br-child", "ep-br-child")
    assert not _postmaster_running(project, "br-child")

    assert _orders(project, "br-main") == [1]  # the endpoint starts again, with the data
    assert _postmaster_running(project, "br-main")
    project.endpoint("br-child", "ep-br-child")
    with project.connect(child_address, database="neondb") as conn:
        assert scalar(conn, "SELECT id FROM orders") == 1
