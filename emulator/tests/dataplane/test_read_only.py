"""A read-only endpoint cannot be made to write, however the session asks.

Its sessions log in as the branch's read-only physical role (SELECT on all data, nothing else);
``default_transaction_read_only`` is only a first line: turning it off changes nothing.
"""

from __future__ import annotations

import psycopg
import pytest

from .support import Project, scalar

ATTEMPTS = {
    "plain insert": "INSERT INTO items VALUES (99)",
    "begin read write": "BEGIN READ WRITE; INSERT INTO items VALUES (99); COMMIT",
    "begin read write, create table": "BEGIN READ WRITE; CREATE TABLE intruder (x int); COMMIT",
    "default off": "SET default_transaction_read_only = off; INSERT INTO items VALUES (99)",
    "transaction_read_only off": "SET transaction_read_only = off; UPDATE items SET id = id + 1",
    "session characteristics": ("SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE; DELETE FROM items"),
    "temp table": "SET default_transaction_read_only = off; CREATE TEMP TABLE t AS SELECT 1",
    "sequence": "SET default_transaction_read_only = off; SELECT nextval('counter')",
    "large object": "SET default_transaction_read_only = off; SELECT lo_create(0)",
    "truncate": "SET default_transaction_read_only = off; TRUNCATE items",
    "drop table": "SET default_transaction_read_only = off; DROP TABLE items",
}


@pytest.fixture
def read_only(project: Project) -> Project:
    with project.connect(project.endpoint("br-main")) as conn:
        conn.execute("CREATE TABLE items (id int); INSERT INTO items VALUES (1); CREATE SEQUENCE counter")
    project.endpoint("br-main", "ep-ro", read_only=True)
    return project


def _ro(project: Project) -> psycopg.Connection:
    return project.connect(project.endpoint("br-main", "ep-ro", read_only=True))


@pytest.mark.parametrize("sql", ATTEMPTS.values(), ids=ATTEMPTS.keys())
def test_read_only_endpoint_refuses_the_write(read_only: Project, sql: str) -> None:
    refused = (psycopg.errors.ReadOnlySqlTransaction, psycopg.errors.InsufficientPrivilege)
    with _ro(read_only) as conn, pytest.raises(refused):
        conn.execute(sql)
    with read_only.connect(read_only.endpoint("br-main")) as conn:
        assert scalar(conn, "SELECT array_agg(id) FROM items") == [1]
        assert scalar(conn, "SELECT count(*) FROM pg_class WHERE relname = 'intruder'") == 0
        assert scalar(conn, "SELECT last_value FROM counter") == 1
        assert scalar(conn, "SELECT count(*) FROM pg_largeobject_metadata") == 0


def test_read_only_role_settings_and_roles_do_not_open_a_way(read_only: Project) -> None:
    with _ro(read_only) as conn:
        conn.execute("SET default_transaction_read_only = off")
        conn.execute("ALTER ROLE CURRENT_USER SET default_transaction_read_only = off")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SET ROLE neon_superuser")
    with _ro(read_only) as conn:  # a new session with the changed role default
        assert scalar(conn, "SHOW default_transaction_read_only") == "on"  # the proxy sets it too
        conn.execute("SET default_transaction_read_only = off")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("INSERT INTO items VALUES (99)")
        assert scalar(conn, "SELECT count(*) FROM items") == 1  # reads work


def test_read_only_sessions_see_the_branch_role_name(read_only: Project) -> None:
    with _ro(read_only) as conn:
        assert str(scalar(conn, "SELECT current_user")).endswith("~ro")
        assert scalar(conn, "SELECT split_part(current_user, '~', 1)") == "neondb_owner"
