"""Create a branch, write a table on it with SQL, delete it as a teardown: the three tasks of the
OpenLineage report (tests/dags/test_lineage.py)."""

from __future__ import annotations

from datetime import datetime

from airflow.providers.common.compat.sdk import DAG

from airflow_provider_jambo.operators.branch_operators import (
    JamboCreateBranchOperator,
    JamboDeleteBranchOperator,
)
from airflow_provider_jambo.operators.branch_sql_operator import JamboBranchSQLOperator
from airflow_provider_jambo.operators.run_names import run_branch_name

with DAG(
    dag_id="jambo_lineage_sql",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    user_defined_macros={"run_branch_name": run_branch_name},
    tags=["jambo"],
) as dag:
    create = JamboCreateBranchOperator(
        task_id="create", branch_name="{{ run_branch_name(run_id, 'lineage-') }}"
    )
    sql = JamboBranchSQLOperator(
        task_id="sql",
        branch=create.output,
        sql="create table t2 as select * from orders where amount > 10",
    )
    delete = JamboDeleteBranchOperator(task_id="delete", branch=create.output)
    create >> sql >> delete.as_teardown(setups=create)
