"""Issue 5's example DAGs run by ``airflow dags test`` against the emulator with real PostgreSQL.

One emulator (data plane on) for the module and the session's migrated Airflow home (conftest.py);
each test gets a fresh project whose ``main`` holds the demo data (``example_dags/sql/seed_main.sql``).
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from dags.runner import EXAMPLE_DAGS, AirflowHome, DagRunResult

from airflow_provider_jambo.create_branch_request import CreateBranchRequest
from airflow_provider_jambo.hooks.jambo import JamboHook
from jambo_emulator import EmulatorConfig, JamboEmulator

pytestmark = [pytest.mark.dags, pytest.mark.postgres]

SEED_SQL = (EXAMPLE_DAGS / "sql" / "seed_main.sql").read_text()
PREVIEW = EXAMPLE_DAGS / "example_jambo_preview_environment.py"
REPORT = EXAMPLE_DAGS / "example_jambo_scheduled_report.py"
JANITOR = EXAMPLE_DAGS / "example_jambo_janitor.py"


@pytest.fixture(scope="module")
def emulator() -> Iterator[JamboEmulator]:
    with JamboEmulator(api_key="dags-test-key", operation_duration=0.0, data_plane="auto") as emu:
        if not emu.ctx.data_plane.enabled:
            pytest.skip("PostgreSQL server binaries not found: the emulator's data plane is off")
        yield emu


@pytest.fixture(autouse=True)
def sql_files(airflow_home: AirflowHome) -> None:
    """The DAGs' ``sql/`` folder beside them, as it is deployed (the runner copies DAG files only)."""
    shutil.copytree(EXAMPLE_DAGS / "sql", airflow_home.dags_folder / "sql", dirs_exist_ok=True)


@dataclass
class Project:
    emu: JamboEmulator
    project_id: str
    main_branch_id: str
    main_uri: str
    #: role passwords and API key: must never show up in a run's output, logs, XCom or fields
    secrets: list[str]
    env: dict[str, str]

    def hook(self) -> JamboHook:
        return JamboHook()

    def branch_names(self) -> list[str]:
        return [b.name for b in self.hook().branches.list(self.project_id)]

    def main_query(self, sql: str) -> Any:
        with psycopg.connect(self.main_uri, connect_timeout=10) as conn:
            row = conn.execute(sql).fetchone()
        return row[0] if row else None


@pytest.fixture
def project(emulator: JamboEmulator, monkeypatch: pytest.MonkeyPatch) -> Project:
    return _new_project(emulator, monkeypatch)


def _new_project(emulator: JamboEmulator, monkeypatch: pytest.MonkeyPatch) -> Project:
    body = emulator.create_project(name="preview-dags")
    project_id = body["id"] if "id" in body else body["project"]["id"]
    conn_json = json.dumps(
        {
            "conn_type": "jambo",
            "host": emulator.base_url,
            "password": emulator.api_key,
            "extra": {"project_id": project_id},
        }
    )
    monkeypatch.setenv("AIRFLOW_CONN_JAMBO_DEFAULT", conn_json)
    hook = JamboHook()
    operations = [op["id"] for op in body.get("operations", [])]
    hook.operations.wait(operations, project_id=project_id, timeout=60).raise_for_status()
    main = hook.branches.get_default(project_id)
    role = hook.roles.list(main.id, project_id=project_id)[0].name
    main_uri = hook.branches.connection_uri(
        branch_id=main.id, database="neondb", role=role, project_id=project_id
    )
    password = hook.roles.reveal_password(main.id, role, project_id=project_id)
    return Project(
        emu=emulator,
        project_id=project_id,
        main_branch_id=main.id,
        main_uri=main_uri,
        secrets=[emulator.api_key, password],
        env={"AIRFLOW_CONN_JAMBO_DEFAULT": conn_json},
    )


@pytest.fixture
def seeded(project: Project) -> Project:
    """The project with the demo "production" data on main."""
    with psycopg.connect(project.main_uri, connect_timeout=10) as conn:
        conn.execute(SEED_SQL)
    return project


def assert_no_secrets(result: DagRunResult, project: Project) -> None:
    text = result.everything()
    for secret in project.secrets:
        assert secret not in text, f"a secret leaked into the run of {result.dag_id}"


def test_preview_environment_end_to_end(airflow_home: AirflowHome, seeded: Project) -> None:
    project = seeded
    result = airflow_home.run_dag(PREVIEW, env=project.env)
    assert result.state == "success", result.describe()
    assert set(result.task_states.values()) == {"success"}, result.describe()

    branch = result.xcoms[("create_branch", "return_value")]
    assert branch["branch_name"].startswith("preview-")
    assert branch["parent_id"] == project.main_branch_id
    assert result.xcoms[("transform", "return_value")] == 4  # one revenue row per customer
    checks = result.xcoms[("check_data_quality", "return_value")]
    assert set(checks) >= {"no order has a non-positive amount"}
    assert not any(checks.values())
    diff = result.xcoms[("schema_diff", "return_value")]
    assert "customer_revenue" in diff, diff
    assert "status" in diff, diff
    assert "Schema diff of" in result.output

    # The branch is gone, and main never saw the preview's changes.
    assert branch["branch_name"] not in project.branch_names()
    assert project.main_query("SELECT count(*) FROM orders") == 6
    assert project.main_query("SELECT to_regclass('public.customer_revenue')") is None
    assert_no_secrets(result, project)


def test_preview_environment_bad_data_fails_and_teardown_deletes(
    airflow_home: AirflowHome, seeded: Project
) -> None:
    project = seeded
    result = airflow_home.run_dag(PREVIEW, env=project.env, conf={"inject_bad_data": True})
    assert result.state == "failed", result.describe()
    assert result.task_states["check_data_quality"] == "failed", result.describe()
    assert result.task_states["schema_diff"] == "upstream_failed"
    assert result.task_states["delete_branch"] == "success", result.describe()
    assert "no order has a non-positive amount: 1 offending row(s)" in result.output
    branch = result.xcoms[("create_branch", "return_value")]
    assert branch["branch_name"] not in project.branch_names()
    # The bad row lived only on the branch.
    assert project.main_query("SELECT count(*) FROM orders WHERE amount <= 0") == 0
    assert_no_secrets(result, project)


TWO_DAYS = 2 * 86400.0


@pytest.fixture
def emulator_two_days_behind() -> Iterator[JamboEmulator]:
    """An emulator whose clock starts two days behind real time, so a project made now existed
    at the last midnight; ``advance(TWO_DAYS)`` brings its clock back to real time (operators
    compute TTLs from real time)."""
    config = EmulatorConfig(
        api_keys=["dags-backfill-key"], operation_duration=0.0, clock_start_offset=-TWO_DAYS
    )
    with JamboEmulator(config=config, data_plane="auto") as emu:
        if not emu.ctx.data_plane.enabled:
            pytest.skip("PostgreSQL server binaries not found: the emulator's data plane is off")
        yield emu


def test_scheduled_report_backfill_reports_the_data_as_it_was_at_the_interval_end(
    airflow_home: AirflowHome, emulator_two_days_behind: JamboEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rows written at two known times: the seed before the interval's end (last midnight), a late
    order dated inside the interval after it. The run for that interval must not see the late one."""
    emu = emulator_two_days_behind
    project = _new_project(emu, monkeypatch)
    with psycopg.connect(project.main_uri, connect_timeout=10) as conn:
        conn.execute(SEED_SQL)
    emu.advance(TWO_DAYS)  # now past the interval's end: what follows is written after it
    midnight = dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    late = midnight - dt.timedelta(hours=1)  # dated inside the interval, written after its end
    with psycopg.connect(project.main_uri, connect_timeout=10) as conn:
        conn.execute(
            "INSERT INTO orders (id, customer_id, amount, ordered_at) "
            "SELECT 9001, id, 1000.00, %s FROM customers WHERE country = 'NL' LIMIT 1",
            (late,),
        )
    assert project.main_query("SELECT count(*) FROM orders WHERE id = 9001") == 1

    # `dags test` without a date runs the last complete interval: the one ending at midnight.
    result = airflow_home.run_dag(REPORT, env=project.env, conf={"window_days": 3650})
    assert result.state == "success", result.describe()
    assert f"data_interval_end={midnight.isoformat(sep=' ')}" in result.output
    branch = result.xcoms[("branch_at_interval_end", "return_value")]
    assert branch["branch_name"].startswith("report-")
    assert result.task_states["delete_branch"] == "success"
    assert branch["branch_name"] not in project.branch_names()
    rows = result.xcoms[("revenue_report", "return_value")]
    by_country = {row["country"]: (row["orders"], row["revenue"]) for row in rows}
    # As seeded: the late NL order (1000.00) is not in the report of the interval before it.
    assert by_country == {"GB": (2, 155.5), "NL": (1, 12.99), "US": (3, 1294.1)}
    assert_no_secrets(result, project)


def _branch(hook: JamboHook, project: Project, name: str, parent_id: str, **kwargs: Any) -> str:
    creation = hook.branches.create(
        CreateBranchRequest(name=name, parent_id=parent_id, **kwargs), project_id=project.project_id
    )
    hook.operations.wait([op.id for op in creation.operations], project_id=project.project_id, timeout=60)
    return creation.branch.id


def test_janitor_deletes_stale_branches_children_first(airflow_home: AirflowHome, project: Project) -> None:
    """The real run (its dry run is tested in process: tests/operators/test_janitor.py)."""
    hook = project.hook()
    tag = {"dag_id": "example_jambo_preview_environment"}
    main = project.main_branch_id
    stale = _branch(hook, project, "preview-old", main, annotations=tag)
    child = _branch(hook, project, "preview-old-child", stale, annotations=tag)
    _branch(hook, project, "preview-untagged", main)
    _branch(hook, project, "preview-protected", main, annotations=tag, protected=True)
    _branch(hook, project, "feature-x", main, annotations=tag)
    project.emu.clear_requests()

    result = airflow_home.run_dag(JANITOR, env=project.env, conf={"max_age_hours": 0, "dry_run": False})
    assert result.state == "success", result.describe()
    plan = result.xcoms[("delete_stale_branches", "return_value")]
    assert plan["dry_run"] is False
    assert [b["branch_id"] for b in plan["deleted"]] == [child, stale]
    assert {b["name"]: b["reason"] for b in plan["kept"]} == {"preview-protected": "protected branch"}
    # Children first, one DELETE per stale branch, nothing else deleted.
    deletes = [r["path"] for r in project.emu.requests() if r["method"] == "DELETE"]
    assert deletes == [
        f"/api/v2/projects/{project.project_id}/branches/{child}",
        f"/api/v2/projects/{project.project_id}/branches/{stale}",
    ]
    assert sorted(project.branch_names()) == ["feature-x", "main", "preview-protected", "preview-untagged"]
    assert_no_secrets(result, project)
