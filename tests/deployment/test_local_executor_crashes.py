"""Crash-proof runs in a real deployment (LocalExecutor): issue 22's failures, each during runs.

A stack of its own (the same as ``test_local_executor.py``'s: PostgreSQL metadata DB, api-server,
scheduler, dag-processor and triggerer as separate processes, the emulator with its data plane),
so CI runs these cases beside the others. What goes wrong: the triggerer SIGKILLed during a
create's wait; a deferred create marked failed, or cleared, by the user; faults on every route
during 20 runs; a task process SIGKILLed mid-create; the scheduler restarted, and the metadata
database restarted, during runs. Each checks what every run ended as, that each try created at
most one branch, that nothing it did not make was touched, and that nothing is left.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator

import pytest
from airflow_stack import TERMINAL_RUN_STATES, AirflowStack, wait_until
from stack_support import (
    assert_all_success,
    assert_only_main,
    assert_runs_survived_a_restart,
    branch_posts,
    chaos_outcome,
    finish,
    fresh_case,
    inject_faults_everywhere,
    start_chaos,
    trigger,
)

pytestmark = pytest.mark.deployment

EPHEMERAL = "example_jambo_ephemeral_branch"


@pytest.fixture
def stack(local_stack: AirflowStack) -> Iterator[AirflowStack]:
    yield from fresh_case(local_stack)


def test_triggerer_sigkilled_during_a_create_wait(stack: AirflowStack) -> None:
    """A new triggerer takes over the dead one's trigger: one run, one try, one branch POST."""
    stack.control("PATCH", "operation_durations", {"create_branch": 30.0})
    run_id, started = trigger(stack, EPHEMERAL)
    try:
        wait_until(
            lambda: (
                stack.task_instances(EPHEMERAL, run_id).get("create_branch", {}).get("state") == "deferred"
            ),
            90,
            "create_branch to defer",
            stack.check_running,
        )
        stack.kill_component("triggerer")
        stack.start_component("triggerer")
        run = finish(stack, EPHEMERAL, run_id, started, timeout=300)
    finally:
        stack.unpause(EPHEMERAL, paused=True)
    assert_all_success(run)
    assert run.tasks["create_branch"]["try_number"] == 1, run.describe()
    assert len(branch_posts(stack)) == 1, branch_posts(stack)
    assert_only_main(stack)


def _deferred_create(stack: AirflowStack) -> tuple[str, float, str]:
    """A run whose create_branch is deferred (20 s creates: past the 10 s inline grace); returns
    the run id, its start and the id of the branch its create made."""
    stack.control("PATCH", "operation_durations", {"create_branch": 20.0})
    run_id, started = trigger(stack, EPHEMERAL)
    wait_until(
        lambda: stack.task_instances(EPHEMERAL, run_id).get("create_branch", {}).get("state") == "deferred",
        90,
        "create_branch to defer",
        stack.check_running,
    )
    # A trigger no triggerer has started yet gets no on_kill (Airflow only cancels running ones):
    # the user's action comes once the triggerer runs it, as it does a second or two after deferral.
    wait_until(
        lambda: _running_triggers(stack) == 1, 60, "the triggerer to take the trigger", stack.check_running
    )
    time.sleep(2)
    (made,) = [b for b in stack.branches() if b["name"] != "main"]
    return run_id, started, str(made["id"])


def _running_triggers(stack: AirflowStack) -> int:
    """Triggers assigned to a triggerer (the metadata database)."""
    ((count,),) = stack.metadata_rows("SELECT count(*) FROM trigger WHERE triggerer_id IS NOT NULL")
    return int(count or 0)


def _deletes(stack: AirflowStack) -> list[str]:
    """Ids of the branches DELETE was sent for (the emulator's request log)."""
    return [
        r["path"].rsplit("/", 1)[-1]
        for r in stack.control("GET", "requests")["requests"]
        if r["method"] == "DELETE" and r["route"] == "/projects/{project_id}/branches/{branch_id}"
    ]


def test_deferred_create_marked_failed_deletes_its_branch(stack: AirflowStack) -> None:
    """Issue 22: the user marks the deferred create failed (REST API); the triggerer's on_kill
    deletes the branch that try made (no teardown runs: its setup failed)."""
    try:
        run_id, started, branch_id = _deferred_create(stack)
        stack.set_task_state(EPHEMERAL, run_id, "create_branch", "failed")
        run = finish(stack, EPHEMERAL, run_id, started, timeout=180)
        assert_only_main(stack, timeout=60)
    finally:
        stack.unpause(EPHEMERAL, paused=True)
    assert run.state == "failed", run.describe()
    assert run.task_states["create_branch"] == "failed", run.describe()
    assert run.task_states["delete_branch"] != "success", run.describe()  # the trigger deleted it
    assert _deletes(stack) == [branch_id]
    assert len(branch_posts(stack)) == 1


def test_deferred_create_cleared_is_adopted_by_its_next_try(stack: AirflowStack) -> None:
    """Issue 22: the user clears the deferred create; its next try adopts the branch (no second
    create), the run ends as designed and its teardown deletes the branch."""
    try:
        run_id, started, branch_id = _deferred_create(stack)
        stack.clear_task(EPHEMERAL, run_id, "create_branch")
        run = finish(stack, EPHEMERAL, run_id, started, timeout=240)
        assert_only_main(stack, timeout=60)
    finally:
        stack.unpause(EPHEMERAL, paused=True)
    assert_all_success(run)
    assert run.tasks["create_branch"]["try_number"] == 2, run.describe()
    assert stack.xcom(EPHEMERAL, run_id, "create_branch")["branch_id"] == branch_id
    assert len(branch_posts(stack)) == 1
    assert _deletes(stack) == [branch_id]


# --- issue 22: chaos ----------------------------------------------------------------------------


def test_chaos_twenty_runs_with_faults_on_every_route(stack: AirflowStack) -> None:
    """Issue 22 (c): seeded faults at 10 % on every route (5xx, 429, 423 on changes, 1.5 s answers,
    answers lost after the change applied) while 20 runs create, use and delete their branches.
    Every run ends in success; no branch is created twice; the bystander is untouched; nothing is
    left, before or after the safety net. Operations of 0.5 s: the runs queue on the project's lock."""
    t0, bystander = start_chaos(stack, {"default": 0.5})
    rules = inject_faults_everywhere(stack, 0.1)
    assert rules > 20
    try:
        started = [trigger(stack, EPHEMERAL) for _ in range(20)]
        runs = [finish(stack, EPHEMERAL, run_id, t, timeout=600) for run_id, t in started]
    finally:
        injected = sum(rule["injected"] for rule in stack.control("GET", "faults")["faults"])
        stack.control("DELETE", "faults")
        stack.unpause(EPHEMERAL, paused=True)
    time.sleep(10)  # the last teardowns' deletes finish
    out = chaos_outcome(
        stack,
        EPHEMERAL,
        "20 runs, faults 10% on every route (local)",
        runs,
        bystander,
        t0,
        note=f"  faults injected {injected}",
    )
    assert [r.state for r in runs] == ["success"] * 20, [r.describe() for r in runs]
    assert sorted(out.created) == sorted(out.xcom_ids)  # one branch per run, none created twice
    assert out.left_after_runs == []
    assert out.left_after_net == []


def test_chaos_task_process_sigkilled_during_an_inline_create(stack: AirflowStack) -> None:
    """Issue 22 (a): the create's POST was answered and it waits inline (its 10 s grace) when its
    process is SIGKILLed, as the OOM killer does: no cleanup runs. The run fails (the example has no
    retries), naming the killed process; the branch it made is left, and its safety expiry removes
    it once the emulator's clock passes it. One create, nothing else touched."""
    t0, bystander = start_chaos(stack, {"create_branch": 30.0})
    run_id, started = trigger(stack, EPHEMERAL)
    try:
        wait_until(
            lambda: len(stack.branches()) == 3, 120, "the create's POST to be answered", stack.check_running
        )
        pid = stack.task_instances(EPHEMERAL, run_id)["create_branch"]["pid"]
        assert isinstance(pid, int), pid
        os.kill(pid, signal.SIGKILL)
        run = finish(stack, EPHEMERAL, run_id, started, timeout=240)
    finally:
        stack.unpause(EPHEMERAL, paused=True)
    out = chaos_outcome(
        stack,
        EPHEMERAL,
        "task process SIGKILLed in an inline create (local)",
        [run],
        bystander,
        t0,
        expected_creates=1,
    )
    assert run.state == "failed", run.describe()
    assert run.task_states["create_branch"] == "failed", run.describe()
    assert run.task_states["delete_branch"] != "success", run.describe()
    assert len(out.created) == 1
    assert len(out.left_after_runs) == 1  # SIGKILL: no cleanup could run
    assert out.left_after_net == []


def test_chaos_scheduler_restarted_in_the_middle_of_runs(stack: AirflowStack) -> None:
    """Issue 22 (b), the scheduler: restarted (SIGTERM to its process group, as a deploy does)
    while three runs create, use and delete their branches (1 s operations). With LocalExecutor
    the running tasks get the SIGTERM too: a create that gets it deletes its branch (on_kill) and
    fails naming that (the example has no retries; a reset task's next try makes the branch
    again); every other run succeeds; nothing is left. A task whose process went down with the old
    scheduler waits for the heartbeat timeout (Airflow's 300 s; 60 s for the restarted one here),
    then runs again; one the old scheduler had queued but not started waits for the new one's
    orphaned-task check (every 300 s; 60 s here: a run took 329 s with 300 once). (A SIGKILL of the
    scheduler: 388 s for five runs with the 300 s, measured once.)"""
    t0, bystander = start_chaos(stack, {"default": 1.0})
    try:
        started = [trigger(stack, EPHEMERAL) for _ in range(3)]
        wait_until(lambda: len(stack.branches()) >= 3, 120, "the runs' first create", stack.check_running)
        stack.stop_component("scheduler")
        # A task the old scheduler's LocalExecutor took down with it is found by the new one only
        # once its heartbeat times out, and one it had queued only at the new one's orphaned-task
        # check: 60 s each here instead of Airflow's 300 (CI's time; a task's supervisor
        # heartbeats every few seconds, so 60 s is no false alarm).
        stack.start_component(
            "scheduler",
            extra_env={
                "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "60",
                "AIRFLOW__SCHEDULER__ORPHANED_TASKS_CHECK_INTERVAL": "60",
            },
        )
        runs = [finish(stack, EPHEMERAL, run_id, t, timeout=420) for run_id, t in started]
    finally:
        stack.unpause(EPHEMERAL, paused=True)
    time.sleep(5)
    out = chaos_outcome(stack, EPHEMERAL, "scheduler restarted, 3 runs (local)", runs, bystander, t0)
    assert_runs_survived_a_restart(runs, out)


def test_chaos_metadata_database_restarted_in_the_middle_of_runs(stack: AirflowStack) -> None:
    """Issue 22 (b), the metadata database: stopped (fast shutdown: every Airflow session ends)
    for a few seconds while three runs create, use and delete their branches (1 s operations),
    then started again with its data; a component that exits or stops heartbeating meanwhile is
    started again, as a supervisor with liveness probes would. Every run ends as designed
    (success, or a create that failed naming its cause and deleted its branch), at most one
    create a try, nothing touched that a run did not make, nothing left."""
    t0, bystander = start_chaos(stack, {"default": 1.0})
    restarted: list[str] = []
    try:
        started = [trigger(stack, EPHEMERAL) for _ in range(3)]
        wait_until(lambda: len(stack.branches()) >= 3, 120, "the runs' first create", stack.check_running)
        stack.restart_metadata_db(down_seconds=5.0)
        # Components that lose the database may exit, or hang: a supervisor (with liveness
        # probes) starts them again until the runs are over.
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            restarted += stack.supervise()
            states = [stack.dag_run(EPHEMERAL, run_id)["state"] for run_id, _ in started]
            if all(state in TERMINAL_RUN_STATES for state in states):
                break
            time.sleep(2)
        # The loop above already waited: a run still going now is stuck (the error says why).
        runs = [finish(stack, EPHEMERAL, run_id, t, timeout=5) for run_id, t in started]
    finally:
        stack.unpause(EPHEMERAL, paused=True)
    time.sleep(5)
    out = chaos_outcome(
        stack,
        EPHEMERAL,
        f"metadata DB restarted, 3 runs (local; restarted: {','.join(restarted) or 'none'})",
        runs,
        bystander,
        t0,
    )
    assert_runs_survived_a_restart(runs, out)
