"""Branch data semantics: a child copies its parent *at creation*; later writes stay apart."""

from __future__ import annotations

import psycopg
import pytest

from .support import Project, kept_while_paused, scalar, server_databases


def _seed(project: Project) -> None:
    with project.connect(project.endpoint("br-main")) as conn:
        conn.execute("CREATE TABLE items (id int PRIMARY KEY, name text)")
        conn.execute("INSERT INTO items VALUES (1, 'one'), (2, 'two')")


def _names(project: Project, branch_id: str) -> list[str]:
    with project.connect(project.endpoint(branch_id)) as conn:
        return [row[0] for row in conn.execute("SELECT name FROM items ORDER BY id")]


def test_child_sees_parent_data_at_creation_and_writes_stay_isolated(project: Project) -> None:
    _seed(project)
    project.branch("br-child")
    project.branch("br-sibling")

    with project.connect(project.endpoint("br-main")) as conn:
        conn.execute("INSERT INTO items VALUES (3, 'parent-after-fork')")
    with project.connect(project.endpoint("br-child")) as conn:
        conn.execute("INSERT INTO items VALUES (10, 'child-only')")
        conn.execute("UPDATE items SET name = 'ONE' WHERE id = 1")

    assert _names(project, "br-main") == ["one", "two", "parent-after-fork"]
    assert _names(project, "br-child") == ["ONE", "two", "child-only"]
    assert _names(project, "br-sibling") == ["one", "two"]


def test_grandchild_copies_the_child_not_the_root(project: Project) -> None:
    _seed(project)
    project.branch("br-child")
    with project.connect(project.endpoint("br-child")) as conn:
        conn.execute("INSERT INTO items VALUES (5, 'from-child')")
    project.branch("br-grandchild", parent="br-child")
    assert _names(project, "br-grandchild") == ["one", "two", "from-child"]


def test_branch_copy_while_parent_has_open_session_keeps_that_session(project: Project) -> None:
    _seed(project)
    with project.connect(project.endpoint("br-main")) as parent_session:
        parent_session.execute("BEGIN")
        parent_session.execute("INSERT INTO items VALUES (7, 'uncommitted')")
        project.branch("br-child")  # must not wait for, or kill, the open session
        parent_session.execute("COMMIT")
        assert scalar(parent_session, "SELECT count(*) FROM items") == 3
    # A consistent snapshot: the uncommitted row was not copied.
    assert _names(project, "br-child") == ["one", "two"]


def test_reset_replaces_data_with_the_sources_current_data(project: Project) -> None:
    _seed(project)
    project.branch("br-child")
    child = project.endpoint("br-child")
    with project.connect(child) as conn:
        conn.execute("DELETE FROM items")
        conn.execute("CREATE TABLE scratch (x int)")
    with project.connect(project.endpoint("br-main")) as conn:
        conn.execute("INSERT INTO items VALUES (4, 'newer-on-parent')")

    project.plane.reset_branch(project.id, "br-child", "br-main")

    assert _names(project, "br-child") == ["one", "two", "newer-on-parent"]
    with project.connect(child) as conn:
        assert scalar(conn, "SELECT to_regclass('public.scratch')") is None


def test_reset_drops_open_sessions_of_the_reset_branch(project: Project) -> None:
    _seed(project)
    project.branch("br-child")
    conn = project.connect(project.endpoint("br-child"))
    project.plane.reset_branch(project.id, "br-child", "br-main")
    with pytest.raises(psycopg.OperationalError):
        conn.execute("SELECT 1")
    conn.close()


def test_delete_branch_drops_its_data_and_refuses_connections(project: Project) -> None:
    _seed(project)
    project.branch("br-child")
    address = project.endpoint("br-child")
    server = project.plane.branch_server(project.id, "br-child")
    assert "neondb" in server_databases(server)

    project.plane.delete_branch(project.id, "br-child")
    project.plane.delete_branch(project.id, "br-child")  # already gone: no error (the API answers 204)

    with pytest.raises(psycopg.OperationalError):
        project.connect(address)
    assert _names(project, "br-main") == ["one", "two"]
    # Its server is emptied (back in the pool) or stopped.
    assert "neondb" not in server_databases(server)


def test_schema_only_branch_has_structure_but_no_rows(project: Project) -> None:
    _seed(project)
    project.branch("br-schema", schema_only=True)
    with project.connect(project.endpoint("br-schema")) as conn:
        assert scalar(conn, "SELECT count(*) FROM items") == 0
        conn.execute("INSERT INTO items VALUES (1, 'fresh')")  # constraints and ownership came along
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute("INSERT INTO items VALUES (1, 'dup')")


def test_every_database_of_the_parent_is_copied(project: Project) -> None:
    project.plane.create_database(project.id, "br-main", "analytics", "neondb_owner")
    with project.connect(project.endpoint("br-main"), database="analytics") as conn:
        conn.execute("CREATE TABLE facts AS SELECT 42 AS answer")
    project.branch("br-child")
    with project.connect(project.endpoint("br-child"), database="analytics") as conn:
        assert scalar(conn, "SELECT answer FROM facts") == 42


def test_a_detached_branch_keeps_its_data_until_attached_or_deleted(project: Project) -> None:
    _seed(project)
    project.branch("br-soft")
    address = project.endpoint("br-soft")
    with project.connect(address) as conn:
        physical = scalar(conn, "SELECT current_database()")
    server = project.plane.branch_server(project.id, "br-soft")
    project.plane.detach_branch(project.id, "br-soft")
    with pytest.raises(psycopg.OperationalError):  # unreachable: its compute went with it
        project.connect(address)
    assert kept_while_paused(server)  # a detached branch has no compute
    project.plane.attach_branch(project.id, "br-soft")
    assert _names(project, "br-soft") == ["one", "two"]

    project.plane.detach_branch(project.id, "br-soft")
    project.plane.delete_project(project.id)  # what reset does per project: detached data too
    assert physical not in server_databases(server)
