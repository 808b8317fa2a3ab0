"""Scheduled ephemeral branch: a daily report on a frozen copy of production.

    branch_at_interval_end (setup) -> revenue_report -> delete_branch (teardown)

Each day's run branches ``main`` *as it was at the end of the data interval* (a named parent at a
point in time), so the report is reproducible and late writes to production cannot change it; the
heavy query runs on the branch's own compute, not production's. The report rows are the
``revenue_report`` task's XCom; the branch is deleted afterwards whatever happened (teardown), with
a TTL as a backstop.

A manual run (Airflow 3's CLI, REST API and UI trigger without a logical date) has no data
interval: it branches ``main`` as it was when the run was triggered (``dag_run.run_after``). Branch
names come from the run id, which every run has.
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

from airflow_provider_jambo.decorators import jambo_branch_group
from airflow_provider_jambo.operators.branch_sql_operator import JamboBranchSQLOperator
from airflow_provider_jambo.operators.run_names import run_branch_name

SQL_DIR = Path(__file__).parent / "sql"


def rows_as_dicts(cursor: Any) -> list[dict[str, Any]] | None:
    """SQL handler: the result as ``[{column: value}, ...]`` (plain JSON in XCom)."""
    if cursor.description is None:
        return None
    columns = [column[0] for column in cursor.description]
    return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]


@pass_context
def report_end(context: Any) -> str:
    """The data interval's end (RFC 3339); for a manual run without one, when it was triggered.

    Read with ``context.get``: a run without a logical date has no ``data_interval_end`` at all,
    and the DAG's StrictUndefined would fail a template naming it.
    """
    end = context.get("data_interval_end") or context["dag_run"].run_after
    return str(end.isoformat())


BRANCH_NAME = "{{ run_branch_name(run_id, 'report-') }}"

with (
    DAG(
        dag_id="example_jambo_scheduled_report",
        description="Daily: branch main at the interval's end, run the revenue report on it, delete it.",
        # A real data interval (yesterday 00:00 -> today 00:00), so "the interval's end" is midnight.
        schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
        start_date=datetime(2026, 11, 1, tzinfo=UTC),
        catchup=False,
        template_searchpath=[str(SQL_DIR)],
        user_defined_macros={"run_branch_name": run_branch_name, "report_end": report_end},
        params={
            "parent": Param("main", type="string", description="Branch to report on (id or exact name)."),
            "window_days": Param(
                7, type="integer", minimum=1, description="Days of orders the report covers."
            ),
        },
        tags=["jambo", "example"],
    ) as dag,
    # branch_at_interval_end (setup) -> the report -> delete_branch (teardown), ids unprefixed.
    jambo_branch_group(
        "report",
        branch_name=BRANCH_NAME,
        create_task_id="branch_at_interval_end",
        prefix_group_id=False,
        parent="{{ params.parent }}",
        parent_timestamp="{{ report_end() }}",
        ttl=timedelta(hours=3),
    ) as report,
):
    JamboBranchSQLOperator(
        task_id="revenue_report",
        branch=report.branch,
        sql="report/daily_revenue.sql",
        # XCom: the report, [{"country": ..., "orders": ..., "revenue": ...}, ...].
        handler=rows_as_dicts,
        show_return_value_in_logs=True,
    )
