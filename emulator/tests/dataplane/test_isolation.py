"""No SQL on one branch reaches another branch's or project's data, roles, settings or sessions.

Each attack is one a new user tried against the shared cluster (issue 12): from project A's (or a
sibling branch's) session, against project B's database, role and sessions. Every branch has its
own server where its names are the API's, so the attacks use the names both branches share
(``neondb``, ``neondb_owner``): on the own branch they may succeed; the other branch must not see
any effect.
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


def _attack(project: Project, sql: str, branch: str = "br-main", database: str = "neondb") -> psycopg.Error:
    with (
        project.connect(project.endpoint(branch), database=database) as conn,
        pytest.raises(psycopg.Error) as caught,
    ):
        conn.execute(sql)
    return caught.value


def _run(project: Project, sql: str, branch: str = "br-main", database: str = "neondb") -> None:
    with project.connect(project.endpoint(branch), database=database) as conn:
        conn.execute(sql)


def test_alter_database_of_the_same_name_changes_only_the_own(project: Project, victim: Project) -> None:
    _run(project, "ALTER DATABASE neondb SET work_mem = '64MB'")
    with project.connect(project.endpoint("br-main")) as conn:
        assert scalar(conn, "SHOW work_mem") == "64MB"  # it took effect where it ran
    with victim.connect(victim.endpoint("br-main")) as conn:
        assert scalar(conn, "SHOW work_mem") == "4MB"


def test_administrator_roles_cannot_be_altered(project: Project) -> None:
    for role in ("jambo_admin", "neon_superuser"):
        error = _attack(project, f"ALTER ROLE {role} SET statement_timeout = '1ms'")
        assert isinstance(error, psycopg.errors.InsufficientPrivilege), role


def test_own_role_settings_stay_on_the_own_branch(project: Project, victim: Project) -> None:
    with project.connect(project.endpoint("br-main")) as conn:
        conn.execute("ALTER ROLE CURRENT_USER SET statement_timeout = '5s'")
    with project.connect(project.endpoint("br-main")) as conn:
        assert scalar(conn, "SHOW statement_timeout") == "5s"
    with victim.connect(victim.endpoint("br-main")) as conn:
        assert scalar(conn, "SHOW statement_timeout") == "0"


def test_pg_stat_activity_shows_no_other_projects_sessions(project: Project, victim: Project) -> None:
    with victim.connect(victim.endpoint("br-main")) as busy:
        busy.execute("SELECT 'victim-marker' AS m")
        victim_pid = busy.info.backend_pid
        with project.connect(project.endpoint("br-main")) as conn:
            rows = conn.execute("SELECT pid, query FROM pg_stat_activity").fetchall()
            assert victim_pid not in [pid for pid, _ in rows]
            assert not any("victim-marker" in str(query) for _, query in rows)


def test_pg_terminate_backend_of_another_project_does_not_reach_it(project: Project, victim: Project) -> None:
    with victim.connect(victim.endpoint("br-main")) as busy:
        victim_pid = busy.info.backend_pid
        with project.connect(project.endpoint("br-main")) as conn:
            assert scalar(conn, f"SELECT pg_terminate_backend({victim_pid})") is False  # not its server's
        assert scalar(busy, "SELECT 1") == 1  # still alive


def test_dropping_the_database_of_the_same_name_drops_only_the_own(project: Project, victim: Project) -> None:
    project.plane.create_database(project.id, "br-main", "other", "neondb_owner")
    _run(project, "DROP DATABASE neondb WITH (FORCE)", database="other")  # the owner may, on its branch
    with victim.connect(victim.endpoint("br-main")) as conn:
        assert scalar(conn, "SELECT v FROM secrets") == "b-data"
    with pytest.raises(psycopg.OperationalError):
        project.connect(project.endpoint("br-main"))


def test_preview_branch_changes_do_not_reach_its_parent(project: Project) -> None:
    """Same project, same role and database names: a migration on a child must not touch main."""
    project.branch("br-preview")
    _run(project, "CREATE TABLE only_on_preview (x int)", branch="br-preview")
    _run(project, "ALTER ROLE neondb_owner SET search_path = 'nowhere'", branch="br-preview")
    with project.connect(project.endpoint("br-main")) as conn:
        assert scalar(conn, "SHOW search_path") == '"$user", public'
        assert scalar(conn, "SELECT to_regclass('only_on_preview')") is None


def test_roles_are_no_administrators_and_passwords_are_per_branch(project: Project, victim: Project) -> None:
    with project.connect(project.endpoint("br-main")) as conn:
        assert (
            scalar(
                conn,
                "SELECT rolsuper OR rolcreaterole OR rolcreatedb FROM pg_roles WHERE rolname = current_user",
            )
            is False
        )
    # The same role name on another project's endpoint: its own password does not open it.
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        project.connect(victim.endpoint("br-main"))
