"""Nightly snapshot: back up ``main`` at the end of each day, and report on the backup.

    snapshot_main -> restore_latest (setup) -> revenue_report -> delete_report_branch (teardown)

Each run snapshots ``main`` *as it was at the end of its data interval* (midnight), kept 7 days
(the service deletes it then), restores the latest snapshot of ``main`` to a branch of its own with
its own compute, runs the revenue report there, and deletes that branch whatever happened. ``main``
is never touched: the report reads the backup, which is also a check that the backup restores.

Idempotent for one interval: the snapshot is named after the interval, so a re-run (or a retry,
or another run for the same interval) adopts the snapshot instead of taking a second one; the
report branch is named after the run and deleted at its end. A manual run of Airflow 3 has no
data interval: it snapshots now.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from airflow.providers.common.compat.sdk import DAG, Param
from jinja2 import pass_context

try:
    from airflow.sdk import CronDataIntervalTimetable
except ImportError:  # Airflow < 3.1: not in the SDK (nor in common-compat) yet
    from airflow.timetables.interval import CronDataIntervalTimetable  # type: ignore[no-redef]

from airflow_provider_jambo.operators.branch_operators import JamboDeleteBranchOperator
from airflow_provider_jambo.operators.branch_sql_operator import JamboBranchSQLOperator
from airflow_provider_jambo.operators.run_names import run_branch_name
from airflow_provider_jambo.operators.snapshot_operators import (
    JamboCreateSnapshotOperator,
    JamboRestoreSnapshotOperator,
)

SQL_DIR = Path(__file__).parent / "sql"


def rows_as_dicts(cursor: Any) -> list[dict[str, Any]] | None:
    """SQL handler: the result as ``[{column: value}, ...]`` (plain JSON in XCom)."""
    if cursor.description is None:
        return None
    columns = [column[0] for column in cursor.description]
    return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]


@pass_context
def report_end(context: Any) -> str:
    """The data interval's end (RFC 3339); for a manual run without one, when it was triggered
    (read with ``context.get``: the DAG's StrictUndefined fails a template naming a missing one)."""
    end = context.get("data_interval_end") or context["dag_run"].run_after
    return str(end.isoformat())


REPORT_BRANCH = "{{ run_branch_name(run_id, 'snapshot-report-') }}"
# Named after the interval, not the run: every run for one interval (a re-run, a retry, a second
# `airflow dags test`) finds the snapshot the first one took.
SNAPSHOT_NAME = "{{ run_branch_name(report_end(), params.source ~ '-nightly-') }}"

with DAG(
    dag_id="example_jambo_nightly_snapshot",
    description="Nightly: snapshot main at midnight (kept 7 days), report on the restored snapshot.",
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
    start_date=datetime(2026, 11, 1, tzinfo=UTC),
    catchup=False,
    template_searchpath=[str(SQL_DIR)],
    user_defined_macros={"run_branch_name": run_branch_name, "report_end": report_end},
    params={
        "source": Param("main", type="string", description="Root branch to back up (id or exact name)."),
        "window_days": Param(7, type="integer", minimum=1, description="Days of orders the report covers."),
    },
    tags=["jambo", "example"],
) as dag:
    snapshot_main = JamboCreateSnapshotOperator(
        task_id="snapshot_main",
        branch="{{ params.source }}",
        point="data_interval_end",
        snapshot_name=SNAPSHOT_NAME,
        ttl=timedelta(days=7),
    )

    restore_latest = JamboRestoreSnapshotOperator(
        task_id="restore_latest",
        latest_of="{{ params.source }}",
        branch_name=REPORT_BRANCH,
    )

    revenue_report = JamboBranchSQLOperator(
        task_id="revenue_report",
        branch=restore_latest.output,
        sql="report/daily_revenue.sql",
        handler=rows_as_dicts,
        show_return_value_in_logs=True,
    )

    delete_report_branch = JamboDeleteBranchOperator(task_id="delete_report_branch", branch=REPORT_BRANCH)

    (
        snapshot_main
        >> restore_latest
        >> revenue_report
        >> delete_report_branch.as_teardown(setups=restore_latest)
    )
