"""jambo_branch_group and @task.jambo_branch under ``airflow dags test`` against the emulator.

One run: a task inside the group fails, and the group's teardown still deletes its branch; a
``@task.jambo_branch`` task beside it returns its value as the XCom and leaves no branch behind.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from jambo_support import connection_json
from runner import AirflowHome

from airflow_provider_jambo.hooks.jambo import JamboHook
from jambo_emulator import JamboEmulator

pytestmark = pytest.mark.dags

DAG_FILE = Path(__file__).resolve().parent / "dag_files" / "jambo_branch_group_run.py"


@pytest.fixture
def emulator() -> Iterator[JamboEmulator]:
    with JamboEmulator(
        api_key="group-run-secret-key-0123456789",
        deterministic=True,
        operation_duration=0.0,
        data_plane="off",  # the tasks here use the branch's coordinates, not its data
    ) as emu:
        yield emu


def test_a_failure_inside_the_group_still_deletes_its_branch(
    airflow_home: AirflowHome, emulator: JamboEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = emulator.create_project(name="group-run")
    project_id = project["id"] if "id" in project else project["project"]["id"]
    conn = connection_json(emulator, project_id)
    monkeypatch.setenv("AIRFLOW_CONN_JAMBO_DEFAULT", conn)

    result = airflow_home.run_dag(
        DAG_FILE, env={"AIRFLOW_CONN_JAMBO_DEFAULT": conn}, conf={"fail_inside": True}
    )

    assert result.state == "failed", result.describe()
    states = result.task_states
    assert states["grouped.create_branch"] == "success", result.describe()
    assert states["grouped.inside"] == "failed", result.describe()
    assert states["grouped.delete_branch"] == "success", result.describe()
    assert states["on_own_branch"] == "success", result.describe()
    assert "failing inside the group on jambo-branch-group-run-grouped-create-branch-" in result.flat_output()

    created = result.xcoms[("grouped.create_branch", "return_value")]
    deleted = result.xcoms[("grouped.delete_branch", "return_value")]
    assert deleted["branch_id"] == created["branch_id"]
    assert deleted["deleted"] is True
    decorated = result.xcoms[("on_own_branch", "return_value")]
    assert decorated["ran_on"].startswith("jambo-branch-group-run-on-own-branch-")
    assert "password" not in decorated["keys"]
    with JamboHook() as hook:
        assert [b.name for b in hook.branches.list(project_id)] == ["main"]
    assert emulator.api_key not in result.everything()
