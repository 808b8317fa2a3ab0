"""The provider in a real Airflow deployment (LocalExecutor), as issue 8 found it broken.

One stack for the module: PostgreSQL metadata DB, api-server, scheduler, dag-processor and triggerer
as separate processes, the emulator with its data plane and 3-second operations. Every run is a
manual trigger through the REST API without a logical date (the scheduled report also runs through
its schedule; the branch-events example through its asset watcher). Each case checks the run's and
its tasks' states, and each that runs the branch operators that only ``main`` is left. Crashes
during runs (issue 22) are ``test_local_executor_crashes.py``'s, on a stack of their own.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from airflow_stack import AirflowStack, StackError, wait_until
from stack_support import (
    DBT_PREVIEW,
    TIMINGS,
    Run,
    assert_all_success,
    assert_only_main,
    branch_posts,
    dbt_ready,
    finish,
    fresh_case,
    main_has_dbt_relations,
    run_dag,
    trigger,
)

pytestmark = pytest.mark.deployment

EPHEMERAL = "example_jambo_ephemeral_branch"
COMPUTE = "example_jambo_compute"
PREVIEW = "example_jambo_preview_environment"


@pytest.fixture
def stack(local_stack: AirflowStack) -> Iterator[AirflowStack]:
    yield from fresh_case(local_stack)


def _main_state(stack: AirflowStack) -> tuple[int, bool]:
    """(orders on main, whether main has the preview's customer_revenue table)."""
    with psycopg.connect(stack.main_connection_uri(), connect_timeout=20) as conn:
        orders = conn.execute("SELECT count(*) FROM orders").fetchone()
        table = conn.execute("SELECT to_regclass('public.customer_revenue')").fetchone()
    return (orders[0] if orders else -1, bool(table and table[0]))


@pytest.mark.parametrize(
    "dag_id",
    [
        EPHEMERAL,
        PREVIEW,
        # @task.jambo_branch: the branch is made and deleted inside one task's worker process.
        "example_jambo_branch_task",
    ],
)
def test_example_dag_manual_run(stack: AirflowStack, dag_id: str) -> None:
    """(example_jambo_compute: test_five_consecutive_compute_runs; the janitor and the scheduled
    report: their own cases below.)"""
    run = run_dag(stack, dag_id)
    assert_all_success(run)
    assert run.run_id.startswith("manual__")
    assert_only_main(stack)


def test_operation_sensor_manual_run_skips_the_wait_by_id(stack: AirflowStack) -> None:
    """No ids given (the default): the branch wait runs, the wait by id is skipped, not failed."""
    run = run_dag(stack, "example_jambo_operation_sensor")
    assert run.state == "success", run.describe()  # type: ignore[attr-defined]
    states = run.task_states  # type: ignore[attr-defined]
    assert states == {
        "wait_for_branch": "success",
        "ids_given": "success",
        "wait_for_ids": "skipped",
        "report": "success",
    }, run.describe()  # type: ignore[attr-defined]
    assert_only_main(stack)


def test_janitor_manual_run_deletes_a_stale_preview_branch(stack: AirflowStack) -> None:
    with stack.emulator_api() as api:
        main = next(b for b in stack.branches() if b["name"] == "main")
        created = api.post(
            "/projects/stack-project/branches",
            json={
                "branch": {"name": "preview-stale", "parent_id": main["id"]},
                "annotation_value": {"dag_id": PREVIEW},
            },
        )
        assert created.status_code == 201, created.text
        wait_until(lambda: stack.operations_done(api), 60, "the stale branch's operations")
    run = run_dag(stack, "example_jambo_janitor", {"dry_run": False, "max_age_hours": 0})
    assert_all_success(run)
    plan = stack.xcom(run.dag_id, run.run_id, "delete_stale_branches")
    assert [b["name"] for b in plan["deleted"]] == ["preview-stale"], plan
    assert_only_main(stack)


def _scheduled_run(stack: AirflowStack, dag_id: str) -> Run:
    """Unpause a daily DAG, let the scheduler make its latest interval's run (catchup=False), wait
    for that run to end, and pause the DAG again."""
    started = time.monotonic()
    stack.unpause(dag_id)
    try:
        wait_until(lambda: bool(stack.dag_runs(dag_id)), 120, "the scheduler to create the scheduled run")
        scheduled = stack.dag_runs(dag_id)[0]
        assert scheduled["run_type"] == "scheduled", scheduled
        return finish(stack, dag_id, scheduled["dag_run_id"], started)
    finally:
        stack.unpause(dag_id, paused=True)


def test_scheduled_report_through_its_schedule(stack: AirflowStack) -> None:
    """Unpaused, the daily DAG gets its latest interval's run from the scheduler (catchup=False).

    Its interval ended at the last midnight, before the stack started: the stack back-dates its
    project (``StackOptions.backdate``), so ``main`` as it was then is the seed data."""
    dag_id = "example_jambo_scheduled_report"
    run = _scheduled_run(stack, dag_id)
    assert_all_success(run)
    branch = stack.xcom(dag_id, run.run_id, "branch_at_interval_end")
    assert branch["branch_name"].startswith("report-"), branch
    assert isinstance(stack.xcom(dag_id, run.run_id, "revenue_report"), list)
    assert_only_main(stack)


def test_nightly_snapshot_through_its_schedule(stack: AirflowStack) -> None:
    """Issue 21's example, scheduled like the report: its snapshot of ``main`` at the last midnight
    (the back-dated project existed then) is restored to a report branch, which is gone after."""
    dag_id = "example_jambo_nightly_snapshot"
    run = _scheduled_run(stack, dag_id)
    assert_all_success(run)
    snapshot = stack.xcom(dag_id, run.run_id, "snapshot_main")
    assert snapshot["timestamp"].endswith("T00:00:00Z"), snapshot
    restored = stack.xcom(dag_id, run.run_id, "restore_latest")
    assert restored["snapshot_id"] == snapshot["snapshot_id"], restored
    assert isinstance(stack.xcom(dag_id, run.run_id, "revenue_report"), list)
    assert_only_main(stack)


def test_five_consecutive_compute_runs_with_3s_operations(stack: AirflowStack) -> None:
    """Issue 8, case 2: 3 s operations under deferral raced Airflow's requeue (3 of 5 runs failed).
    Also the compute example's manual run: its read-only compute is gone again afterwards."""
    runs = [run_dag(stack, COMPUTE) for _ in range(5)]
    assert [r.state for r in runs] == ["success"] * 5, [r.describe() for r in runs]
    for run in runs:
        assert_all_success(run)
        assert {ti["try_number"] for ti in run.tasks.values()} == {1}, run.describe()
    assert_only_main(stack)
    with stack.emulator_api() as api:
        main = next(b for b in stack.branches() if b["name"] == "main")
        endpoints = api.get("/projects/stack-project/endpoints").json()["endpoints"]
    assert [(e["branch_id"], e["type"]) for e in endpoints] == [(main["id"], "read_write")]


def test_create_whose_wait_fails_leaves_no_branch(stack: AirflowStack) -> None:
    stack.control("POST", "operation_outcomes", {"action": "create_branch", "outcome": "failed", "times": 1})
    run = run_dag(stack, EPHEMERAL)
    assert run.state == "failed", run.describe()
    assert run.task_states["create_branch"] == "failed", run.describe()
    assert run.task_states["work"] == "upstream_failed", run.describe()
    assert len(branch_posts(stack)) == 1
    assert_only_main(stack)


def test_create_whose_triggerer_lacks_the_connection_leaves_no_branch(stack: AirflowStack) -> None:
    """The trigger cannot load ``jambo_default``: the task fails in the worker and deletes its branch."""
    # Longer than the inline grace (10 s; with start_compute the create's operations take 17 s), so
    # the wait defers to the triggerer; no longer, since the branch's delete queues behind them.
    stack.control("PATCH", "operation_durations", {"create_branch": 14.0})
    stack.stop_component("triggerer")
    stack.start_component("triggerer", with_connection=False)
    try:
        run = run_dag(stack, EPHEMERAL)
    finally:
        stack.stop_component("triggerer")
        stack.start_component("triggerer")
    assert run.state == "failed", run.describe()
    assert run.task_states["create_branch"] == "failed", run.describe()
    assert len(branch_posts(stack)) == 1
    assert_only_main(stack, timeout=60)


def test_ten_simultaneous_ephemeral_runs_on_one_project(stack: AirflowStack) -> None:
    """Issue 8, case 4: 423s from concurrent mutations queue up instead of failing.

    Operations of 2 s, not 3: the project's lock is what the runs queue on, and with 3 s each run
    holds it ~13 s (create, start, suspend, delete), so the case took ~150 s. At 2 s the queue is
    still ~100 s long, longer than the 66-82 s after which the old attempt-bounded retries failed,
    and the later runs still defer while they wait (the deferral race below)."""
    stack.control("PATCH", "operation_durations", {"default": 2.0})
    started = [trigger(stack, EPHEMERAL) for _ in range(10)]
    try:
        runs = [finish(stack, EPHEMERAL, run_id, t0, timeout=420) for run_id, t0 in started]
    finally:
        stack.unpause(EPHEMERAL, paused=True)
    assert [r.state for r in runs] == ["success"] * 10, [r.describe() for r in runs]
    for run in runs:
        assert_all_success(run)
        # One try each (a deferral resumes in the same try): no failure was retried away.
        assert {ti["try_number"] for ti in run.tasks.values()} == {1}, run.describe()
    assert len(branch_posts(stack)) >= 10
    assert_only_main(stack)


def test_preview_with_bad_data_fails_at_the_check_and_deletes_the_branch(stack: AirflowStack) -> None:
    before = _main_state(stack)
    run = run_dag(stack, PREVIEW, {"inject_bad_data": True})
    assert run.state == "failed", run.describe()
    assert run.task_states["check_data_quality"] == "failed", run.describe()
    assert run.task_states["schema_diff"] == "upstream_failed", run.describe()
    assert run.task_states["delete_branch"] == "success", run.describe()
    assert run.task_states["create_branch"] == "success", run.describe()
    assert_only_main(stack)
    assert _main_state(stack) == before == (6, False)


# --- issue 19: dbt on a branch with Cosmos --------------------------------------------------------


def test_dbt_preview_builds_on_a_branch_and_a_failing_dbt_test_still_deletes_it(stack: AirflowStack) -> None:
    """The Cosmos task group runs the real dbt in the worker's task processes, each asking the API for
    the branch's connection; with a bad row a dbt test fails and the teardown deletes the branch."""
    dbt_ready(stack)
    run = run_dag(stack, DBT_PREVIEW, timeout=600)
    assert_all_success(run)
    assert sum(task_id.startswith("dbt.") for task_id in run.tasks) == 6, run.describe()
    assert_only_main(stack)
    assert not main_has_dbt_relations(stack)

    run = run_dag(stack, DBT_PREVIEW, {"inject_bad_data": True}, timeout=600)
    assert run.state == "failed", run.describe()
    assert run.task_states["dbt.stg_orders_model_build"] == "failed", run.describe()
    assert run.task_states["schema_diff"] == "upstream_failed", run.describe()
    assert run.task_states["delete_branch"] == "success", run.describe()
    assert_only_main(stack)
    assert _main_state(stack) == (6, False)
    assert not main_has_dbt_relations(stack)


# --- issue 20: DAGs started by branches made outside Airflow --------------------------------------

BRANCH_EVENTS = "example_jambo_branch_events"
#: The example watcher's interval (seconds): its state is written one listing after an event.
WATCH_POLL = 5.0
LISTING = "/projects/{project_id}/branches"


def _listings(stack: AirflowStack) -> int:
    """GETs of the branch listing in the emulator's request log (only the watcher lists, here)."""
    return sum(
        1
        for r in stack.control("GET", "requests")["requests"]
        if r["method"] == "GET" and r["route"] == LISTING
    )


def _create_outside(stack: AirflowStack, name: str) -> float:
    """A branch made through the raw API, as a CI job would; returns when (epoch seconds)."""
    main = next(b for b in stack.branches() if b["name"] == "main")
    deadline = time.monotonic() + 60
    with stack.emulator_api() as api:
        while True:
            response = api.post(
                "/projects/stack-project/branches", json={"branch": {"name": name, "parent_id": main["id"]}}
            )
            # 423 while the last create's operations run (3 s each here): retried, as its docs say.
            if response.status_code != 423 or time.monotonic() > deadline:
                response.raise_for_status()
                return time.time()
            time.sleep(1)


def _consumed(stack: AirflowStack) -> tuple[list[str], list[dict[str, Any]]]:
    """Every branch name the consumer's runs read from their events (with repeats), and the runs."""
    runs = stack.dag_runs(BRANCH_EVENTS)
    names: list[str] = []
    for run in runs:
        if run["state"] == "success":
            names += [
                b["branch_name"] for b in stack.xcom(BRANCH_EVENTS, run["dag_run_id"], "branches_from_events")
            ]
    return names, runs


def _until_consumed(stack: AirflowStack, expected: set[str], timeout: float = 180) -> list[str]:
    def done() -> bool:
        names, runs = _consumed(stack)
        return expected <= set(names) and all(r["state"] in ("success", "failed") for r in runs)

    wait_until(
        done, timeout, f"runs of {BRANCH_EVENTS} for {sorted(expected)}", stack.check_running, interval=1
    )
    return _consumed(stack)[0]


def _watch(stack: AirflowStack) -> None:
    """Unpause the consumer and have its file parsed now (watchers register at parse, unpaused only)."""
    stack.unpause(BRANCH_EVENTS)
    with stack.api() as api:
        token = api.get(f"/dags/{BRANCH_EVENTS}").json()["file_token"]
        api.put(f"/parseDagFile/{token}").raise_for_status()
    before = _listings(stack)
    wait_until(
        lambda: _listings(stack) >= before + 2, 120, "the watcher's first listings", stack.check_running
    )


def test_branches_made_outside_airflow_each_start_the_consumer_once(stack: AirflowStack) -> None:
    """Issue 20: watched branches reach the consumer exactly once, others never; a triggerer
    SIGKILLed and restarted between creations loses and repeats nothing (the asset state store)."""
    made: dict[str, float] = {}
    try:
        _watch(stack)
        made["preview/one"] = _create_outside(stack, "preview/one")
        _create_outside(stack, "feature/not-watched")
        _until_consumed(stack, {"preview/one"})
        # The state covering an event is written at the watcher's next listing (triggers/events.py).
        time.sleep(WATCH_POLL + 2)
        stack.kill_component("triggerer")
        made["preview/two"] = _create_outside(stack, "preview/two")  # while no triggerer runs
        stack.start_component("triggerer")
        _until_consumed(stack, {"preview/one", "preview/two"}, timeout=240)
        made["preview/three"] = _create_outside(stack, "preview/three")
        _until_consumed(stack, set(made))
        time.sleep(2 * WATCH_POLL)  # two more listings: time for a repeat to show
        names, runs = _consumed(stack)
    finally:
        stack.unpause(BRANCH_EVENTS, paused=True)
    assert sorted(names) == sorted(made), names
    assert {r["state"] for r in runs} == {"success"}, runs
    for name, at in made.items():
        run = next(
            r
            for r in runs
            if name
            in [b["branch_name"] for b in stack.xcom(BRANCH_EVENTS, r["dag_run_id"], "branches_from_events")]
        )
        queued = datetime.fromisoformat(run["queued_at"]).timestamp()
        TIMINGS.append(f"local   branch event {name:<22} created -> run queued {queued - at:6.1f} s")


WATCHERS_DAG = "jambo_twenty_branch_watchers"
DAG_FILES = Path(__file__).resolve().parent / "dag_files"
LOCAL_BUNDLE = "airflow.dag_processing.bundles.local.LocalDagBundle"


def _listing_rate(stack: AirflowStack, seconds: float) -> float:
    """Branch listings per minute over ``seconds`` (the emulator's request log)."""
    stack.control("DELETE", "requests")
    time.sleep(seconds)
    return _listings(stack) * 60.0 / seconds


def _watcher_triggers(stack: AirflowStack) -> int:
    ((count,),) = stack.metadata_rows(
        "SELECT count(*) FROM trigger WHERE classpath LIKE '%JamboBranchEventTrigger'"
    )
    return int(count or 0)


def _reparse(stack: AirflowStack, dag_id: str) -> None:
    with stack.api() as api:
        token = api.get(f"/dags/{dag_id}").json()["file_token"]
        api.put(f"/parseDagFile/{token}").raise_for_status()


def test_twenty_watchers_on_one_project_keep_the_request_rate_of_one(stack: AirflowStack) -> None:
    """Issue 20: twenty more watchers of the project (a second DAG bundle, this folder's DAG) and the
    triggerer still lists the project's branches once per interval."""
    bundles = [
        {"name": "dags-folder", "classpath": LOCAL_BUNDLE, "kwargs": {}},
        {"name": "jambo-test-dags", "classpath": LOCAL_BUNDLE, "kwargs": {"path": str(DAG_FILES)}},
    ]
    try:
        _watch(stack)
        wait_until(lambda: _watcher_triggers(stack) == 1, 60, "one watcher", stack.check_running)
        alone = _listing_rate(stack, 20)
        stack.stop_component("dag-processor")
        stack.start_component(
            "dag-processor", extra_env={"AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST": json.dumps(bundles)}
        )
        stack.unpause(WATCHERS_DAG)
        _reparse(stack, WATCHERS_DAG)
        wait_until(lambda: _watcher_triggers(stack) == 21, 120, "twenty-one watchers", stack.check_running)
        time.sleep(WATCH_POLL)  # the triggerer has started them all
        together = _listing_rate(stack, 20)
    finally:
        stack.unpause(BRANCH_EVENTS, paused=True)
        with contextlib.suppress(StackError):
            stack.unpause(WATCHERS_DAG, paused=True)
        stack.stop_component("dag-processor")
        stack.start_component("dag-processor")
    TIMINGS.append(f"local   branch listings per minute: 1 watcher {alone:.1f}, 21 watchers {together:.1f}")
    assert 9 <= alone <= 15  # one listing per 5 s, give or take one at the window's edges
    assert together <= alone + 3  # one listing more at most, not twenty times as many
