"""The same provider on CeleryExecutor: Redis broker, two workers as separate processes.

Nothing in the provider may depend on a task running in the process or on the host of another:
the create task's XCom, the connection and the trigger travel between workers. Each worker reports
its own host name (``worker1.stack``, ``worker2.stack``), as task instances on separate machines would.
The stack's cluster policy alternates a run's tasks between the workers (left to Celery, all three
tasks of an ephemeral run once landed on one worker and the case failed by chance)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from airflow_stack import AirflowStack
from stack_support import (
    DBT_PREVIEW,
    assert_only_main,
    chaos_outcome,
    dbt_ready,
    finish,
    fresh_case,
    main_has_dbt_relations,
    run_dag,
    start_chaos,
    trigger,
)

pytestmark = pytest.mark.deployment

WORKERS = {"worker1.stack", "worker2.stack"}
EPHEMERAL = "example_jambo_ephemeral_branch"


@pytest.fixture
def stack(celery_stack: AirflowStack) -> Iterator[AirflowStack]:
    yield from fresh_case(celery_stack)


@pytest.mark.parametrize("dag_id", ["example_jambo_ephemeral_branch", "example_jambo_preview_environment"])
def test_runs_succeed_with_tasks_on_both_workers(stack: AirflowStack, dag_id: str) -> None:
    run = run_dag(stack, dag_id)
    assert run.state == "success", run.describe()
    assert set(run.task_states.values()) == {"success"}, run.describe()
    hosts = {task_id: ti["hostname"] for task_id, ti in run.tasks.items()}
    assert set(hosts.values()) == WORKERS, hosts
    assert_only_main(stack)


def test_dbt_preview_runs_its_cosmos_tasks_on_both_workers(stack: AirflowStack) -> None:
    """Each worker's dbt task builds its own profile from the create task's XCom and the API."""
    dbt_ready(stack)
    run = run_dag(stack, DBT_PREVIEW, timeout=600)
    assert run.state == "success", run.describe()
    assert set(run.task_states.values()) == {"success"}, run.describe()
    dbt_hosts = {ti["hostname"] for task_id, ti in run.tasks.items() if task_id.startswith("dbt.")}
    assert dbt_hosts == WORKERS, dbt_hosts
    assert_only_main(stack)
    assert not main_has_dbt_relations(stack)


def test_chaos_fifty_simultaneous_runs_over_two_workers(stack: AirflowStack) -> None:
    """Issue 22 (d): fifty ephemeral runs at once over the two workers. Operations of 0.3 s: the
    runs queue on the project's lock (one change at a time), so the case's time is that queue.
    Every run succeeds, one branch each, the bystander untouched, nothing left."""
    t0, bystander = start_chaos(stack, {"default": 0.3})
    try:
        started = [trigger(stack, EPHEMERAL) for _ in range(50)]
        runs = [finish(stack, EPHEMERAL, run_id, t, timeout=900) for run_id, t in started]
    finally:
        stack.unpause(EPHEMERAL, paused=True)
    time.sleep(5)  # the last teardowns' deletes finish
    hosts = {ti["hostname"] for r in runs for ti in r.tasks.values()}
    out = chaos_outcome(stack, EPHEMERAL, "50 simultaneous runs, two workers (celery)", runs, bystander, t0)
    assert [r.state for r in runs] == ["success"] * 50, [r.describe() for r in runs if r.state != "success"]
    assert hosts == WORKERS
    assert sorted(out.created) == sorted(out.xcom_ids)
    assert out.left_after_runs == []
    assert out.left_after_net == []
