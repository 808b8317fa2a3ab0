"""``example_jambo_branch_task`` (``@task.jambo_branch``) run by ``airflow dags test`` on the demo data."""

from __future__ import annotations

import json
from collections.abc import Iterator

import psycopg
import pytest
from dags.runner import EXAMPLE_DAGS, AirflowHome

from airflow_provider_jambo.hooks.jambo import JamboHook
from jambo_emulator import JamboEmulator

pytestmark = [pytest.mark.dags, pytest.mark.postgres]

SEED_SQL = (EXAMPLE_DAGS / "sql" / "seed_main.sql").read_text()


@pytest.fixture(scope="module")
def emulator() -> Iterator[JamboEmulator]:
    with JamboEmulator(api_key="branch-task-key", operation_duration=0.0, data_plane="auto") as emu:
        if not emu.ctx.data_plane.enabled:
            pytest.skip("PostgreSQL server binaries not found: the emulator's data plane is off")
        yield emu


def test_the_what_if_runs_on_a_copy_and_leaves_main_and_no_branch(
    airflow_home: AirflowHome, emulator: JamboEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = emulator.create_project(name="branch-task")
    project_id = body["project"]["id"]
    conn = {"conn_type": "jambo", "host": emulator.base_url, "password": emulator.api_key}
    conn_json = json.dumps({**conn, "extra": {"project_id": project_id}})
    monkeypatch.setenv("AIRFLOW_CONN_JAMBO_DEFAULT", conn_json)
    hook = JamboHook()
    hook.operations.wait([op["id"] for op in body["operations"]], timeout=60).raise_for_status()
    main = hook.branches.get_default(project_id)
    uri = hook.branches.connection_uri(branch_id=main.id, database="neondb", role="neondb_owner")
    with psycopg.connect(uri, connect_timeout=10) as db:
        db.execute(SEED_SQL)

    result = airflow_home.run_dag(
        EXAMPLE_DAGS / "example_jambo_branch_task.py", env={"AIRFLOW_CONN_JAMBO_DEFAULT": conn_json}
    )
    assert result.state == "success", result.describe()
    value = result.xcoms[("refund_impact", "return_value")]
    # The seed's six orders sum to 1462.59; the largest (980.00) is refunded on the branch only.
    assert value["revenue_before"] == pytest.approx(1462.59)
    assert value["revenue_after"] == pytest.approx(482.59)
    assert [b.name for b in hook.branches.list(project_id)] == [main.name]
    with psycopg.connect(uri, connect_timeout=10) as db:
        assert db.execute("SELECT count(*), sum(amount)::float FROM orders").fetchone() == (6, 1462.59)
    assert emulator.api_key not in result.everything()
    assert "npg_" not in result.everything()
