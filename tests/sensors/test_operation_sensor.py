"""JamboOperationSensor: poke and deferrable, timeout and soft_fail, against the emulator."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from airflow.providers.common.compat.sdk import (
    AirflowFailException,
    AirflowSensorTimeout,
    AirflowSkipException,
)
from jambo_support import JamboProject, make_context
from operators.deferral import defer, resume, roundtrip

from airflow_provider_jambo.create_branch_request import CreateBranchRequest
from airflow_provider_jambo.exceptions import JamboConfigError
from airflow_provider_jambo.hooks.jambo import JamboHook
from airflow_provider_jambo.rules import check_operation_ids
from airflow_provider_jambo.sensors.operation_sensor import JamboOperationSensor
from airflow_provider_jambo.triggers.operation_trigger import JamboOperationTrigger


def start_branch(name: str) -> list[str]:
    with JamboHook() as hook:
        return [
            op.id
            for op in hook.branches.create(
                CreateBranchRequest(name=name, endpoints=[{"type": "read_write"}])
            ).operations
        ]


def sensor(**kwargs: object) -> JamboOperationSensor:
    kwargs.setdefault("deferrable", False)
    kwargs.setdefault("poke_interval", 0.05)
    kwargs.setdefault("timeout", 30)
    return JamboOperationSensor(task_id="wait", **kwargs)  # type: ignore[arg-type]


def test_operation_ids_from_a_list_or_a_rendered_string() -> None:
    assert check_operation_ids("operation_ids", "a-1, b-2 c-3") == ["a-1", "b-2", "c-3"]
    assert check_operation_ids("operation_ids", "['a-1', 'b-2']") == ["a-1", "b-2"]
    assert check_operation_ids("operation_ids", ["a-1", "a-1"]) == ["a-1"]
    with pytest.raises(JamboConfigError, match="operation_ids must be a non-empty list of operation ids"):
        check_operation_ids("operation_ids", ["Bad Id"])
    with pytest.raises(JamboConfigError, match="either operation_ids or branch"):
        sensor(operation_ids=["a-1"], branch="main")


def test_poke_waits_for_given_ids(jambo_project: JamboProject) -> None:
    jambo_project.emu.set_operation_durations(default=10)
    ids = start_branch("ext-1")
    s = sensor(operation_ids=ids)
    assert s.poke(make_context()) is False
    jambo_project.emu.advance(30)
    done = s.poke(make_context())
    assert done
    assert done.xcom_value == ids


def test_a_poke_over_several_operations_costs_one_request(jambo_project: JamboProject) -> None:
    emu = jambo_project.emu
    emu.set_operation_durations(default=10)
    emu.set_lock_rule(enabled=False)  # several creates in flight at once
    ids = [op_id for name in ("ext-1", "ext-2", "ext-3") for op_id in start_branch(name)]
    assert len(ids) == 6
    s = sensor(operation_ids=ids)
    emu.clear_requests()
    assert s.poke(make_context()) is False
    assert [(r["method"], r["route"]) for r in emu.requests()] == [
        ("GET", "/projects/{project_id}/operations")
    ]
    emu.advance(30)
    emu.clear_requests()
    done = s.poke(make_context())
    assert done
    assert done.xcom_value == ids
    assert len(emu.requests()) == 1


def test_poke_mode_execute_for_branch_operations(jambo_project: JamboProject) -> None:
    jambo_project.emu.set_operation_durations(default=10)
    ids = start_branch("ext-1")
    emu = jambo_project.emu
    emu.clear_requests()
    # The operations finish while the sensor pokes: the manual clock jumps (from another thread)
    # once the sensor has read them in flight, however slow the machine is.
    stop = threading.Event()

    def finish_after_the_first_read() -> None:
        while not stop.is_set():
            if any(r["route"] == "/projects/{project_id}/operations" for r in emu.requests()):
                emu.advance(30)
                return
            stop.wait(0.02)

    advancer = threading.Thread(target=finish_after_the_first_read, daemon=True)
    advancer.start()
    try:
        assert sensor(branch="ext-1").execute(make_context()) == ids
    finally:
        stop.set()
        advancer.join()


def test_branch_target_takes_only_that_branchs_in_flight_operations(jambo_project: JamboProject) -> None:
    jambo_project.emu.set_operation_durations(default=10)
    jambo_project.emu.set_lock_rule(enabled=False)  # two creates in flight at once
    ids = start_branch("ext-1")
    other = start_branch("ext-2")
    s = sensor(branch="ext-1")
    assert s.poke(make_context()) is False
    assert s._target_ids() == ids  # not ext-2's
    project_wide = sensor()
    assert project_wide.poke(make_context()) is False
    assert set(project_wide._target_ids()) >= set(ids + other)
    jambo_project.emu.advance(30)
    assert s.poke(make_context())


def test_failed_operations_fail_naming_them_or_skip_with_soft_fail(jambo_project: JamboProject) -> None:
    jambo_project.emu.set_operation_outcome("create_branch", "error", times=1)
    ids = start_branch("ext-1")
    with pytest.raises(AirflowFailException, match="create_branch"):
        sensor(operation_ids=ids).execute(make_context())
    with pytest.raises(AirflowSkipException):
        sensor(operation_ids=ids, soft_fail=True).execute(make_context())


def test_poke_timeout_and_soft_fail(jambo_project: JamboProject) -> None:
    jambo_project.emu.set_operation_durations(default=3600)
    ids = start_branch("ext-1")
    with pytest.raises(AirflowSensorTimeout):
        sensor(operation_ids=ids, timeout=0.2).execute(make_context())
    with pytest.raises(AirflowSkipException):
        sensor(operation_ids=ids, timeout=0.2, soft_fail=True).execute(make_context())


def test_deferrable_defers_with_the_timeout_and_resumes(jambo_project: JamboProject) -> None:
    jambo_project.emu.set_operation_durations(default=10)
    ids = start_branch("ext-1")
    s = sensor(operation_ids="{{ ids }}", deferrable=True, timeout=timedelta(minutes=5))
    s.operation_ids = ",".join(ids)  # as rendered
    ctx = make_context()
    deferred = defer(s, ctx)
    assert isinstance(deferred.trigger, JamboOperationTrigger)
    assert deferred.trigger.operation_ids == ids
    assert deferred.timeout is not None
    assert deferred.timeout >= timedelta(minutes=5)
    roundtrip(deferred.trigger)
    jambo_project.emu.advance(30)
    assert resume(s, ctx, deferred) == ids


def test_deferrable_with_nothing_in_flight_returns_at_once(jambo_project: JamboProject) -> None:
    # (it would raise TaskDeferred if it deferred)
    assert sensor(branch="main", deferrable=True).execute(make_context()) == []


@pytest.mark.parametrize(
    ("event", "soft_fail", "raised"),
    [
        ({"status": "failed", "message": "create_branch x failed"}, False, AirflowFailException),
        ({"status": "timeout", "message": "still running"}, False, AirflowSensorTimeout),
        ({"status": "error", "message": "401"}, False, Exception),
        ({"status": "failed", "message": "create_branch x failed"}, True, AirflowSkipException),
        ({"status": "timeout", "message": "still running"}, True, AirflowSkipException),
    ],
)
def test_resume_outcomes(event: dict, soft_fail: bool, raised: type[BaseException]) -> None:
    s = sensor(operation_ids=["a-1"], soft_fail=soft_fail, deferrable=True)
    payload = {"operation_ids": ["a-1"], **event}
    with pytest.raises(raised) as info:
        s.resume_execution("execute_complete", {"event": payload}, make_context())
    if not soft_fail:
        assert event["message"] in str(info.value)
    ok = s.resume_execution(
        "execute_complete", {"event": {"status": "success", "operation_ids": ["a-1"], "message": "ok"}}, {}
    )
    assert ok == ["a-1"]


@pytest.mark.parametrize("error", ["Trigger timeout", "Trigger/execution timeout"])  # Airflow 3, 2
@pytest.mark.parametrize(
    ("soft_fail", "raised"), [(False, AirflowSensorTimeout), (True, AirflowSkipException)]
)
def test_airflow_deferral_timeout_backstop(soft_fail: bool, raised: type[BaseException], error: str) -> None:
    """If Airflow's own deferral timeout fires first, it is still a sensor timeout (or a skip)."""
    s = sensor(operation_ids=["a-1"], soft_fail=soft_fail, deferrable=True)
    with pytest.raises(raised):
        s.resume_execution("__fail__", {"error": error}, make_context())
