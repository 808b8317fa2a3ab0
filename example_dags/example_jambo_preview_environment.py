"""Preview environment: run a change's SQL on a throw-away copy of production, check it, diff it.

    create_branch (setup) -> migrate -> transform -> check_data_quality -> schema_diff
                                                                   delete_branch (teardown)

* ``create_branch`` copies ``main`` (data and schema) into ``preview-<run id>`` with a 6-hour TTL as a
  backstop; its XCom holds ids and names only, never a password.
* ``migrate`` and ``transform`` run ``sql/preview/*.sql`` on the branch with
  ``JamboBranchSQLOperator`` (an ``SQLExecuteQueryOperator`` whose connection is built at run
  time from the API); ``transform`` returns the number of rows it wrote.
* ``check_data_quality`` uses ``JamboPostgresHook`` in a plain ``@task`` and fails the run
  (without retries) naming every check that found bad rows.
* ``schema_diff`` logs and returns the branch's schema diff against its parent.
* ``delete_branch`` is a teardown: it runs whatever happened before, so no branch leaks.

``jambo_branch_group`` adds ``create_branch`` and ``delete_branch`` around the steps declared in it
and wires them as setup and teardown; the DAG file is the steps and nothing else.

Trigger with ``{"inject_bad_data": true}`` to see a check fail and the branch still be deleted:
``airflow dags test example_jambo_preview_environment --conf '{"inject_bad_data": true}'``.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from airflow.providers.common.compat.sdk import DAG, AirflowFailException, Param, task

from airflow_provider_jambo.decorators import jambo_branch_group
from airflow_provider_jambo.operators.branch_sql_operator import JamboBranchSQLOperator
from airflow_provider_jambo.operators.run_names import run_branch_name

log = logging.getLogger(__name__)

SQL_DIR = Path(__file__).parent / "sql"

#: Each check counts offending rows; any non-zero count fails the run.
DATA_QUALITY_CHECKS = {
    "customer_revenue is not empty": "SELECT (count(*) = 0)::int FROM customer_revenue",
    "no order has a non-positive amount": "SELECT count(*) FROM orders WHERE amount <= 0",
    "no customer has negative revenue": "SELECT count(*) FROM customer_revenue WHERE revenue < 0",
    "revenue matches paid orders": """
        SELECT count(*) FROM customer_revenue AS r
        WHERE r.revenue <> (SELECT sum(o.amount) FROM orders AS o
                            WHERE o.customer_id = r.customer_id AND o.status = 'paid')
    """,
}


def first_value(cursor: Any) -> Any:
    """SQL handler: the first column of the first row, or None for statements without rows."""
    if cursor.description is None:
        return None
    row = cursor.fetchone()
    return row[0] if row else None


@task(multiple_outputs=False)
def check_data_quality(branch: dict[str, Any]) -> dict[str, int]:
    """Run every check; fail (no retries) naming each one that found offending rows."""
    from airflow_provider_jambo.hooks.branch_postgres import JamboPostgresHook

    hook = JamboPostgresHook(branch=branch)
    results: dict[str, int] = {}
    for name, sql in DATA_QUALITY_CHECKS.items():
        row = hook.get_first(sql)
        results[name] = int(row[0]) if row else 0
        log.info("check %-40s %s", name, "ok" if not results[name] else f"FAILED ({results[name]} rows)")
    failed = {name: count for name, count in results.items() if count}
    if failed:
        details = "; ".join(f"{name}: {count} offending row(s)" for name, count in failed.items())
        raise AirflowFailException(f"data-quality checks failed on branch {branch['branch_id']}: {details}")
    return results


@task
def schema_diff(branch: dict[str, Any]) -> str:
    """The branch's schema against its parent's, as a unified diff (logged and returned)."""
    from airflow_provider_jambo.hooks.jambo import JamboHook

    diff = JamboHook().branches.compare_schema(
        branch["branch_id"], database=branch["database"], project_id=branch["project_id"]
    )
    log.info("Schema diff of %s against its parent:\n%s", branch["branch_name"], diff or "(no changes)")
    return diff


#: From the run id (every run has one; a manual run has no logical date, so no ts/ds).
BRANCH_NAME = "{{ run_branch_name(run_id, 'preview-') }}"

with (
    DAG(
        dag_id="example_jambo_preview_environment",
        description="Branch main, migrate and transform on it, check the data, diff the schema, delete.",
        schedule=None,
        start_date=datetime(2026, 1, 1, tzinfo=UTC),
        catchup=False,
        template_searchpath=[str(SQL_DIR)],
        user_defined_macros={"run_branch_name": run_branch_name},
        params={
            "parent": Param("main", type="string", description="Branch to copy (id or exact name)."),
            "inject_bad_data": Param(
                False,
                type="boolean",
                description="Insert a negative order on the branch so the data-quality check fails.",
            ),
        },
        tags=["jambo", "example"],
    ) as dag,
    # One group: create_branch (setup) before the steps declared inside, delete_branch (teardown)
    # after them. prefix_group_id=False keeps the task ids as they are (no "preview." prefix).
    jambo_branch_group(
        "preview",
        branch_name=BRANCH_NAME,
        parent="{{ params.parent }}",
        ttl=timedelta(hours=6),
        suspend_timeout_seconds=300,
        prefix_group_id=False,
    ) as preview,
):
    migrate = JamboBranchSQLOperator(
        task_id="migrate",
        branch=preview.branch,
        sql="preview/migrate.sql",
        split_statements=True,
        do_xcom_push=False,
    )

    transform = JamboBranchSQLOperator(
        task_id="transform",
        branch=preview.branch,
        sql="preview/transform.sql",
        split_statements=True,
        return_last=True,
        # XCom: the number the last statement selects (rows written), as a plain int.
        handler=first_value,
    )

    migrate >> transform >> check_data_quality(preview.branch) >> schema_diff(preview.branch)
