"""Anonymized preview environment: the preview pipeline on a copy of production without its
personal data.

    create_anonymized_branch (setup) -> migrate -> transform -> check_anonymized_results
                                                      delete_branch (teardown)

* ``create_anonymized_branch`` copies ``main`` into ``anon-preview-<run id>`` and masks
  ``customers.name`` (``anon.fake_first_name()``) and ``customers.email`` (``anon.fake_email()``)
  before the task returns: no later task ever sees the personal data. If the masking fails, the
  branch is deleted and the run fails there.
* ``migrate`` and ``transform`` are the preview pipeline's own SQL (``sql/preview/*.sql``).
* ``check_anonymized_results`` compares the branch with its parent: no original email or name is
  left on the branch, every customer is still there with a well-formed email, and the pipeline's
  result (revenue per customer) is exactly what production's orders give. Each check counts
  offending rows; any non-zero count fails the run (no retries) naming it.
* ``delete_branch`` is a teardown: it runs whatever happened before.

The names are checked as a set: a fake name that happens to equal some original name counts as a
leak. The emulator's fake names are disjoint from the demo data; with the real service's larger
name list a chance collision is possible on big tables (mask names with ``anon.partial`` or a
constant if the check must never flake).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from airflow.providers.common.compat.sdk import DAG, AirflowFailException, Param, task

from airflow_provider_jambo.operators.anonymized_branch_operator import JamboCreateAnonymizedBranchOperator
from airflow_provider_jambo.operators.branch_operators import JamboDeleteBranchOperator
from airflow_provider_jambo.operators.branch_sql_operator import JamboBranchSQLOperator
from airflow_provider_jambo.operators.run_names import run_branch_name

log = logging.getLogger(__name__)

SQL_DIR = Path(__file__).parent / "sql"

MASKING_RULES = [
    {
        "database_name": "neondb",
        "schema_name": "public",
        "table_name": "customers",
        "column_name": column,
        "masking_function": function,
    }
    for column, function in (("name", "anon.fake_first_name()"), ("email", "anon.fake_email()"))
]


BRANCH_NAME = "{{ run_branch_name(run_id, 'anon-preview-') }}"


def anonymization_findings(
    original: list[tuple[int, str, str]],
    masked: list[tuple[int, str, str]],
    revenue: dict[int, float],
    expected_revenue: dict[int, float],
) -> dict[str, int]:
    """Offending-row counts per check (pure, so the rules are testable without a database)."""
    emails = {email for _, _, email in original}
    names = {name for _, name, _ in original}
    return {
        "no original email is left": sum(1 for _, _, email in masked if email in emails),
        "no original name is left": sum(1 for _, name, _ in masked if name in names),
        "every customer is still there": len({i for i, _, _ in original} ^ {i for i, _, _ in masked}),
        "masked emails are still emails": sum(1 for _, _, email in masked if "@" not in email),
        "revenue matches production's orders": len(
            {k for k in revenue.keys() | expected_revenue.keys() if revenue.get(k) != expected_revenue.get(k)}
        ),
    }


with DAG(
    dag_id="example_jambo_anonymized_preview",
    description="Branch main with names and emails masked, run the preview pipeline, check, delete.",
    schedule=None,
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    template_searchpath=[str(SQL_DIR)],
    user_defined_macros={"run_branch_name": run_branch_name},
    params={
        "parent": Param("main", type="string", description="Branch to copy (id or exact name)."),
        # transform.sql's switch (the preview example's bad-data demo); off here.
        "inject_bad_data": Param(False, type="boolean", description="Insert a negative order."),
    },
    tags=["jambo", "example"],
) as dag:
    create_branch = JamboCreateAnonymizedBranchOperator(
        task_id="create_anonymized_branch",
        branch_name=BRANCH_NAME,
        parent="{{ params.parent }}",
        masking_rules=MASKING_RULES,
        ttl=timedelta(hours=6),
        suspend_timeout_seconds=300,
    )

    migrate = JamboBranchSQLOperator(
        task_id="migrate",
        branch=create_branch.output,
        sql="preview/migrate.sql",
        split_statements=True,
        do_xcom_push=False,
    )

    transform = JamboBranchSQLOperator(
        task_id="transform",
        branch=create_branch.output,
        sql="preview/transform.sql",
        split_statements=True,
        do_xcom_push=False,
    )

    @task(multiple_outputs=False)
    def check_anonymized_results(branch: dict[str, Any]) -> dict[str, int]:
        """Compare the branch with its parent; fail (no retries) naming each check that failed."""
        from airflow_provider_jambo.hooks.branch_postgres import JamboPostgresHook

        customers = "SELECT id, name, email FROM customers ORDER BY id"
        preview = JamboPostgresHook(branch=branch)
        # The parent, read only: same database and role, its own compute.
        production = JamboPostgresHook(
            branch={
                "project_id": branch["project_id"],
                "branch_id": branch["parent_id"],
                "database": branch["database"],
                "role": branch["role"],
            }
        )
        paid = "SELECT customer_id, sum(amount) FROM orders GROUP BY customer_id"
        findings = anonymization_findings(
            original=[tuple(row) for row in production.get_records(customers)],
            masked=[tuple(row) for row in preview.get_records(customers)],
            revenue={
                int(k): float(v)
                for k, v in preview.get_records("SELECT customer_id, revenue FROM customer_revenue")
            },
            expected_revenue={int(k): float(v) for k, v in production.get_records(paid)},
        )
        for name, count in findings.items():
            log.info("check %-40s %s", name, "ok" if not count else f"FAILED ({count} rows)")
        failed = {name: count for name, count in findings.items() if count}
        if failed:
            details = "; ".join(f"{name}: {count} offending row(s)" for name, count in failed.items())
            raise AirflowFailException(
                f"anonymization checks failed on branch {branch['branch_id']}: {details}"
            )
        return findings

    delete_branch = JamboDeleteBranchOperator(
        task_id="delete_branch",
        # By exact name, not the XCom: the teardown works even if the create died before pushing it.
        branch=BRANCH_NAME,
    )

    checks = check_anonymized_results(create_branch.output)
    migrate >> transform >> checks
    checks >> delete_branch.as_teardown(setups=create_branch)
