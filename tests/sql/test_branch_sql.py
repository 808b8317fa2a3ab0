"""SQL on a branch against the emulator with its data plane (real PostgreSQL behind the branches).

The branch comes from ``JamboCreateBranchOperator`` so the coordinates are exactly its XCom value.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from airflow.providers.common.compat.sdk import AirflowNotFoundException, redact

from airflow_provider_jambo.hooks.branch_postgres import JamboPostgresHook, get_branch_connection
from airflow_provider_jambo.hooks.jambo import JamboHook
from airflow_provider_jambo.operators.branch_operators import JamboCreateBranchOperator
from airflow_provider_jambo.operators.branch_sql_operator import JamboBranchSQLOperator
from jambo_emulator import JamboEmulator

pytestmark = pytest.mark.postgres


class _TI:
    dag_id, run_id, task_id, try_number, map_index = "sql_tests", "manual__1", "create_branch", 1, -1

    def __init__(self) -> None:
        self.pushed: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.pushed[key] = json.loads(json.dumps(value))  # what XCom would store


def context() -> dict[str, Any]:
    ti = _TI()
    return {"ti": ti, "task_instance": ti, "run_id": ti.run_id}


@pytest.fixture(scope="module")
def emulator() -> Iterator[JamboEmulator]:
    with JamboEmulator(api_key="sql-test-key", operation_duration=0.0, data_plane="auto") as emu:
        if not emu.ctx.data_plane.enabled:
            pytest.skip("PostgreSQL server binaries not found: the emulator's data plane is off")
        yield emu


@pytest.fixture
def main_uri(emulator: JamboEmulator, monkeypatch: pytest.MonkeyPatch) -> str:
    body = emulator.create_project(name="sql")
    project_id = body["id"] if "id" in body else body["project"]["id"]
    monkeypatch.setenv(
        "AIRFLOW_CONN_JAMBO_DEFAULT",
        json.dumps(
            {
                "conn_type": "jambo",
                "host": emulator.base_url,
                "password": emulator.api_key,
                "extra": {"project_id": project_id},
            }
        ),
    )
    hook = JamboHook()
    operations = [op["id"] for op in body.get("operations", [])]
    hook.operations.wait(operations, project_id=project_id, timeout=60).raise_for_status()
    main = hook.branches.get_default(project_id)
    uri = hook.branches.connection_uri(branch_id=main.id, database="neondb", role="neondb_owner")
    with psycopg.connect(uri, connect_timeout=10) as conn:
        conn.execute("CREATE TABLE items (id int PRIMARY KEY, label text NOT NULL)")
        conn.execute("INSERT INTO items VALUES (1, 'one'), (2, 'two')")
    return uri


def create_branch(name: str) -> dict[str, Any]:
    result = JamboCreateBranchOperator(task_id="create_branch", branch_name=name).execute(context())
    assert result is not None
    return json.loads(json.dumps(result))


def test_hook_reads_the_parents_data_and_writes_only_the_branch(main_uri: str) -> None:
    branch = create_branch("sql-hook")
    hook = JamboPostgresHook(branch=branch)
    assert hook.get_records("SELECT id, label FROM items ORDER BY id") == [(1, "one"), (2, "two")]
    hook.run("INSERT INTO items VALUES (3, 'branch only')")
    assert hook.get_first("SELECT count(*) FROM items") == (3,)
    with psycopg.connect(main_uri, connect_timeout=10) as conn:
        assert conn.execute("SELECT count(*) FROM items").fetchone() == (2,)
    # The raw psycopg connection is the branch's too.
    with hook.get_conn() as conn, conn.cursor() as cur:
        cur.execute("SELECT split_part(current_user, '~', 1), count(*) FROM items")
        assert cur.fetchone() == ("neondb_owner", 3)


def test_sqlalchemy_engine_reaches_the_branch(main_uri: str) -> None:
    """get_uri()/get_sqlalchemy_engine() (pandas, SQLAlchemy users) carry hostaddr and sslmode too."""
    branch = create_branch("sql-alchemy")
    hook = JamboPostgresHook(branch=branch)
    hook.run("INSERT INTO items VALUES (4, 'via sqlalchemy')")
    assert "hostaddr=" in hook.get_uri()
    assert "sslmode=require" in hook.get_uri()
    engine = hook.get_sqlalchemy_engine()
    try:
        with engine.connect() as conn:
            rows = conn.exec_driver_sql(
                "SELECT count(*), split_part(current_user, '~', 1) FROM items"
            ).fetchall()
    finally:
        engine.dispose()
    assert [tuple(row) for row in rows] == [(3, "neondb_owner")]


def test_operator_runs_templated_sql_files_and_returns_rows(main_uri: str, tmp_path: Any) -> None:
    branch = create_branch("sql-operator")
    op = JamboBranchSQLOperator(
        task_id="q",
        branch=branch,
        sql="UPDATE items SET label = upper(label); SELECT label FROM items ORDER BY id",
        split_statements=True,
        return_last=True,
    )
    assert [tuple(row) for row in op.execute(context())] == [("ONE",), ("TWO",)]
    with psycopg.connect(main_uri, connect_timeout=10) as conn:
        assert conn.execute("SELECT label FROM items ORDER BY id").fetchall() == [("one",), ("two",)]


def test_pooled_and_other_role_connections(main_uri: str) -> None:
    branch = create_branch("sql-pooled")
    hook = JamboHook()
    created = hook.roles.create(branch["branch_id"], "reader")
    hook.operations.wait([op.id for op in created.operations], timeout=60).raise_for_status()
    pooled = JamboPostgresHook(branch=branch, pooled=True)
    assert pooled.connection.host is not None
    assert "-pooler" in pooled.connection.host
    assert pooled.get_first("SELECT count(*) FROM items") == (2,)
    reader = JamboPostgresHook(branch=branch, role="reader")
    assert reader.get_first("SELECT split_part(current_user, '~', 1)") == ("reader",)


def test_password_is_masked_and_never_logged(main_uri: str, caplog: pytest.LogCaptureFixture) -> None:
    branch = create_branch("sql-secrets")
    caplog.set_level(logging.DEBUG)
    conn = get_branch_connection(branch)
    assert conn.password
    assert conn.password not in str(redact(f"password={conn.password}"))
    assert json.dumps(branch).find(conn.password) == -1
    JamboBranchSQLOperator(task_id="q", branch=branch, sql="SELECT 1").execute(context())
    assert conn.password not in caplog.text
    assert "sql-test-key" not in caplog.text


def _uri_requests(emulator: JamboEmulator) -> int:
    return sum(1 for r in emulator.requests() if r["path"].endswith("/connection_uri"))


def test_the_hook_answers_lookups_of_its_own_conn_id_from_the_connection_it_built(
    emulator: JamboEmulator, main_uri: str
) -> None:
    """OpenLineage (and SQLExecuteQueryOperator's lineage) asks ``hook.get_connection(conn_id)`` for
    the hook's in-memory id, which no secrets backend knows: the hook answers from itself."""
    branch = create_branch("sql-own-id")
    hook = JamboPostgresHook(branch=branch)
    emulator.clear_requests()
    first = hook.get_connection(hook.postgres_conn_id)
    assert hook.connection_resolved
    again = hook.get_connection(hook.postgres_conn_id)
    assert again is first
    assert _uri_requests(emulator) == 1  # built once, from the API
    assert first.host == branch["host"]
    # Another id is still a lookup (here one that does not exist).
    with pytest.raises(AirflowNotFoundException, match="some_other_conn"):
        hook.get_connection("some_other_conn")


def test_sql_lineage_before_the_task_connects_asks_nothing_and_names_the_sql(
    emulator: JamboEmulator, main_uri: str
) -> None:
    pytest.importorskip("airflow.providers.openlineage")
    branch = create_branch("sql-lineage")
    op = JamboBranchSQLOperator(task_id="q", branch=branch, sql="CREATE TABLE t2 AS SELECT * FROM items")
    emulator.clear_requests()
    start = op.get_openlineage_facets_on_start()
    assert start is not None
    assert emulator.requests() == []  # no API call (and so no connection lookup) for START
    assert not op.get_db_hook().connection_resolved
    assert "t2" in start.job_facets["sql"].query.lower()
    assert (start.inputs, start.outputs) == ([], [])

    op.execute(context())
    complete = op.get_openlineage_facets_on_complete(None)
    assert complete is not None
    namespace = f"postgres://{branch['host']}"
    assert [(d.namespace.startswith(namespace), d.name) for d in complete.outputs] == [
        (True, "neondb.public.t2")
    ]
    assert [(d.namespace.startswith(namespace), d.name) for d in complete.inputs] == [
        (True, "neondb.public.items")
    ]


def test_jambo_branch_task_hands_the_function_a_hook_on_its_own_branch(main_uri: str) -> None:
    from datetime import datetime

    from airflow.providers.common.compat.sdk import DAG

    from airflow_provider_jambo.decorators import jambo_branch_task

    @jambo_branch_task(branch_name="sql-decorated", poll_interval=0.05)
    def rewrite(branch_hook: JamboPostgresHook) -> list[Any]:
        branch_hook.run("UPDATE items SET label = upper(label)")
        return [list(row) for row in branch_hook.get_records("SELECT id, label FROM items ORDER BY id")]

    with DAG(dag_id="sql_decorated", schedule=None, start_date=datetime(2026, 1, 1)):
        op = rewrite().operator
    assert op.execute(context()) == [[1, "ONE"], [2, "TWO"]]
    # The change lived on the branch only, and the branch is gone.
    with psycopg.connect(main_uri, connect_timeout=10) as conn:
        assert conn.execute("SELECT label FROM items ORDER BY id").fetchall() == [("one",), ("two",)]
    assert "sql-decorated" not in [b.name for b in JamboHook().branches.list()]
