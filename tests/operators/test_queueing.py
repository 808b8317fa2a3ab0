"""Short operations finish inline (the grace), and a locked project (423) is a queue, not a failure."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import airflow
import pytest
from jambo_support import JamboProject, make_context
from operators.deferral import defer, roundtrip, run_trigger

from airflow_provider_jambo.create_branch_request import CreateBranchRequest
from airflow_provider_jambo.exceptions import JamboError, JamboOperationTimeoutError
from airflow_provider_jambo.operators.branch_operators import JamboCreateBranchOperator
from airflow_provider_jambo.triggers.operation_trigger import JamboOperationTrigger
from airflow_provider_jambo.triggers.project_idle_trigger import JamboProjectIdleTrigger


def create_op(name: str, **kwargs: Any) -> JamboCreateBranchOperator:
    kwargs.setdefault("deferrable", False)
    kwargs.setdefault("poll_interval", 0.1)
    return JamboCreateBranchOperator(task_id="test_task", branch_name=name, **kwargs)


def statuses(project: JamboProject, method: str, suffix: str) -> list[int]:
    return [
        r["status"] for r in project.emu.requests() if r["method"] == method and r["path"].endswith(suffix)
    ]


# --- the grace ------------------------------------------------------------------------------------


def test_short_operations_finish_inline_without_a_deferral(live_project: JamboProject) -> None:
    op = create_op("grace-1", deferrable=True, defer_grace_seconds=5)
    result = op.execute(make_context())  # no TaskDeferred: done within the grace
    assert result is not None
    assert result["created"] is True
    assert live_project.branch_named("grace-1").current_state == "ready"


def test_operations_still_pending_after_the_grace_are_deferred(live_project: JamboProject) -> None:
    live_project.emu.set_operation_durations(default=3)
    op = create_op("grace-2", deferrable=True, defer_grace_seconds=0.3)
    started = time.time()
    deferred = defer(op, make_context())
    # It defers as soon as its next look would come after the grace (not sleeping through it).
    assert time.time() - started < 2.5
    assert type(deferred.trigger) is JamboOperationTrigger
    # One deadline for the task: the trigger's is the operator's, not restarted by the grace.
    assert deferred.trigger.deadline == pytest.approx(op.run_deadline())


@pytest.mark.parametrize("grace", [-1, "10", True])
def test_bad_grace_is_refused_at_parse_time(grace: Any) -> None:
    with pytest.raises(JamboError, match="defer_grace_seconds must be a non-negative number of seconds"):
        create_op("x", defer_grace_seconds=grace)


# --- 423: queue on the project's operations in flight ---------------------------------------------


@pytest.mark.skipif(
    int(airflow.__version__.split(".")[0]) < 3,
    reason="Airflow 2.11's ExecutorSafeguard keeps per-thread state that breaks operators executed in "
    "threads of one process (a test-only construct: a real deployment runs each task in its own process)",
)
def test_simultaneous_creates_on_one_project_all_succeed(live_project: JamboProject) -> None:
    """Eight runs at once: the lock rule answers 423 to all but one at a time; none fails."""
    live_project.emu.clear_requests()

    def run(i: int) -> dict[str, Any] | None:
        return create_op(f"queued-{i}", timeout=120).execute(make_context(task_id="test_task"))

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(run, range(8)))
    assert all(r is not None and r["created"] for r in results)
    posts = statuses(live_project, "POST", "/branches")
    assert posts.count(201) == 8
    assert 423 in posts, "the runs did collide (else this test proves nothing)"
    # Waiting happens on the operations list, not by hammering the create: at most a handful of
    # POSTs per run (one per time the project became free and another run won the race).
    assert len(posts) <= 8 * 8
    assert sorted(b.name for b in live_project.branches()) == [
        "main",
        *sorted(f"queued-{i}" for i in range(8)),
    ]


def test_deferrable_create_waits_for_a_locked_project_in_the_triggerer(live_project: JamboProject) -> None:
    live_project.emu.set_operation_durations(default=2)
    hook = live_project.hook()
    hook.branches.create(
        CreateBranchRequest(name="blocker", parent_id=live_project.default_branch_id)
    )  # locks for ~2 s
    live_project.emu.set_operation_durations(default=0.3)
    live_project.emu.clear_requests()
    op = create_op("after-lock", deferrable=True, defer_grace_seconds=0.2)
    context = make_context()
    deferred = defer(op, context)
    assert isinstance(deferred.trigger, JamboProjectIdleTrigger)
    assert deferred.method_name == "execute_unlocked"
    assert statuses(live_project, "POST", "/branches") == [423]
    # The triggerer waits; the task resumes and sends again (a fresh operator, as in a new worker).
    event = run_trigger(roundtrip(deferred.trigger))
    assert event.payload["status"] == "success"
    resumed = create_op("after-lock", deferrable=True, defer_grace_seconds=5)
    result = resumed.resume_execution(
        deferred.method_name, {**deferred.kwargs, "event": event.payload}, context
    )
    assert result["created"] is True
    assert statuses(live_project, "POST", "/branches") == [423, 201]
    # Still the first try's deadline.
    assert resumed.run_deadline() == deferred.kwargs["deadline"]


def test_the_wait_for_a_locked_project_carries_what_was_learned_to_the_triggerer(
    live_project: JamboProject,
) -> None:
    """The idle trigger times its looks at the operations in flight by the spans this task's
    process learned, as the inline wait did: a triggerer elsewhere has learned none. A 4-s
    blocker, learned to take 4 s: a list, a look or two near its end, a list (without the spans
    it polls at the task's ``poll_interval``, 0.1 s here: eleven reads)."""
    from airflow_provider_jambo.api_models import Operation
    from airflow_provider_jambo.hooks.operation_durations import durations_for, forget_durations

    emu = live_project.emu
    learned = durations_for(live_project.project_id)
    for i in range(4):
        raw = {"id": f"old-{i}", "action": "create_branch", "status": "finished", "total_duration_ms": 4000}
        learned.learn(Operation.from_api(raw))
    emu.set_operation_durations(default=4)
    live_project.hook().branches.create(
        CreateBranchRequest(name="blocker", parent_id=live_project.default_branch_id)
    )
    emu.set_operation_durations(default=0.3)
    deferred = defer(create_op("after-lock", deferrable=True, defer_grace_seconds=0.2), make_context())
    assert isinstance(deferred.trigger, JamboProjectIdleTrigger)
    kwargs = deferred.trigger.serialize()[1]
    assert kwargs["durations"] == learned.samples(["create_branch"]) == {"create_branch": [4.0] * 4}
    forget_durations()  # the triggerer is another process
    emu.clear_requests()
    event = run_trigger(roundtrip(deferred.trigger))
    assert event.payload["status"] == "success"
    reads = [r for r in emu.requests() if r["method"] == "GET" and "/operations" in r["path"]]
    assert 3 <= len(reads) <= 4, [r["path"] for r in reads]


def test_a_project_locked_past_the_timeout_fails_naming_the_operations(live_project: JamboProject) -> None:
    live_project.emu.set_operation_durations(default=30)
    live_project.hook().branches.create(
        CreateBranchRequest(name="blocker", parent_id=live_project.default_branch_id)
    )
    with pytest.raises(JamboOperationTimeoutError, match="stayed locked") as info:
        create_op("never", timeout=0.5).execute(make_context())
    assert "create_branch" in str(info.value)
    assert live_project.branch_named("never") is None


def test_idle_trigger_reports_timeout_and_errors(
    live_project: JamboProject, monkeypatch: pytest.MonkeyPatch
) -> None:
    live_project.emu.set_operation_durations(default=30)
    live_project.hook().branches.create(
        CreateBranchRequest(name="blocker", parent_id=live_project.default_branch_id)
    )
    trigger = JamboProjectIdleTrigger(
        jambo_conn_id="jambo_default", project_id=live_project.project_id, deadline=time.time() + 0.3
    )
    event = run_trigger(roundtrip(trigger)).payload
    assert event["status"] == "timeout"
    assert "create_branch" in event["message"]
    with pytest.raises(JamboOperationTimeoutError, match="stayed locked"):
        create_op("x").execute_unlocked(make_context(), event, deadline=time.time())
    # A triggerer without the connection: an error event, never a crash.
    monkeypatch.delenv("AIRFLOW_CONN_JAMBO_DEFAULT")
    missing = run_trigger(
        JamboProjectIdleTrigger(jambo_conn_id="jambo_default", project_id="p-1", deadline=time.time() + 5)
    ).payload
    assert missing["status"] == "error"
    assert "jambo_default" in missing["message"]


def test_the_grace_ends_without_a_look_of_its_own_and_hands_its_trigger_what_was_learned(
    live_project: JamboProject,
) -> None:
    """Operations learned to take 3 and 6 s, a 1-s grace: the next look would come after it, so the
    task defers at once with no read of its own (it used to look once at the grace's end), and its
    trigger carries the spans learned, so a triggerer elsewhere looks when this task would have."""
    from airflow_provider_jambo.api_models import Operation
    from airflow_provider_jambo.hooks.operation_durations import durations_for

    live_project.emu.set_operation_durations(default=3)
    learned = durations_for(live_project.project_id)
    for i in range(4):
        for action, seconds in (("create_branch", 3.0), ("start_compute", 6.0)):
            raw = {"id": f"old-{action}-{i}", "action": action, "status": "finished"}
            learned.learn(Operation.from_api({**raw, "total_duration_ms": int(seconds * 1000)}))
    live_project.emu.clear_requests()
    op = create_op("grace-3", deferrable=True, defer_grace_seconds=1)
    started = time.time()
    deferred = defer(op, make_context())
    assert time.time() - started < 0.8
    reads = [r for r in live_project.emu.requests() if r["method"] == "GET" and "/operations" in r["path"]]
    assert reads == []
    kwargs = deferred.trigger.serialize()[1]
    assert kwargs["durations"] == learned.samples(["create_branch", "start_compute"])
    assert kwargs["durations"]["create_branch"] == [3.0] * 4
    assert {o["action"] for o in kwargs["operations"]} == {"create_branch", "start_compute"}
