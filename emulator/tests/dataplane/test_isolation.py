"""No SQL on one branch reaches another branch's or project's data, roles, settings or sessions.

Each attack is one a new user tried against the shared cluster (issue 12): from project A's (or a
sibling branch's) session, against project B's database, role and sessions. The physical names
are visible in ``pg_database``/``pg_roles`` (a documented limit), so the attacks use them.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import psycopg
import pytest

from jambo_emulator.dataplane.postgres import PostgresDataPlane

from .support import Project, scalar

_other = itertools.count(1)


@pytest.fixture
def victim(plane: PostgresDataPlane) -> Iterator[Project]:
    """Project B: its own branch, database and owner role (same logical names as A's)."""
    number = next(_other)
    proj = Project(plane, f"victim-{number}", password="victim-secret", endpoint_prefix=f"ep-victim{number}-")
    plane.create_branch(proj.id, "br-main", None)
    plane.create_role(proj.id, "br-main", "neondb_owner", proj.password)
    plane.create_database(proj.id, "br-main", "neondb", "neondb_owner")
    with proj.connect(proj.endpoint("br-main")) as conn:
        conn.execute("CREATE TABLE secrets (v text); INSERT INTO secrets VALUES ('b-data')")
    yield proj
    plane.delete_project(proj.id)


def _names(project: Project) -> tuple[str, str]:
    """(physical database, physical role) of the project's main branch, as its session sees them."""
    with project.connect(project.endpoint("br-main")) as conn:
        return str(scalar(conn, "SELECT current_database()")), str(scalar(conn, "SELECT current_user"))


def _attack(project: Project, sql: str, branch: str = "br-main") -> psycopg.Error:
    with project.connect(project.endpoint(branch)) as conn, pytest.raises(psycopg.Error) as caught:
        conn.execute(sql)
    return caught.value


def test_alter_database_of_another_project_is_refused(project: Project, victim: Project) -> None:
    their_db, _ = _names(victim)
    error = _attack(project, f"ALTER DATABASE \"{their_db}\" SET work_mem = '64MB'")
    assert isinstance(error, psycopg.errors.InsufficientPrivilege)
    with victim.connect(victim.endpoint("br-main")) as conn:
        assert scalar(conn, "SHOW work_mem") == "4MB"


def test_alter_role_of_another_project_is_refused(project: Project, victim: Project) -> None:
    _, their_role = _names(victim)
    # The logical name is not a role at all: each branch has its own physical role.
    assert isinstance(
        _attack(project, "ALTER ROLE neondb_owner SET statement_timeout = '1ms'"),
        psycopg.errors.UndefinedObject,
    )
    error = _attack(project, f"ALTER ROLE \"{their_role}\" SET statement_timeout = '1ms'")
    assert isinstance(error, psycopg.errors.InsufficientPrivilege)
    with victim.connect(victim.endpoint("br-main")) as conn:
        assert scalar(conn, "SHOW statement_timeout") == "0"


def test_own_role_settings_stay_on_the_own_branch(project: Project, victim: Project) -> None:
    with project.connect(project.endpoint("br-main")) as conn:
        conn.execute("ALTER ROLE CURRENT_USER SET statement_timeout = '5s'")
    with project.connect(project.endpoint("br-main")) as conn:
        assert scalar(conn, "SHOW statement_timeout") == "5s"
    with victim.connect(victim.endpoint("br-main")) as conn:
        assert scalar(conn, "SHOW statement_timeout") == "0"


def test_pg_stat_activity_hides_other_projects_queries(project: Project, victim: Project) -> None:
    with victim.connect(victim.endpoint("br-main")) as busy:
        busy.execute("SELECT 'victim-marker' AS m")
        victim_pid = busy.info.backend_pid
        with project.connect(project.endpoint("br-main")) as conn:
            row = conn.execute(
                "SELECT query, client_addr FROM pg_stat_activity WHERE pid = %s", (victim_pid,)
            ).fetchone()
            assert row is not None
            assert "victim-marker" not in str(row[0])
            assert row[0] == "<insufficient privilege>"
            texts = [r[0] for r in conn.execute("SELECT query FROM pg_stat_activity")]
            assert not any("victim-marker" in str(t) for t in texts)


def test_pg_terminate_backend_of_another_project_is_refused(project: Project, victim: Project) -> None:
    with victim.connect(victim.endpoint("br-main")) as busy:
        victim_pid = busy.info.backend_pid
        error = _attack(project, f"SELECT pg_terminate_backend({victim_pid})")
        assert isinstance(error, psycopg.errors.InsufficientPrivilege)
        assert scalar(busy, "SELECT 1") == 1  # still alive


def test_drop_database_of_another_project_is_refused(project: Project, victim: Project) -> None:
    their_db, _ = _names(victim)
    error = _attack(project, f'DROP DATABASE "{their_db}" WITH (FORCE)')
    assert isinstance(error, psycopg.errors.InsufficientPrivilege)
    with victim.connect(victim.endpoint("br-main")) as conn:
        assert scalar(conn, "SELECT v FROM secrets") == "b-data"


def test_preview_branch_cannot_drop_or_alter_its_parent(project: Project) -> None:
    """Same project, same logical role: a migration on a child must not damage main."""
    main_db, main_role = _names(project)
    project.branch("br-preview")
    drop = _attack(project, f'DROP DATABASE "{main_db}" WITH (FORCE)', branch="br-preview")
    assert isinstance(drop, psycopg.errors.InsufficientPrivilege)
    alter = _attack(project, f"ALTER ROLE \"{main_role}\" SET search_path = 'nowhere'", branch="br-preview")
    assert isinstance(alter, psycopg.errors.InsufficientPrivilege)
    with project.connect(project.endpoint("br-preview")) as conn:
        assert scalar(conn, "SELECT current_user") != main_role
        assert scalar(conn, f"SELECT has_database_privilege('{main_db}', 'CONNECT')") is False


def test_other_projects_database_cannot_be_connected_to(project: Project, victim: Project) -> None:
    their_db, _ = _names(victim)
    with project.connect(project.endpoint("br-main")) as conn:
        assert scalar(conn, f"SELECT has_database_privilege('{their_db}', 'CONNECT')") is False
        assert (
            scalar(
                conn,
                "SELECT rolsuper OR rolcreaterole OR rolcreatedb FROM pg_roles WHERE rolname = current_user",
            )
            is False
        )
