"""Wait for operations started outside this DAG (another pipeline, a CI job, the console).

The sensor waits for every operation of a branch that is in flight when it starts, or for the
operation ids given in the run's conf; it defers to the triggerer, so waiting costs no worker slot.
It fails naming the failed operations, or skips instead with ``soft_fail=True``.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.providers.common.compat.sdk import DAG, Param, task

from airflow_provider_jambo.sensors.operation_sensor import JamboOperationSensor

with DAG(
    dag_id="example_jambo_operation_sensor",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    params={
        "branch": Param("main", type="string", description="branch whose in-flight operations to wait for"),
        "operation_ids": Param(
            [], type="array", description="operation ids to wait for (none given: that wait is skipped)"
        ),
    },
    render_template_as_native_obj=True,
    tags=["example", "jambo"],
) as dag:
    wait_for_branch = JamboOperationSensor(
        task_id="wait_for_branch",
        branch="{{ params.branch }}",
        timeout=timedelta(minutes=30),
        deferrable=True,
    )
    wait_for_ids = JamboOperationSensor(
        task_id="wait_for_ids",
        operation_ids="{{ params.operation_ids }}",
        timeout=timedelta(minutes=30),
        poke_interval=1,
        deferrable=False,
    )

    # The sensor refuses an empty list (it would wait for nothing); a run given no ids skips that wait.
    @task.short_circuit(ignore_downstream_trigger_rules=False)
    def ids_given(ids: list[str]) -> bool:
        return bool(ids)

    @task(trigger_rule="none_failed")
    def report(branch_ops: list[str], id_ops: list[str] | None) -> None:
        print(f"operations done on the branch: {branch_ops}; by id: {id_ops}")

    wait_for_branch >> ids_given("{{ params.operation_ids }}") >> wait_for_ids
    report(wait_for_branch.output, wait_for_ids.output)
