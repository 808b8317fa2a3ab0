"""SQL on a branch, without a server: coordinates, URI -> Connection, laziness, masking."""

from __future__ import annotations

import json

import pytest
from airflow.providers.common.compat.sdk import redact

from airflow_provider_jambo.exceptions import JamboConfigError
from airflow_provider_jambo.hooks.branch_postgres import BranchTarget, JamboPostgresHook, connection_from_uri
from airflow_provider_jambo.operators.branch_sql_operator import JamboBranchSQLOperator

XCOM = {
    "project_id": "old-violet-32930710",
    "branch_id": "br-noisy-breeze-a5e59rrb",
    "branch_name": "preview-1",
    "parent_id": "br-main-1",
    "created": True,
    "endpoint_id": "ep-misty-sea-a5833nbi",
    "host": "ep-misty-sea-a5833nbi.us-east-2.aws.neon.tech",
    "pooler_host": "ep-misty-sea-a5833nbi-pooler.us-east-2.aws.neon.tech",
    "database": "neondb",
    "role": "neondb_owner",
    "expires_at": None,
}


def test_target_from_create_branch_xcom() -> None:
    target = BranchTarget.from_value(XCOM)
    assert target == BranchTarget(
        branch_id="br-noisy-breeze-a5e59rrb",
        database="neondb",
        role="neondb_owner",
        project_id="old-violet-32930710",
        endpoint_id="ep-misty-sea-a5833nbi",
        pooled=False,
    )


def test_overrides_win_and_json_strings_are_accepted() -> None:
    target = BranchTarget.from_value(json.dumps(XCOM), database="analytics", role="reader", pooled=True)
    assert (target.database, target.role, target.pooled) == ("analytics", "reader", True)
    assert BranchTarget.from_value(target) == target


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({**XCOM, "branch_id": "BR_bad"}, "branch_id"),
        ({k: v for k, v in XCOM.items() if k != "branch_id"}, "branch_id is missing"),
        ({**XCOM, "database": None}, "database"),
        ({**XCOM, "role": ""}, "role"),
        ({**XCOM, "endpoint_id": "ep x"}, "endpoint_id"),
        ({**XCOM, "password": "hunter2"}, "must not carry secrets"),
        ({**XCOM, "connection_uri": "postgresql://a:b@h/d"}, "must not carry secrets"),
        ("{{ ti.xcom_pull('create_branch') }}", "a mapping"),
        ("{'branch_id': 'br-1'}", "a mapping"),  # a Python repr, not JSON
        (42, "a mapping"),
    ],
)
def test_bad_coordinates_fail_clearly(value: object, message: str) -> None:
    with pytest.raises(JamboConfigError, match=message):
        BranchTarget.from_value(value)  # type: ignore[arg-type]


def test_secret_values_never_appear_in_errors() -> None:
    with pytest.raises(JamboConfigError) as excinfo:
        BranchTarget.from_value({**XCOM, "password": "s3cr3t-value"})
    assert "s3cr3t-value" not in str(excinfo.value)


def test_connection_from_uri_keeps_query_as_extras_and_masks_password() -> None:
    password = "npg_Zx9-unique-pw"
    uri = (
        f"postgresql://neondb_owner:{password}@ep-misty-sea-a5833nbi.us-east-2.aws.neon.tech:6543/neondb"
        "?sslmode=require&hostaddr=127.0.0.1"
    )
    conn = connection_from_uri(uri, conn_id="jambo_branch_x")
    assert conn.conn_type == "postgres"
    assert (conn.host, conn.port, conn.login, conn.schema) == (
        "ep-misty-sea-a5833nbi.us-east-2.aws.neon.tech",
        6543,
        "neondb_owner",
        "neondb",
    )
    assert conn.password == password
    libpq = {"sslmode": "require", "hostaddr": "127.0.0.1"}
    assert conn.extra_dejson == {**libpq, "sqlalchemy_query": libpq}
    assert password not in str(redact(f"connecting with {password}"))


def test_connection_from_uri_rejects_other_schemes_without_echoing() -> None:
    with pytest.raises(JamboConfigError, match="scheme") as excinfo:
        connection_from_uri("mysql://u:topsecret@h/db", conn_id="x")
    assert "topsecret" not in str(excinfo.value)


def test_hook_fetches_nothing_at_construction() -> None:
    # No Jambo connection exists in this test: constructing must not look one up.
    hook = JamboPostgresHook(branch=XCOM, jambo_conn_id="does_not_exist")
    assert hook.target.branch_id == "br-noisy-breeze-a5e59rrb"
    assert hook.get_conn_id() == "jambo_branch_br-noisy-breeze-a5e59rrb"
    assert repr(hook) == "JamboPostgresHook(branch_id='br-noisy-breeze-a5e59rrb', database='neondb')"


def test_operator_checks_literal_coordinates_at_parse_time() -> None:
    with pytest.raises(JamboConfigError, match="branch_id"):
        JamboBranchSQLOperator(task_id="q", branch={**XCOM, "branch_id": "nope!"}, sql="SELECT 1")
    # Templates inside are left for rendering time.
    JamboBranchSQLOperator(task_id="q", branch={**XCOM, "branch_id": "{{ params.b }}"}, sql="SELECT 1")


def test_operator_refuses_conn_id_and_templates_branch() -> None:
    with pytest.raises(JamboConfigError, match="conn_id is not allowed"):
        JamboBranchSQLOperator(task_id="q", branch=XCOM, sql="SELECT 1", conn_id="postgres_default")
    op = JamboBranchSQLOperator(task_id="q", branch=XCOM, sql="SELECT 1", database="other")
    assert {"branch", "jambo_conn_id", "sql", "database"} <= set(op.template_fields)
    hook = op.get_db_hook()
    assert isinstance(hook, JamboPostgresHook)
    assert hook.target.database == "other"
