"""A deferred create task ended by a user: Airflow 3.3's triggerer calls the trigger's ``on_kill``,
which deletes the branch that try created, by id, and nothing else, when the task is over (marked
failed); a cleared task's next try adopts it instead.

The triggerer's side is the installed Airflow's (``TriggerRunner.run_trigger``: ``on_kill`` only for
a cancel carrying its user-action message); here the trigger is driven as it does, against the
wall-clock emulator, so the create's operations are still running when the kill comes.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Any

import pytest
from jambo_support import JamboProject, make_context
from operators.deferral import defer, roundtrip

from airflow_provider_jambo.create_branch_request import CreateBranchRequest
from airflow_provider_jambo.operators.anonymized_branch_operator import JamboCreateAnonymizedBranchOperator
from airflow_provider_jambo.operators.branch_operators import JamboCreateBranchOperator
from airflow_provider_jambo.triggers import wait_trigger
from airflow_provider_jambo.triggers.wait_trigger import UNKNOWN_STATE, JamboWaitTrigger, task_state


def create_op(**kwargs: Any) -> JamboCreateBranchOperator:
    kwargs.setdefault("deferrable", True)
    kwargs.setdefault("defer_grace_seconds", 0)
    kwargs.setdefault("poll_interval", 0.05)
    return JamboCreateBranchOperator(task_id="test_task", branch_name="kill-1", **kwargs)


def names(project: JamboProject) -> list[str]:
    return sorted(b.name for b in project.branches())


def deletes(project: JamboProject) -> list[str]:
    return [r["path"] for r in project.emu.requests() if r["method"] == "DELETE"]


@dataclass
class FakeComms:
    """The triggerer's SUPERVISOR_COMMS for GetTaskStates: answers ``states`` (run id -> key -> state)."""

    states: dict[str, dict[str, str | None]]
    asked: list[Any] = field(default_factory=list)

    async def asend(self, msg: Any) -> Any:
        from airflow.sdk.execution_time.comms import GetTaskStates, TaskStatesResult

        if not isinstance(msg, GetTaskStates):
            return None  # MaskSecret: the hook masks the key through the supervisor too
        self.asked.append(msg)
        return TaskStatesResult(task_states=self.states)

    def send(self, msg: Any) -> Any:
        return None  # MaskSecret from sync code; nothing else is sent here


def task_runner_module() -> Any:
    """The Task SDK's task_runner (its SUPERVISOR_COMMS); skips where the triggerer cannot read states."""
    comms_module = pytest.importorskip("airflow.sdk.execution_time.comms", reason="Airflow 3: the Task SDK")
    if not hasattr(comms_module, "GetTaskStates"):
        pytest.skip("this Airflow's triggerer cannot read task states")
    from airflow.sdk.execution_time import task_runner

    return task_runner


def with_task_state(monkeypatch: pytest.MonkeyPatch, trigger: JamboWaitTrigger, state: str | None) -> None:
    """The task's state as the triggerer would read it (reading it: the task_state tests below).
    Patched in, not the comms: a fake SUPERVISOR_COMMS would also answer the hook's connection
    lookup on some Airflow 3 lines."""

    async def read(ti: Any) -> str | None:
        assert ti is trigger.task_instance
        return state

    monkeypatch.setattr(wait_trigger, "task_state", read)
    trigger.task_instance = make_context()["ti"]  # what the triggerer sets on every trigger it runs


def test_the_create_trigger_carries_the_created_branch_id_only(live_project: JamboProject) -> None:
    deferred = defer(create_op(), make_context())
    trigger = roundtrip(deferred.trigger)
    created = next(b for b in live_project.branches() if b.name == "kill-1")
    _, kwargs = trigger.serialize()
    assert kwargs["delete_on_kill"] == created.id
    assert live_project.emu.api_key not in json.dumps(kwargs)  # ids only


def test_an_adopted_branch_is_not_given_to_the_trigger(live_project: JamboProject) -> None:
    parent = live_project.default_branch_id
    mine = CreateBranchRequest(name="kill-1", parent_id=parent, annotations={"who": "me"})
    live_project.hook().branches.create(mine)
    deferred = defer(create_op(), make_context())
    assert deferred.trigger.serialize()[1]["delete_on_kill"] is None


def test_keep_on_failure_gives_the_trigger_nothing_to_delete(live_project: JamboProject) -> None:
    deferred = defer(create_op(keep_on_failure=True), make_context())
    assert deferred.trigger.serialize()[1]["delete_on_kill"] is None


def test_on_kill_waits_for_the_create_then_deletes_its_branch(live_project: JamboProject) -> None:
    live_project.emu.set_operation_durations(default=1.0)
    deferred = defer(create_op(), make_context())
    trigger = roundtrip(deferred.trigger)
    branch_id = trigger.serialize()[1]["delete_on_kill"]
    live_project.emu.clear_requests()
    asyncio.run(trigger.on_kill())
    assert names(live_project) == ["main"]
    # One DELETE, by id, sent once the create's operations had finished (no 423 answered).
    sent = [r for r in live_project.emu.requests() if r["method"] == "DELETE"]
    assert [r["path"].rsplit("/", 1)[-1] for r in sent] == [branch_id]
    assert [r["status"] for r in sent] == [200]


def test_the_delete_outlives_the_runners_repeated_cancels(live_project: JamboProject) -> None:
    """Airflow 3.3.2's runner cancels a killed trigger's task again at every sync round, on_kill
    included: the delete goes on in its own task."""
    live_project.emu.set_operation_durations(default=1.0)
    trigger = roundtrip(defer(create_op(), make_context()).trigger)

    async def cancelled_again() -> None:
        killing = asyncio.create_task(trigger.on_kill())
        await asyncio.sleep(0.2)  # inside the wait for the create's operations
        killing.cancel("__airflow_user_action__")
        with pytest.raises(asyncio.CancelledError):
            await killing
        await asyncio.gather(*wait_trigger._CLEANUPS)

    live_project.emu.clear_requests()
    asyncio.run(cancelled_again())
    assert names(live_project) == ["main"]
    assert len(deletes(live_project)) == 1


def test_on_kill_deletes_by_id_never_a_later_branch_of_the_same_name(live_project: JamboProject) -> None:
    deferred = defer(create_op(), make_context())
    trigger = roundtrip(deferred.trigger)
    hook = live_project.hook()
    first = next(b for b in live_project.branches() if b.name == "kill-1")
    hook.operations.wait(
        [op.id for op in hook.operations.in_flight(live_project.project_id)],
        project_id=live_project.project_id,
        timeout=30,
    ).raise_for_status()
    ops = hook.branches.delete(first.id, project_id=live_project.project_id)
    hook.operations.wait(ops, project_id=live_project.project_id, timeout=30).raise_for_status()
    # Someone else makes a branch of that name before the kill arrives.
    again = hook.branches.create(CreateBranchRequest(name="kill-1", parent_id=live_project.default_branch_id))
    hook.operations.wait(again.operations, project_id=live_project.project_id, timeout=30).raise_for_status()
    asyncio.run(trigger.on_kill())
    assert [b.id for b in live_project.branches() if b.name == "kill-1"] == [again.branch.id]


@pytest.mark.parametrize("state", ["failed", "skipped", "upstream_failed"])
def test_a_task_marked_failed_loses_its_branch(
    live_project: JamboProject, monkeypatch: pytest.MonkeyPatch, state: str
) -> None:
    trigger = roundtrip(defer(create_op(), make_context()).trigger)
    with_task_state(monkeypatch, trigger, state)
    asyncio.run(trigger.on_kill())
    assert names(live_project) == ["main"]


def test_the_state_is_asked_for_this_task_instance(monkeypatch: pytest.MonkeyPatch) -> None:
    task_runner = task_runner_module()

    ti = make_context()["ti"]
    comms = FakeComms({ti.run_id: {"test_task": "failed"}})
    monkeypatch.setattr(task_runner, "SUPERVISOR_COMMS", comms, raising=False)
    assert asyncio.run(task_state(ti)) == "failed"
    (asked,) = comms.asked
    assert (asked.dag_id, asked.task_ids, asked.run_ids) == ("test_dag", ["test_task"], [ti.run_id])
    assert asked.map_index == -1


@pytest.mark.parametrize("state", ["deferred", "success", None, "scheduled", "queued", "running"])
def test_a_task_still_deferred_elsewhere_marked_success_or_cleared_keeps_its_branch(
    live_project: JamboProject, monkeypatch: pytest.MonkeyPatch, state: str | None
) -> None:
    """Deferred: the trigger moved to another triggerer. Cleared (None, then on its way to the next
    try): that try adopts the branch, so deleting it here would race the adoption."""
    trigger = roundtrip(defer(create_op(), make_context()).trigger)
    with_task_state(monkeypatch, trigger, state)
    live_project.emu.clear_requests()
    asyncio.run(trigger.on_kill())
    assert names(live_project) == ["kill-1", "main"]
    assert deletes(live_project) == []


def test_a_mapped_task_is_looked_up_by_its_map_index(monkeypatch: pytest.MonkeyPatch) -> None:
    task_runner = task_runner_module()

    ti = make_context()["ti"]
    ti.map_index = 3
    comms = FakeComms({ti.run_id: {"test_task": "deferred", "test_task_3": "failed"}})
    monkeypatch.setattr(task_runner, "SUPERVISOR_COMMS", comms, raising=False)
    assert asyncio.run(task_state(ti)) == "failed"
    assert comms.asked[0].map_index == 3


def test_a_state_that_cannot_be_read_is_unknown(monkeypatch: pytest.MonkeyPatch) -> None:
    task_runner = task_runner_module()

    ti = make_context()["ti"]
    monkeypatch.setattr(task_runner, "SUPERVISOR_COMMS", FakeComms({}), raising=False)
    assert asyncio.run(task_state(ti)) == UNKNOWN_STATE
    assert asyncio.run(task_state(None)) == UNKNOWN_STATE


def test_a_trigger_without_a_branch_sends_nothing(live_project: JamboProject) -> None:
    trigger = roundtrip(defer(create_op(keep_on_failure=True), make_context()).trigger)
    live_project.emu.clear_requests()
    asyncio.run(trigger.on_kill())
    assert live_project.emu.requests() == []
    assert names(live_project) == ["kill-1", "main"]


def test_the_anonymization_trigger_deletes_the_branch_after_a_resume(live_project: JamboProject) -> None:
    """Deferred twice (the create, then the anonymization): the second trigger still knows the branch
    this try created, from the resume's result."""
    from operators.deferral import run_trigger

    from airflow_provider_jambo.masking_rules import MaskingRule

    def anon_op() -> JamboCreateAnonymizedBranchOperator:
        return JamboCreateAnonymizedBranchOperator(
            task_id="test_task",
            branch_name="kill-1",
            masking_rules=[MaskingRule("neondb", "public", "users", "email", "anon.fake_email()")],
            deferrable=True,
            defer_grace_seconds=0,
            poll_interval=0.05,
        )

    context = make_context()
    first = defer(anon_op(), context)
    event = run_trigger(roundtrip(first.trigger))
    from airflow.providers.common.compat.sdk import TaskDeferred

    resume_kwargs = {**(first.kwargs or {}), "event": event.payload}
    with pytest.raises(TaskDeferred) as second:
        anon_op().resume_execution(first.method_name, resume_kwargs, context)
    trigger = roundtrip(second.value.trigger)
    assert trigger.serialize()[1]["delete_on_kill"] == first.trigger.serialize()[1]["delete_on_kill"]
    asyncio.run(trigger.on_kill())
    assert names(live_project) == ["main"]


def test_a_delete_that_fails_is_logged_not_raised(
    live_project: JamboProject, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    from airflow_provider_jambo.hooks.retry import RetryPolicy
    from airflow_provider_jambo.triggers.operation_trigger import JamboOperationTrigger

    hook = live_project.hook()
    made = hook.branches.create(CreateBranchRequest(name="kill-1", parent_id=live_project.default_branch_id))
    hook.operations.wait(made.operations, project_id=live_project.project_id, timeout=30).raise_for_status()
    live_project.emu.inject_fault(
        "DELETE",
        "/projects/{project_id}/branches/{branch_id}",
        faults=[{"kind": "status", "status": 503}] * 10,
    )
    fast = RetryPolicy(max_attempts=2, max_elapsed=2, initial_wait=0.01, max_wait=0.05).to_dict()
    trigger = JamboOperationTrigger(
        jambo_conn_id="jambo_default",
        project_id=live_project.project_id,
        operation_ids=[],
        deadline=time.time() + 30,
        retry_policy=fast,
        delete_on_kill=made.branch.id,
    )
    asyncio.run(trigger.on_kill())  # no exception: Airflow would only log it
    assert names(live_project) == ["kill-1", "main"]
    logged = caplog.text + capsys.readouterr().out  # Airflow 3 logs through structlog to stdout
    assert f"deleting branch {made.branch.id}, which its try created, failed" in logged
    assert "503 service unavailable" in logged
