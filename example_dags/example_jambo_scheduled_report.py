"""Scheduled ephemeral branch: a daily report on a frozen copy of production.

    branch_at_interval_end (setup) -> revenue_report -> delete_branch (teardown)

Each day's run branches ``main`` *as it was at the end of the data interval* (a named parent at a
point in time), so the report is reproducible and late writes to production cannot change it; the
heavy query runs on the branch's own compute, not production's. The report rows are the
``revenue_report`` task's XCom; the branch is deleted afterwards whatever happened (teardown), with
a TTL as a backstop.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from airflow.providers.common.compat.sdk import DAG, Param

try:
    from airflow.sdk import CronDataIntervalTimetable
except ImportError:  # Airflow < 3.1: not in the SDK (nor in common-compat) yet
    from airflow.timetables.interval import CronDataIntervalTimetable  # type: ignore[no-redef]

from airflow_provider_jambo.operators.branch import JamboCreateBranchOperator, JamboDeleteBranchOperator
from airflow_provider_jambo.operators.sql import JamboBranchSQLOperator

SQL_DIR = Path(__file__).parent / "sql"


def rows_as_dicts(cursor: Any) -> list[dict[str, Any]] | None:
    """SQL handler: the result as ``[{column: value}, ...]`` (plain JSON in XCom)."""
    if cursor.description is None:
        return None
    columns = [column[0] for column in cursor.description]
    return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]


BRANCH_NAME = "report-{{ data_interval_end | ds_nodash }}"

with DAG(
    dag_id="example_jambo_scheduled_report",
    description="Daily: branch main at the data interval's end, run the revenue report on it, delete it.",
    # A real data interval (yesterday 00:00 -> today 00:00), so "the interval's end" is midnight.
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
    start_date=datetime(2026, 11, 1, tzinfo=timezone.utc),
    catchup=False,
    template_searchpath=[str(SQL_DIR)],
    params={
        "parent": Param("main", type="string", description="Branch to report on (id or exact name)."),
        "window_days": Param(7, type="integer", minimum=1, description="Days of orders the report covers."),
    },
    tags=["jambo", "example"],
) as dag:
    branch_at_interval_end = JamboCreateBranchOperator(
        task_id="branch_at_interval_end",
        branch_name=BRANCH_NAME,
        parent="{{ params.parent }}",
        parent_timestamp="{{ data_interval_end | ts }}",
        ttl=timedelta(hours=3),
    )

    revenue_report = JamboBranchSQLOperator(
        task_id="revenue_report",
        branch=branch_at_interval_end.output,
        sql="report/daily_revenue.sql",
        # XCom: the report, [{"country": ..., "orders": ..., "revenue": ...}, ...].
        handler=rows_as_dicts,
        show_return_value_in_logs=True,
    )

    delete_branch = JamboDeleteBranchOperator(task_id="delete_branch", branch=BRANCH_NAME)

    revenue_report >> delete_branch.as_teardown(setups=branch_at_interval_end)
