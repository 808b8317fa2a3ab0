"""SQL on a branch: the password fetched at run time stays out of logs (psycopg and the SQL hooks
at DEBUG), output, XCom, rendered fields, reprs and the errors of failed queries and connections."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from jambo_support import make_context
from security_support import LeakWatch, connection_json, uri_password

from airflow_provider_jambo.hooks.branch_postgres import JamboPostgresHook, get_branch_connection
from airflow_provider_jambo.hooks.jambo import JamboHook
from airflow_provider_jambo.operators.branch_operators import JamboCreateBranchOperator
from airflow_provider_jambo.operators.branch_sql_operator import JamboBranchSQLOperator
from jambo_emulator import JamboEmulator

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def pg_emulator() -> Iterator[JamboEmulator]:
    with JamboEmulator(api_key="security-sql-key-2b7e", operation_duration=0.0, data_plane="auto") as emu:
        if not emu.ctx.data_plane.enabled:
            pytest.skip("PostgreSQL server binaries not found: the emulator's data plane is off")
        yield emu


@pytest.fixture
def sql_watch(
    pg_emulator: JamboEmulator,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[LeakWatch]:
    body = pg_emulator.create_project(name="security-sql")
    project_id = body["project"]["id"]
    monkeypatch.setenv("AIRFLOW_CONN_JAMBO_DEFAULT", connection_json(pg_emulator, project_id))
    with JamboHook() as hook:
        ops = [op["id"] for op in body.get("operations", [])]
        hook.operations.wait(ops, project_id=project_id, timeout=60).raise_for_status()
    watch = LeakWatch(pg_emulator, caplog, capfd)
    watch.start()
    yield watch
    watch.stop()


def test_sql_on_a_branch_keeps_the_password_to_itself(sql_watch: LeakWatch) -> None:
    context = make_context("create_branch")
    branch: dict[str, Any] = JamboCreateBranchOperator(
        task_id="create_branch", branch_name="sec-sql"
    ).execute(context)
    branch = json.loads(json.dumps(branch))  # as a downstream task gets it from XCom

    connection = get_branch_connection(branch)
    assert connection.password
    sql_watch.remember(connection.password)
    with JamboHook() as hook:
        uri = hook.branches.connection_uri(
            branch_id=branch["branch_id"], database="neondb", role="neondb_owner"
        )
    assert uri_password(uri) == connection.password
    sql_watch.remember(uri)

    query = JamboBranchSQLOperator(
        task_id="query",
        branch=branch,
        sql="SELECT split_part(current_user, '~', 1), 1 AS one",
        show_return_value_in_logs=True,
    )
    query_context = make_context("query")
    query.render_template_fields(query_context)
    sql_watch.see("rendered fields", {name: getattr(query, name) for name in query.template_fields})
    rows = query.execute(query_context)
    assert rows == [("neondb_owner", 1)]
    sql_watch.see("query result", rows, query_context["ti"].pushed, query, query.get_db_hook())

    pg_hook = JamboPostgresHook(branch=branch)
    assert pg_hook.get_first("SELECT 2") == (2,)
    with pytest.raises(psycopg.errors.SyntaxError) as bad_sql:
        pg_hook.run("SELEC broken")
    sql_watch.see("hook", pg_hook, bad_sql.value)

    # The endpoint suspended: the connection is refused, and psycopg's error names no password.
    with JamboHook() as hook:
        suspended = hook.computes.suspend(branch["endpoint_id"])
        hook.operations.wait([op.id for op in suspended.operations], timeout=60).raise_for_status()
    with pytest.raises(psycopg.OperationalError) as refused:
        JamboPostgresHook(branch=branch).get_first("SELECT 1")
    sql_watch.see("connection refused", refused.value)

    sql_watch.assert_clean(expect=("Running statement: SELECT split_part(current_user",), min_passwords=1)
