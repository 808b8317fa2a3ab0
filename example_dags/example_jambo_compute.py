"""Compute lifecycle on an existing branch: add a read-only compute, suspend it, start it, delete it.

A branch has one read-write compute and any number of read-only ones (e.g. for reporting queries
that must not slow the primary). The delete is a teardown, so the compute never outlives the run.
Every step waits for the service's operations; set ``deferrable=True`` (or
``[operators] default_deferrable``) to wait in the triggerer instead of a worker slot.
"""

from __future__ import annotations

from datetime import datetime

from airflow.providers.common.compat.sdk import DAG, Param

from airflow_provider_jambo.operators.compute_operators import (
    JamboCreateComputeOperator,
    JamboDeleteComputeOperator,
    JamboStartComputeOperator,
    JamboSuspendComputeOperator,
)

with DAG(
    dag_id="example_jambo_compute",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    params={"branch": Param("main", type="string", description="existing branch, by exact name or id")},
    tags=["example", "jambo"],
) as dag:
    create_compute = JamboCreateComputeOperator(
        task_id="create_compute",
        branch="{{ params.branch }}",
        compute_type="read_only",
        min_cu=0.25,
        max_cu=2,
        suspend_timeout_seconds=300,
        deferrable=True,
    )
    endpoint_id = create_compute.output["endpoint_id"]
    suspend_compute = JamboSuspendComputeOperator(task_id="suspend_compute", endpoint_id=endpoint_id)
    start_compute = JamboStartComputeOperator(
        task_id="start_compute", endpoint_id=endpoint_id, deferrable=True
    )
    delete_compute = JamboDeleteComputeOperator(task_id="delete_compute", endpoint_id=endpoint_id)

    (create_compute >> suspend_compute >> start_compute >> delete_compute.as_teardown(setups=create_compute))
