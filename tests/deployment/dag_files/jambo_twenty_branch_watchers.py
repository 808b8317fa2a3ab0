"""Twenty branch watchers on the stack's project (one per prefix), for the request-rate case.

Same connection, project and interval as the example's watcher, so all twenty-one share one poll.
The DAG is never meant to run: it exists so the watchers are registered.
"""

from __future__ import annotations

from datetime import UTC, datetime

from airflow.providers.common.compat.sdk import DAG, Asset
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import AssetAny, AssetWatcher

from airflow_provider_jambo.triggers.events import JamboBranchEventTrigger

WATCHED = [
    Asset(
        f"jambo_watched_{i}",
        watchers=[
            AssetWatcher(
                name=f"jambo_watcher_{i}",
                trigger=JamboBranchEventTrigger(name_prefix=f"w{i}/", poll_interval=5.0),
            )
        ],
    )
    for i in range(20)
]

with DAG(
    dag_id="jambo_twenty_branch_watchers",
    schedule=AssetAny(*WATCHED),
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    tags=["jambo", "test"],
):
    EmptyOperator(task_id="nothing")
