"""Helpers of the deployment cases: run a DAG through the REST API and check what it left behind."""

from __future__ import annotations

import contextlib
import importlib.util
import time
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from airflow_stack import DBT_VENV_EXECUTABLE, AirflowStack, StackError, wait_until

#: "<executor> <dag_id> <run state> <seconds>" per run, printed in the terminal summary.
TIMINGS: list[str] = []


def fresh_case(stack: AirflowStack) -> Iterator[AirflowStack]:
    """A case's view of the shared stack: every component up, the emulator reset and re-seeded."""
    stack.check_running()
    stack.reset_emulator()
    yield stack
    stack.check_running()


@dataclass
class Run:
    dag_id: str
    run_id: str
    state: str
    tasks: dict[str, dict[str, Any]]
    seconds: float

    @property
    def task_states(self) -> dict[str, str | None]:
        return {task_id: ti["state"] for task_id, ti in self.tasks.items()}

    def describe(self) -> str:
        return f"{self.dag_id} {self.run_id}: {self.state} {self.task_states}"


def trigger(stack: AirflowStack, dag_id: str, conf: Mapping[str, Any] | None = None) -> tuple[str, float]:
    started = time.monotonic()
    return stack.trigger(dag_id, conf), started


def finish(stack: AirflowStack, dag_id: str, run_id: str, started: float, timeout: float = 300) -> Run:
    """Wait for the run's final state; the DAG is paused again (no scheduled runs between cases)."""
    run = stack.wait_for_run(dag_id, run_id, timeout=timeout)
    seconds = time.monotonic() - started
    result = Run(dag_id, run_id, run["state"], stack.task_instances(dag_id, run_id), seconds)
    TIMINGS.append(f"{stack.options.executor:<7} {dag_id:<36} {result.state:<8} {seconds:6.1f} s")
    return result


def run_dag(
    stack: AirflowStack, dag_id: str, conf: Mapping[str, Any] | None = None, timeout: float = 300
) -> Run:
    """Trigger a manual run (REST API, no logical date) and wait for it."""
    run_id, started = trigger(stack, dag_id, conf)
    try:
        return finish(stack, dag_id, run_id, started, timeout)
    finally:
        stack.unpause(dag_id, paused=True)


def assert_all_success(run: Run) -> None:
    assert run.state == "success", run.describe()
    assert set(run.task_states.values()) == {"success"}, run.describe()


def branch_names(stack: AirflowStack) -> list[str]:
    return sorted(b["name"] for b in stack.branches())


def assert_only_main(stack: AirflowStack, timeout: float = 30) -> None:
    """Only ``main`` is left on the emulator (deletes may still be finishing: allow a few seconds)."""
    deadline = time.monotonic() + timeout
    while (names := branch_names(stack)) != ["main"] and time.monotonic() < deadline:
        time.sleep(1)
    assert names == ["main"], f"branches left on the emulator: {names}"


def branch_posts(stack: AirflowStack) -> list[dict[str, Any]]:
    """Branch-create requests in the emulator's request log."""
    return [
        r
        for r in stack.control("GET", "requests")["requests"]
        if r["method"] == "POST" and r["route"] == "/projects/{project_id}/branches"
    ]


DBT_PREVIEW = "example_jambo_dbt_preview"


def dbt_ready(stack: AirflowStack) -> None:
    """Skip a dbt case where it cannot run: no Cosmos or no dbt virtualenv."""
    if importlib.util.find_spec("cosmos") is None:
        pytest.skip("needs the cosmos extra (astronomer-cosmos)")
    if not DBT_VENV_EXECUTABLE.exists() and "JAMBO_DBT_EXECUTABLE" not in stack.options.extra_env:
        pytest.skip("dbt's virtualenv is missing: run scripts/bootstrap")


def main_has_dbt_relations(stack: AirflowStack) -> bool:
    """Whether anything dbt builds (the ``analytics`` schema) reached ``main``."""
    with psycopg.connect(stack.main_connection_uri(), connect_timeout=20) as conn:
        row = conn.execute("SELECT to_regnamespace('analytics') IS NOT NULL").fetchone()
    return bool(row and row[0])


# --- issue 22: what a chaos case left behind --------------------------------------------------------

BRANCH_ROUTE = "/projects/{project_id}/branches/{branch_id}"
#: The seeded faults of the chaos case: one picked at random when a rule fires. A 423 only on
#: changes (the service never locks a read).
READ_FAULTS: list[dict[str, Any]] = [
    {"kind": "status", "status": 503},
    {"kind": "status", "status": 502},
    {"kind": "rate_limit", "retry_after": "1"},
    {"kind": "latency", "seconds": 1.5},
    {"kind": "drop_after_apply"},
]
CHANGE_FAULTS: list[dict[str, Any]] = [*READ_FAULTS, {"kind": "locked"}]


def inject_faults_everywhere(stack: AirflowStack, probability: float) -> int:
    """A fault rule with ``probability`` on every emulated route and method of the spec; how many."""
    rules = 0
    for op in stack.control("GET", "routes")["operations"]:
        if not op["emulated"]:
            continue
        faults = READ_FAULTS if op["method"] == "GET" else CHANGE_FAULTS
        stack.control(
            "POST",
            "faults",
            {"method": op["method"], "route": op["path"], "faults": faults, "probability": probability},
        )
        rules += 1
    return rules


def created_branch_ids(stack: AirflowStack) -> list[str]:
    """Every branch the emulator created in this case (its create_branch operations: one a branch)."""
    with stack.emulator_api() as api:
        ops = api.get("/projects/stack-project/operations", params={"limit": 1000}).json()["operations"]
    return sorted({op["branch_id"] for op in ops if op["action"] == "create_branch"})


def changes_to(stack: AirflowStack, branch_id: str) -> list[dict[str, Any]]:
    """Requests other than reads that named ``branch_id`` (the emulator's request log)."""
    return [
        r
        for r in stack.control("GET", "requests")["requests"]
        if r["method"] != "GET" and branch_id in r["path"]
    ]


#: Past the example's 6 h TTL on its run-named branches: the emulator's clock is advanced this far.
BEYOND_TTL = 7 * 3600.0


def make_bystander(stack: AirflowStack) -> str:
    """A branch no run made (a user's): nothing may touch it. Its id."""
    main = next(b for b in stack.branches() if b["name"] == "main")
    with stack.emulator_api() as api:
        made = api.post(
            "/projects/stack-project/branches",
            json={"branch": {"name": "bystander", "parent_id": main["id"]}},
        )
        made.raise_for_status()
        wait_until(lambda: stack.operations_done(api), 60, "the bystander's create")
    return str(made.json()["branch"]["id"])


def start_chaos(stack: AirflowStack, durations: Mapping[str, float]) -> tuple[float, str]:
    """A chaos case's start: its clock, a bystander branch, the operations' ``durations`` (per
    action, or ``default``) and an empty request log. Returns (start, the bystander's id)."""
    started = time.monotonic()
    bystander = make_bystander(stack)
    stack.control("PATCH", "operation_durations", dict(durations))
    stack.control("DELETE", "requests")
    return started, bystander


def left_after_safety_net(
    stack: AirflowStack, beyond_seconds: float, *, keep: Collection[str] = (), timeout: float = 60
) -> list[str]:
    """Advance the emulator's clock ``beyond_seconds`` (past every run branch's expiry), give its
    sweeper time to delete what expired; the names still there but ``main`` and ``keep``."""
    stack.control("POST", "clock/advance", {"seconds": beyond_seconds})
    expected = sorted({"main", *keep})
    deadline = time.monotonic() + timeout
    while (names := branch_names(stack)) != expected and time.monotonic() < deadline:
        time.sleep(1)
    return [name for name in names if name not in expected]


@dataclass
class ChaosFigures:
    """One chaos case's figures, printed in the suite's summary (issue 22's note)."""

    case: str
    runs: list[Run]
    left_after_runs: list[str]
    left_after_net: list[str]
    #: Branches created beyond the one each run's XCom names: a create that was lost and not
    #: adopted, or a try's branch deleted by that try and made again by the next.
    duplicate_creates: int
    seconds: float

    def report(self) -> str:
        outcomes: dict[str, int] = {}
        for run in self.runs:
            outcomes[run.state] = outcomes.get(run.state, 0) + 1
        return (
            f"chaos   {self.case:<44} runs {len(self.runs):>3}  outcomes {outcomes}  "
            f"left after runs {len(self.left_after_runs)}  after safety net {len(self.left_after_net)}  "
            f"creates beyond one a run {self.duplicate_creates}  wall {self.seconds:6.1f} s"
            + (f"  left: {self.left_after_runs} / {self.left_after_net}" if self.left_after_net else "")
        )


@dataclass
class ChaosOutcome:
    """What a chaos case left behind (the bystander checked untouched on the way)."""

    left_after_runs: list[str]
    #: Every branch the emulator created in the case (its create operations), the bystander aside.
    created: list[str]
    #: The branch ids the runs' create tasks reported (a create killed before its POST: none).
    xcom_ids: set[str]
    left_after_net: list[str]


def assert_runs_survived_a_restart(runs: list[Run], out: ChaosOutcome) -> None:
    """After a component restarted during ``runs``: each succeeded, or its create failed (naming
    why, and the rest of the run never started). A try that ended deletes what it made (all or
    nothing); a next try, if the task was reset, makes it again. At most one create a try, none
    left."""
    for run in runs:
        failed_create = (
            run.task_states["create_branch"] == "failed" and run.task_states["work"] == "upstream_failed"
        )
        assert run.state == "success" or failed_create, run.describe()
    assert out.xcom_ids <= set(out.created)
    tries = sum(r.tasks["create_branch"]["try_number"] for r in runs)
    assert len(out.created) <= tries, (out.created, tries)
    assert out.left_after_runs == []
    assert out.left_after_net == []


def chaos_outcome(
    stack: AirflowStack,
    dag_id: str,
    case: str,
    runs: list[Run],
    bystander: str,
    started: float,
    *,
    expected_creates: int | None = None,
    note: str = "",
) -> ChaosOutcome:
    """Count what ``runs`` left: branches after the runs, creates against the runs' XComs, and what
    is left once the safety net ran (the emulator's clock advanced past every expiry); check that
    nothing changed the bystander; print the case's figures in the summary. ``expected_creates``:
    how many creates are not duplicates (default: one for each branch a run's XCom names)."""
    left = [n for n in branch_names(stack) if n not in ("main", "bystander")]
    created = [b for b in created_branch_ids(stack) if b != bystander]
    xcom_ids: set[str] = set()
    for run in runs:
        with contextlib.suppress(StackError):  # a create killed before its POST pushed nothing
            xcom_ids.add(stack.xcom(dag_id, run.run_id, "create_branch")["branch_id"])
    assert changes_to(stack, bystander) == []
    net = left_after_safety_net(stack, BEYOND_TTL, keep={"bystander"})
    duplicates = len(created) - (len(xcom_ids) if expected_creates is None else expected_creates)
    TIMINGS.append(
        ChaosFigures(case, runs, left, net, duplicates, time.monotonic() - started).report() + note
    )
    return ChaosOutcome(left, created, xcom_ids, net)
