"""Ephemeral branch as setup/teardown: create a branch, work on it, delete it — even when the work fails.

The create task is the *setup* and the delete task its *teardown*: Airflow runs the teardown once
the work is done, whether the work succeeded or failed, and the run's state still reports the
work's failure. A teardown does not run when its setup failed, so the create task cleans up after
itself: if anything fails after it created the branch (a failed or timed-out wait, a trigger
error), it deletes the branch before failing. A TTL is the backstop for what no task can clean up
(a worker killed with SIGKILL).

Trigger with ``{"fail_work": true}`` to see the teardown run after a failed work task.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from airflow.providers.common.compat.sdk import DAG, Param, task

from airflow_provider_jambo.operators.branch_operators import (
    JamboCreateBranchOperator,
    JamboDeleteBranchOperator,
)
from airflow_provider_jambo.operators.run_names import run_branch_name

with DAG(
    dag_id="example_jambo_ephemeral_branch",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    params={"fail_work": Param(False, type="boolean", description="make the work task fail")},
    user_defined_macros={"run_branch_name": run_branch_name},
    tags=["example", "jambo"],
) as dag:
    create_branch = JamboCreateBranchOperator(
        task_id="create_branch",
        # Unique per run, from the run id: a manual run (Airflow 3's default) has no logical date, so
        # no ts/ds. A retried task adopts the branch its earlier try created (if_exists="reuse").
        branch_name="{{ run_branch_name(run_id, 'ephemeral-') }}",
        ttl=timedelta(hours=6),
        compute_type="read_write",
        min_cu=0.25,
        max_cu=1,
        annotations={"purpose": "example"},
    )

    @task
    def work(branch: dict[str, Any], params: dict[str, Any] | None = None) -> str:
        """Stand-in for real work (migrations, tests, ...) against the new branch."""
        from airflow_provider_jambo.hooks.jambo import JamboHook

        # The create task waited for its operations: the branch is ready to use.
        with JamboHook() as hook:
            state = hook.branches.get(branch["branch_id"], project_id=branch["project_id"]).current_state
        print(f"working on branch {branch['branch_name']} ({branch['branch_id']}), state {state}")
        # Coordinates only: a password is fetched where it is used (e.g. JamboPostgresHook) and never
        # printed (`airflow dags test` shows task output unmasked).
        print(f"host {branch['host']}, database {branch['database']}, role {branch['role']}")
        if (params or {}).get("fail_work"):
            raise RuntimeError("the work failed (fail_work=true); the teardown still deletes the branch")
        return state

    delete_branch = JamboDeleteBranchOperator(
        task_id="delete_branch",
        branch=create_branch.output["branch_id"],
    )

    work_done = work(create_branch.output)
    create_branch >> work_done >> delete_branch.as_teardown(setups=create_branch)
