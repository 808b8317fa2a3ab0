"""Real DDL from a branch, and the diff compare_schema reports."""

from __future__ import annotations

from jambo_emulator.dataplane import diff_schemas
from jambo_emulator.dataplane.schema import clean_dump

from .support import Project


def test_schema_dump_is_real_ddl_with_logical_names(project: Project) -> None:
    with project.connect(project.endpoint("br-main")) as conn:
        conn.execute("CREATE TABLE orders (id bigint PRIMARY KEY, total numeric(10,2) NOT NULL)")
        conn.execute("INSERT INTO orders VALUES (1, 9.99)")
    dump = project.plane.schema_dump(project.id, "br-main", "neondb")
    assert dump is not None
    assert "CREATE TABLE public.orders (" in dump
    assert "total numeric(10,2) NOT NULL" in dump
    assert "ALTER TABLE public.orders OWNER TO neondb_owner;" in dump
    assert "9.99" not in dump  # schema only
    assert "~" not in dump  # no internal database name leaks
    assert "\\restrict" not in dump  # pg_dump's per-run random key would make every diff noisy


def test_schema_dump_of_unknown_branch_or_database_is_none(project: Project) -> None:
    assert project.plane.schema_dump(project.id, "br-nope", "neondb") is None
    assert project.plane.schema_dump(project.id, "br-main", "nope") is None


def test_diff_shows_what_the_child_changed(project: Project) -> None:
    with project.connect(project.endpoint("br-main")) as conn:
        conn.execute("CREATE TABLE users (id int PRIMARY KEY)")
    project.branch("br-child")
    with project.connect(project.endpoint("br-child")) as conn:
        conn.execute("ALTER TABLE users ADD COLUMN email text")
        conn.execute("CREATE INDEX users_email ON users (email)")

    base = project.plane.schema_dump(project.id, "br-main", "neondb")
    child = project.plane.schema_dump(project.id, "br-child", "neondb")
    assert base is not None
    assert child is not None
    diff = diff_schemas(base, child, "br-main", "br-child")
    assert diff.startswith("--- br-main\n+++ br-child\n")
    added = [line for line in diff.splitlines() if line.startswith("+") and not line.startswith("+++")]
    assert "+    id integer NOT NULL," in added
    assert "+    email text" in added
    assert any("CREATE INDEX users_email ON public.users USING btree (email);" in line for line in added)
    assert diff_schemas(base, base) == ""


def test_clean_dump_maps_quoted_and_bare_physical_names() -> None:
    text = '\\restrict abc123\nALTER DATABASE "neondb~7" SET x = 1;\n-- neondb~7\n\\unrestrict abc123\n'
    # As pg_dump prints the logical name itself: bare when it needs no quotes.
    assert clean_dump(text, {"neondb~7": "neondb"}) == "ALTER DATABASE neondb SET x = 1;\n-- neondb\n"
