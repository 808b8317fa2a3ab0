"""Issue 21's example: ``example_jambo_nightly_snapshot`` under ``airflow dags test`` against the
emulator with real PostgreSQL. The report reads the snapshot taken at the interval's end (a row
written after it is not in the report), ``main`` is untouched, the report branch is deleted, and a
second run for the same interval adopts the snapshot instead of taking another."""

from __future__ import annotations

import datetime as dt

import psycopg
import pytest
from dags import test_preview_dags as preview
from dags.runner import EXAMPLE_DAGS, AirflowHome

from jambo_emulator import JamboEmulator

pytestmark = [pytest.mark.dags, pytest.mark.postgres]

# The report example's fixtures: its emulator two days behind, the sql/ folder beside the DAG.
emulator_two_days_behind, sql_files = preview.emulator_two_days_behind, preview.sql_files
SEED_SQL, TWO_DAYS = preview.SEED_SQL, preview.TWO_DAYS

NIGHTLY = EXAMPLE_DAGS / "example_jambo_nightly_snapshot.py"


def test_nightly_snapshot_reports_the_backup_of_the_interval_end_and_reruns_idempotently(
    airflow_home: AirflowHome, emulator_two_days_behind: JamboEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    emu = emulator_two_days_behind
    project = preview._new_project(emu, monkeypatch)
    with psycopg.connect(project.main_uri, connect_timeout=10) as conn:
        conn.execute(SEED_SQL)
    emu.advance(TWO_DAYS)  # past the interval's end: what follows is written after it
    midnight = dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    with psycopg.connect(project.main_uri, connect_timeout=10) as conn:
        conn.execute(
            "INSERT INTO orders (id, customer_id, amount, ordered_at) "
            "SELECT 9001, id, 1000.00, %s FROM customers WHERE country = 'NL' LIMIT 1",
            (midnight - dt.timedelta(hours=1),),
        )

    result = airflow_home.run_dag(NIGHTLY, env=project.env, conf={"window_days": 3650})
    assert result.state == "success", result.describe()
    snap = result.xcoms[("snapshot_main", "return_value")]
    assert snap["created"] is True
    assert snap["timestamp"] == midnight.strftime("%Y-%m-%dT%H:%M:%SZ")
    expires = dt.datetime.fromisoformat(snap["expires_at"].replace("Z", "+00:00"))
    assert dt.timedelta(days=6, hours=23) < expires - dt.datetime.now(dt.UTC) <= dt.timedelta(days=7)
    restored = result.xcoms[("restore_latest", "return_value")]
    assert restored["snapshot_id"] == snap["snapshot_id"]
    assert restored["branch_name"].startswith("snapshot-report-")
    rows = result.xcoms[("revenue_report", "return_value")]
    by_country = {row["country"]: (row["orders"], row["revenue"]) for row in rows}
    # The backup of midnight: the late NL order written after it is not there; main still has it.
    assert by_country == {"GB": (2, 155.5), "NL": (1, 12.99), "US": (3, 1294.1)}
    assert project.main_query("SELECT count(*) FROM orders WHERE id = 9001") == 1
    assert result.task_states["delete_report_branch"] == "success"
    assert restored["branch_name"] not in project.branch_names()
    preview.assert_no_secrets(result, project)

    again = airflow_home.run_dag(NIGHTLY, env=project.env, conf={"window_days": 3650})
    assert again.state == "success", again.describe()
    snap_again = again.xcoms[("snapshot_main", "return_value")]
    assert (snap_again["created"], snap_again["snapshot_id"]) == (False, snap["snapshot_id"])
    assert [s.id for s in project.hook().snapshots.list(project.project_id)] == [snap["snapshot_id"]]
    assert restored["branch_name"] not in project.branch_names()
