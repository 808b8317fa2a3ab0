"""A what-if on a copy of production in one task: ``@task.jambo_branch``.

    refund_impact (branch main -> run the function on the copy -> delete the copy)

``@task.jambo_branch`` creates a branch of ``main`` when the task starts, runs the function with it,
and deletes the branch when the function returns or fails (``keep_branch=True`` keeps it). The
function declares what it wants: ``branch_hook`` (a ``JamboPostgresHook`` on the branch, connected
when first used) and ``branch`` (the branch's coordinates, never a password). Its return value is
the task's XCom. Here it refunds the largest order on the copy and reports the revenue before and
after; ``main`` never sees the refund.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.providers.common.compat.sdk import DAG, task

with DAG(
    dag_id="example_jambo_branch_task",
    description="Refund the largest order on a copy of main and report the revenue impact.",
    schedule=None,
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    tags=["jambo", "example"],
) as dag:

    @task.jambo_branch(parent="main", ttl=timedelta(hours=1))
    def refund_impact(branch_hook: Any, branch: dict[str, Any]) -> dict[str, Any]:
        """Revenue before and after refunding the largest order, computed on the branch only."""
        revenue = "SELECT coalesce(sum(amount), 0)::float FROM orders"
        before = branch_hook.get_first(revenue)[0]
        branch_hook.run("DELETE FROM orders WHERE id = (SELECT id FROM orders ORDER BY amount DESC LIMIT 1)")
        after = branch_hook.get_first(revenue)[0]
        return {"branch": branch["branch_name"], "revenue_before": before, "revenue_after": after}

    refund_impact()
