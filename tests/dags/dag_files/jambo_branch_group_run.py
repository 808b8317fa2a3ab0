"""A failing task inside a jambo_branch_group, and a @task.jambo_branch task, in one run.

``inside`` fails when the run's conf says so; the group's teardown must still delete the branch.
Neither names its branch: the create's default name, and the teardown finds it in its XCom.
``on_own_branch`` is a ``@task.jambo_branch`` task: its value is the XCom, its branch is gone after.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from airflow.providers.common.compat.sdk import DAG, AirflowFailException, task

from airflow_provider_jambo.decorators import jambo_branch_group

with DAG(
    dag_id="jambo_branch_group_run",
    schedule=None,
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    params={"fail_inside": False},
) as dag:
    # A TTL as a backstop, as a real DAG has (and Airflow 3.0 refuses to store a None XCom, which
    # the create pushes for expires_at without one).
    with jambo_branch_group("grouped", ttl=600) as group:

        @task
        def inside(branch: dict[str, Any], params: dict[str, Any] | None = None) -> str:
            if params and params["fail_inside"]:
                raise AirflowFailException(f"failing inside the group on {branch['branch_name']}")
            return str(branch["branch_name"])

        inside(group.branch)

    @task.jambo_branch(ttl=600)
    def on_own_branch(branch: dict[str, Any]) -> dict[str, Any]:
        return {"ran_on": branch["branch_name"], "keys": sorted(branch)}

    on_own_branch()
