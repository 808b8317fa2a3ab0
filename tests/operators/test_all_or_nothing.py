"""All or nothing: a create task that fails after creating its branch deletes it before failing.

Every way a create can fail after its POST: the wait fails or times out (sync and deferred), the
trigger reports an error (e.g. the triggerer lacks the connection), the trigger crashes (Airflow's
``__fail__``), the task is killed (``on_kill``). Only a branch this task created is deleted.
"""

from __future__ import annotations

from typing import Any

import pytest
from jambo_support import JamboProject, make_context
from operators.deferral import defer, roundtrip, run_trigger

from airflow_provider_jambo.create_branch_request import CreateBranchRequest
from airflow_provider_jambo.exceptions import (
    JamboError,
    JamboOperationFailedError,
    JamboOperationTimeoutError,
)
from airflow_provider_jambo.operators.branch_operators import JamboCreateBranchOperator


def create_op(**kwargs: Any) -> JamboCreateBranchOperator:
    kwargs.setdefault("deferrable", False)
    kwargs.setdefault("defer_grace_seconds", 0)
    kwargs.setdefault("poll_interval", 0.05)
    return JamboCreateBranchOperator(task_id="test_task", branch_name="aon-1", **kwargs)


def names(project: JamboProject) -> list[str]:
    return sorted(b.name for b in project.branches())


def branch_posts(project: JamboProject) -> int:
    return sum(1 for r in project.emu.requests() if r["method"] == "POST" and r["path"].endswith("/branches"))


def test_timed_out_wait_deletes_the_branch_once_the_project_is_unlocked(live_project: JamboProject) -> None:
    # The create's operations are still in flight at the timeout, so the delete is locked (423)
    # until they finish: the cleanup waits for them, then deletes.
    live_project.emu.set_operation_durations(default=1.5)
    with pytest.raises(JamboOperationTimeoutError, match="is deleted by this task"):
        create_op(timeout=0.3).execute(make_context())
    assert names(live_project) == ["main"]


def test_failed_operation_in_a_deferred_create_deletes_the_branch(live_project: JamboProject) -> None:
    live_project.emu.set_operation_outcome("create_branch", "error", times=1)
    op = create_op(deferrable=True)
    context = make_context()
    deferred = defer(op, context)
    assert "aon-1" in names(live_project)
    event = run_trigger(roundtrip(deferred.trigger))
    assert event.payload["status"] == "failed"
    # A fresh operator, as the worker that resumes the task builds it.
    resumed = create_op(deferrable=True)
    with pytest.raises(JamboOperationFailedError):
        resumed.resume_execution("execute_complete", {**deferred.kwargs, "event": event.payload}, context)
    assert names(live_project) == ["main"]


def test_error_event_deletes_the_branch(live_project: JamboProject) -> None:
    """What the trigger reports when the triggerer lacks the connection."""
    op = create_op(deferrable=True)
    context = make_context()
    deferred = defer(op, context)
    event = {"status": "error", "operation_ids": [], "message": "connection 'jambo_default' is not defined"}
    with pytest.raises(JamboError, match="is not defined"):
        create_op(deferrable=True).resume_execution(
            "execute_complete", {**deferred.kwargs, "event": event}, context
        )
    assert names(live_project) == ["main"]


def test_crashed_trigger_deletes_the_branch_found_in_xcom(live_project: JamboProject) -> None:
    """Airflow resumes with next_method="__fail__" and only the error in next_kwargs."""
    from airflow.providers.common.compat.sdk import AirflowException

    op = create_op(deferrable=True)
    context = make_context()
    defer(op, context)
    with pytest.raises(AirflowException):
        create_op(deferrable=True).resume_execution(
            "__fail__", {"error": "Trigger failure", "traceback": ["boom"]}, context
        )
    assert names(live_project) == ["main"]


def test_on_kill_deletes_the_branch(live_project: JamboProject) -> None:
    op = create_op(deferrable=True)
    context = make_context()
    defer(op, context)
    op.on_kill()
    assert names(live_project) == ["main"]
    op.on_kill()  # once only: a kill during the cleanup's own failure path does not repeat it


def test_keep_on_failure_keeps_the_branch(live_project: JamboProject) -> None:
    live_project.emu.set_operation_outcome("create_branch", "error", times=1)
    with pytest.raises(JamboOperationFailedError, match="is kept"):
        create_op(keep_on_failure=True).execute(make_context())
    assert names(live_project) == ["aon-1", "main"]


def test_retry_adopts_the_branch_of_a_killed_try_and_deletes_it_when_it_fails(
    live_project: JamboProject,
) -> None:
    # Try 1 was SIGKILLed after its POST (no cleanup could run): its branch is still there.
    live_project.emu.set_operation_durations(default=3)
    with pytest.raises(JamboOperationTimeoutError):
        create_op(timeout=0.2, keep_on_failure=True).execute(make_context(try_number=1))
    live_project.emu.clear_requests()
    # Try 2 adopts it (no second POST) and waits for its operations; when that times out too, it
    # deletes it: the annotations show the same dag, run and task created it.
    with pytest.raises(JamboOperationTimeoutError):
        create_op(timeout=0.3).execute(make_context(try_number=2))
    assert branch_posts(live_project) == 0
    assert names(live_project) == ["main"]


def test_an_adopted_branch_made_by_someone_else_is_never_deleted(live_project: JamboProject) -> None:
    hook = live_project.hook()
    made = hook.branches.create(
        CreateBranchRequest(name="aon-1", parent_id=live_project.default_branch_id, annotations={"who": "me"})
    )
    context = make_context()
    op = create_op(deferrable=True)
    deferred = defer(op, context) if made.operations else None
    assert deferred is not None
    event = {"status": "timeout", "operation_ids": [], "message": "still running"}
    with pytest.raises(JamboOperationTimeoutError):
        create_op(deferrable=True).resume_execution(
            "execute_complete", {**deferred.kwargs, "event": event}, context
        )
    assert names(live_project) == ["aon-1", "main"]


def test_a_task_that_outlives_its_on_kill_fails_instead_of_handing_on_a_deleted_branch(
    live_project: JamboProject, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Airflow 3's SIGTERM handler only calls on_kill; the task goes on unless a SIGKILL follows
    (found in the deployment suite: a scheduler restart's SIGTERM, then the run's work task got a
    branch that was gone). Here on_kill comes in the middle of the inline wait, as the signal does."""
    from airflow_provider_jambo.hooks.resources.operations import OperationsApi

    op = create_op()
    real_wait = OperationsApi.wait

    def wait_after_a_sigterm(self: OperationsApi, *args: Any, **kwargs: Any) -> Any:
        monkeypatch.setattr(OperationsApi, "wait", real_wait)
        op.on_kill()
        return real_wait(self, *args, **kwargs)

    monkeypatch.setattr(OperationsApi, "wait", wait_after_a_sigterm)
    with pytest.raises(JamboError, match=r"killed while it created branch .* and deleted it"):
        op.execute(make_context())
    assert names(live_project) == ["main"]
