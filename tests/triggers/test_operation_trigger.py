"""JamboOperationTrigger driven with asyncio against the in-process emulator."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest
from jambo_support import JamboProject, connection_json
from operators.deferral import first_event, roundtrip

from airflow_provider_jambo.create_branch_request import CreateBranchRequest
from airflow_provider_jambo.exceptions import JamboConfigError
from airflow_provider_jambo.hooks.jambo import JamboHook
from airflow_provider_jambo.hooks.resources.operations import OperationsApi
from airflow_provider_jambo.hooks.retry import RetryPolicy
from airflow_provider_jambo.triggers.operation_trigger import (
    DEFERRAL_SETTLE_SECONDS,
    JamboOperationTrigger,
    settle_deadline,
)

POLICY = RetryPolicy(max_attempts=5, max_elapsed=10, initial_wait=0.01, max_wait=0.05).to_dict()


def start_branch(project: JamboProject, name: str = "t-1") -> list[str]:
    """Create a branch with a compute; returns the ids of the operations it started."""
    with JamboHook() as hook:
        creation = hook.branches.create(CreateBranchRequest(name=name, endpoints=[{"type": "read_write"}]))
    assert creation.operations
    return [op.id for op in creation.operations]


def trigger_for(
    project: JamboProject, ids: list[str], *, deadline_in: float = 30, **kw: Any
) -> JamboOperationTrigger:
    return JamboOperationTrigger(
        jambo_conn_id="jambo_default",
        project_id=project.project_id,
        operation_ids=ids,
        deadline=time.time() + deadline_in,
        poll_interval=kw.pop("poll_interval", 0.05),
        retry_policy=kw.pop("retry_policy", POLICY),
        not_before=kw.pop("not_before", None),
    )


def test_serialize_round_trip_holds_plain_values_only(jambo_project: JamboProject) -> None:
    trigger = trigger_for(jambo_project, ["a-1", "b-2"])
    classpath, kwargs = trigger.serialize()
    assert classpath == "airflow_provider_jambo.triggers.operation_trigger.JamboOperationTrigger"
    rebuilt = roundtrip(trigger)
    assert rebuilt.serialize() == trigger.serialize()
    text = json.dumps(kwargs)  # plain JSON values only
    assert jambo_project.emu.api_key not in text
    assert isinstance(kwargs["deadline"], float)
    assert kwargs["retry_policy"] == POLICY


async def test_success_event(jambo_project: JamboProject) -> None:
    ids = start_branch(jambo_project)
    event = await first_event(trigger_for(jambo_project, ids))
    assert event.payload["status"] == "success"
    assert event.payload["operation_ids"] == ids
    assert "finished" in event.payload["message"]


async def test_failed_event_names_the_operation(jambo_project: JamboProject) -> None:
    jambo_project.emu.set_operation_outcome("create_branch", "error", times=1)
    ids = start_branch(jambo_project)
    event = await first_event(trigger_for(jambo_project, ids))
    assert event.payload["status"] == "failed"
    assert "create_branch" in event.payload["message"]


async def test_timeout_event_at_the_absolute_deadline(jambo_project: JamboProject) -> None:
    jambo_project.emu.set_operation_durations(default=3600)  # the manual clock never gets there
    ids = start_branch(jambo_project)
    event = await first_event(trigger_for(jambo_project, ids, deadline_in=0.3))
    assert event.payload["status"] == "timeout"
    assert ids[0] in event.payload["message"]


async def test_recreated_mid_wait_resumes_the_same_wait(jambo_project: JamboProject) -> None:
    """A triggerer restart: the first trigger is cancelled while waiting; one rebuilt from its
    serialized kwargs (same absolute deadline) picks the wait up and reports success."""
    jambo_project.emu.set_operation_durations(default=60)
    ids = start_branch(jambo_project)
    first = trigger_for(jambo_project, ids, deadline_in=60)
    task = asyncio.ensure_future(first_event(first))
    await asyncio.sleep(0.3)  # a few polls: still running
    assert not task.done()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    _classpath, kwargs = first.serialize()
    second = JamboOperationTrigger(**kwargs)
    assert second.deadline == first.deadline
    jambo_project.emu.advance(120)
    event = await first_event(second)
    assert event.payload["status"] == "success"


async def test_transient_errors_are_retried_inside(jambo_project: JamboProject) -> None:
    ids = start_branch(jambo_project)
    for route in ("/projects/{project_id}/operations/{operation_id}", "/projects/{project_id}/operations"):
        jambo_project.emu.inject_fault(
            "GET", route, faults=[{"kind": "status", "status": 503}, {"kind": "locked"}], times=1
        )
    event = await first_event(trigger_for(jambo_project, ids))
    assert event.payload["status"] == "success"
    statuses = [r["status"] for r in jambo_project.emu.requests() if r["method"] == "GET"]
    assert 503 in statuses or 423 in statuses


async def test_provider_errors_become_an_error_event(
    jambo_project: JamboProject, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = start_branch(jambo_project)
    monkeypatch.setenv(
        "AIRFLOW_CONN_JAMBO_DEFAULT",
        connection_json(jambo_project.emu, jambo_project.project_id, "wrong-key"),
    )
    event = await first_event(trigger_for(jambo_project, ids))
    assert event.payload["status"] == "error"
    assert "401" in event.payload["message"]
    assert "wrong-key" not in event.payload["message"]


async def test_other_exceptions_are_not_swallowed(
    jambo_project: JamboProject, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a bug")

    monkeypatch.setattr(OperationsApi, "wait_async", broken)
    with pytest.raises(RuntimeError, match="a bug"):
        await first_event(trigger_for(jambo_project, ["x-1"]))


async def test_a_ready_event_is_held_until_not_before(jambo_project: JamboProject) -> None:
    """Operations done at once (zero durations): the event still waits for ``not_before``, so it
    cannot overtake the worker's report of the deferral (apache/airflow#72716)."""
    ids = start_branch(jambo_project)
    hold = 0.6
    trigger = trigger_for(jambo_project, ids, not_before=time.time() + hold)
    started = time.monotonic()
    event = await first_event(roundtrip(trigger))  # a restarted triggerer keeps the same bound
    assert time.monotonic() - started >= hold - 0.05
    assert event.payload["status"] == "success"


async def test_a_passed_not_before_does_not_delay(jambo_project: JamboProject) -> None:
    ids = start_branch(jambo_project)
    trigger = trigger_for(jambo_project, ids, not_before=time.time() - 60)
    started = time.monotonic()
    event = await first_event(trigger)
    assert event.payload["status"] == "success"
    assert time.monotonic() - started < DEFERRAL_SETTLE_SECONDS


def test_operators_defer_with_the_settle_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AIRFLOW__JAMBO__DEFERRAL_SETTLE_SECONDS", raising=False)
    before = time.time()
    bound = settle_deadline()
    assert before + DEFERRAL_SETTLE_SECONDS <= bound <= time.time() + DEFERRAL_SETTLE_SECONDS
    monkeypatch.setenv("AIRFLOW__JAMBO__DEFERRAL_SETTLE_SECONDS", "2.5")
    assert settle_deadline(now=100.0) == 102.5
    monkeypatch.setenv("AIRFLOW__JAMBO__DEFERRAL_SETTLE_SECONDS", "-1")
    with pytest.raises(JamboConfigError, match="deferral_settle_seconds"):
        settle_deadline()
