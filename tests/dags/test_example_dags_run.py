"""Issue 4's example DAGs run end to end with ``airflow dags test`` against the in-process emulator.

Each run checks the DAG's effect on the emulator (branches/computes created and removed), the task
states, and that neither the API key nor a role password shows up in the output, XComs or rendered
template fields.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from runner import AIRFLOW_2, EXAMPLE_DAGS, DagRunResult

from airflow_provider_jambo.create_branch_request import CreateBranchRequest
from airflow_provider_jambo.hooks.jambo import JamboHook
from jambo_emulator import JamboEmulator

pytestmark = pytest.mark.dags

EPHEMERAL = EXAMPLE_DAGS / "example_jambo_ephemeral_branch.py"
COMPUTE = EXAMPLE_DAGS / "example_jambo_compute.py"
SENSOR = EXAMPLE_DAGS / "example_jambo_operation_sensor.py"


@dataclass
class Service:
    emu: Any
    project_id: str
    env: dict[str, str]
    #: the default branch's role password; child branches start with the same one
    password: str

    def hook(self) -> JamboHook:
        return JamboHook()

    def branch_names(self) -> list[str]:
        with self.hook() as hook:
            return [b.name for b in hook.branches.list(self.project_id)]

    def assert_no_secrets(self, result: DagRunResult) -> None:
        text = result.everything()
        assert self.emu.api_key not in text, "API key leaked into the run's output/XCom/rendered fields"
        assert self.password not in text, "role password leaked into the run's output/XCom/rendered fields"


@pytest.fixture
def service(monkeypatch: pytest.MonkeyPatch) -> Iterator[Service]:
    """An emulator for the DAG subprocess; the connection goes to it by env var."""
    from jambo_support import connection_json

    with JamboEmulator(
        api_key="dag-run-secret-key-0123456789",
        deterministic=True,
        operation_duration=0.0,
        data_plane="off",  # the DAGs here need no data; PostgreSQL would only add start-up time
    ) as emu:
        project = emu.create_project(name="example-dags")
        project_id = project["id"] if "id" in project else project["project"]["id"]
        conn = connection_json(emu, project_id)
        monkeypatch.setenv("AIRFLOW_CONN_JAMBO_DEFAULT", conn)  # for this process's checks
        with JamboHook() as hook:
            main = hook.branches.get_default(project_id)
            password = hook.roles.reveal_password(main.id, "neondb_owner")
        assert password
        yield Service(emu, project_id, {"AIRFLOW_CONN_JAMBO_DEFAULT": conn}, password)


def test_ephemeral_branch_deferrable_success(
    run_example_dag: Callable[..., DagRunResult], service: Service
) -> None:
    result = run_example_dag(
        EPHEMERAL,
        env={
            **service.env,
            "AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE": "True",
            # Defer at once (no inline grace), so the trigger path is what runs here.
            "AIRFLOW__JAMBO__DEFAULT_DEFER_GRACE_SECONDS": "0",
        },
    )
    assert result.state == "success", result.describe()
    assert result.task_states == {"create_branch": "success", "work": "success", "delete_branch": "success"}
    created = result.xcoms[("create_branch", "return_value")]
    assert created["created"] is True
    assert created["branch_name"].startswith("ephemeral-")
    assert result.xcoms[("work", "return_value")] == "ready"  # the create waited for its operations
    assert result.xcoms[("delete_branch", "return_value")]["branch_id"] == created["branch_id"]
    # The deferral went through the trigger (run inline by `dags test`).
    assert "running trigger in line" in result.output
    if AIRFLOW_2:
        # Airflow 2 stores no link XComs: the webserver calls get_link, which reads these two values.
        assert created["project_id"] == service.project_id
    else:
        # The connection targets the emulator, whose branches the real console does not know.
        assert result.xcoms[("create_branch", "_link_JamboConsoleLink")] == ""
    assert service.branch_names() == ["main"]
    service.assert_no_secrets(result)


def test_ephemeral_branch_teardown_runs_when_work_fails(
    run_example_dag: Callable[..., DagRunResult], service: Service
) -> None:
    result = run_example_dag(EPHEMERAL, env=service.env, conf={"fail_work": True})
    assert result.state == "failed", result.describe()
    assert result.task_states == {"create_branch": "success", "work": "failed", "delete_branch": "success"}
    assert "the teardown still deletes the branch" in result.flat_output()
    assert service.branch_names() == ["main"]
    service.assert_no_secrets(result)


def test_compute_lifecycle(run_example_dag: Callable[..., DagRunResult], service: Service) -> None:
    with service.hook() as hook:
        before = {ep.id for ep in hook.computes.list(service.project_id)}
    result = run_example_dag(COMPUTE, env=service.env)
    assert result.state == "success", result.describe()
    assert set(result.task_states.values()) == {"success"}, result.describe()
    created = result.xcoms[("create_compute", "return_value")]
    assert created["type"] == "read_only"
    assert created["endpoint_id"] not in before
    assert result.xcoms[("delete_compute", "return_value")]["deleted"] is True
    with service.hook() as hook:
        assert {ep.id for ep in hook.computes.list(service.project_id)} == before
    service.assert_no_secrets(result)


def test_sensor_waits_for_operations_started_outside(
    run_example_dag: Callable[..., DagRunResult], service: Service
) -> None:
    emu = service.emu
    emu.set_operation_durations(default=30, start_compute=90)  # the manual clock stands still
    emu.set_lock_rule(enabled=False)  # both changes in flight at once
    with service.hook() as hook:
        branch_ops = [op.id for op in hook.branches.create(CreateBranchRequest(name="external")).operations]
        compute = hook.computes.create(hook.branches.get_default().id, type="read_only")
        compute_ops = [op.id for op in compute.operations]
    assert branch_ops
    assert compute_ops
    emu.clear_requests()

    # Let the service's clock move only once the sensors are looking, so they really wait.
    stop = threading.Event()

    def clock() -> None:
        phases = [
            ("/operations", 60),  # wait_for_branch listed the in-flight operations: finish the branch's
            (f"/operations/{compute_ops[0]}", 60),  # wait_for_ids polls the compute's: finish it
        ]
        for fragment, seconds in phases:
            while not stop.is_set() and not any(r["path"].endswith(fragment) for r in emu.requests()):
                time.sleep(0.05)
            time.sleep(1.0)  # a few polls of "still running" first
            emu.advance(seconds)

    ticker = threading.Thread(target=clock, daemon=True)
    ticker.start()
    try:
        result = run_example_dag(
            SENSOR, env=service.env, conf={"branch": "external", "operation_ids": compute_ops}
        )
    finally:
        stop.set()
        ticker.join(timeout=5)
    assert result.state == "success", result.describe()
    assert result.xcoms[("wait_for_branch", "return_value")] == branch_ops
    assert result.xcoms[("wait_for_ids", "return_value")] == compute_ops
    assert "Still waiting for" in result.output  # the poke-mode sensor did wait
    service.assert_no_secrets(result)
