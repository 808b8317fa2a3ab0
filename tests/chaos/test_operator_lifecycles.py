"""Chaos: branch lifecycles through the operators' ``execute()`` (sync mode) under seeded faults.

Each lifecycle runs ``JamboCreateBranchOperator`` (``if_exists="reuse"``), on every other lifecycle
``JamboResetBranchOperator`` (fed the create's result, as ``branch=create.output`` would be), and
the teardown ``JamboDeleteBranchOperator`` (by exact name, runs whatever happened before). A task
that fails is re-run like Airflow would: a fresh operator, a fresh hook, the next try number.
Some lifecycles get a targeted sequence instead of random faults: the create's response is
dropped after the branch was made and the lookup that follows fails too, so the task fails and its
re-run must adopt the branch (``created`` False), not make a second one.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from chaos_support import (
    ChaosProject,
    FailLookupAfterCreate,
    FastSleep,
    TaskLog,
    account,
    check_invariant,
    faults_injected,
    inject_chaos,
    run_task,
    setup_project,
    start_emulator,
    tag_requests,
)
from jambo_support import make_context

from airflow_provider_jambo.exceptions import JamboServerError
from airflow_provider_jambo.operators.base_operator import JamboBaseOperator
from airflow_provider_jambo.operators.branch_operators import (
    JamboCreateBranchOperator,
    JamboDeleteBranchOperator,
    JamboResetBranchOperator,
)
from jambo_emulator import JamboEmulator

pytestmark = pytest.mark.chaos

CONN_ID = "jambo_chaos_ops"
LIFECYCLES = 15
FAULT_PROBABILITY = 0.2
TASK_TRIES = 6
#: The connection's ``max_retries``: each request is tried this many times plus one.
MAX_RETRIES = 3
#: Lifecycles whose create gets the targeted "dropped, then the lookup fails" sequence.
TARGETED = frozenset({0, 5, 10})


@pytest.fixture
def emulator() -> Iterator[JamboEmulator]:
    emu = start_emulator()
    try:
        yield emu
    finally:
        emu.stop()


@pytest.fixture
def project(emulator: JamboEmulator, monkeypatch: pytest.MonkeyPatch) -> ChaosProject:
    chaos = setup_project(emulator, "chaos-operators", unrelated_name="chaos-ops-01-unrelated")
    conn = {
        "conn_type": "jambo",
        "host": emulator.base_url,
        "password": emulator.api_key,
        "extra": {"project_id": chaos.project_id, "max_retries": MAX_RETRIES, "retry_max_wait": 60},
    }
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", json.dumps(conn))
    return chaos


@dataclass
class OperatorLifecycle:
    name: str
    reset: bool
    targeted: bool
    sleeps: FastSleep
    tasks: TaskLog
    results: dict[str, list[Any]] = field(default_factory=dict)
    lookup_failure: FailLookupAfterCreate | None = None

    def _prepare(self, op: JamboBaseOperator) -> JamboBaseOperator:
        op.hook.sleep = self.sleeps
        tag_requests(op.hook, self.name)
        if self.lookup_failure is not None:
            op.hook.get_conn().event_hooks["request"].append(self.lookup_failure)
        return op

    def _run(self, task: str, op: JamboBaseOperator, try_number: int) -> Any:
        self._prepare(op)
        try:
            result = op.execute(make_context(task, try_number))
        finally:
            op.hook.close()
        self.results.setdefault(task, []).append(result)
        return result

    def create(self, try_number: int) -> dict[str, Any]:
        op = JamboCreateBranchOperator(
            task_id="create_branch",
            jambo_conn_id=CONN_ID,
            branch_name=self.name,
            if_exists="reuse",
            deferrable=False,
        )
        result: dict[str, Any] = self._run("create_branch", op, try_number)
        assert result["branch_name"] == self.name
        assert result["endpoint_id"] is not None
        if try_number > 1 and not result["created"]:
            self.tasks.record_adopted()
        return result

    def reset_branch(self, created: dict[str, Any], try_number: int) -> None:
        op = JamboResetBranchOperator(
            task_id="reset_branch", jambo_conn_id=CONN_ID, branch=created, deferrable=False
        )
        result = self._run("reset_branch", op, try_number)
        assert result["branch_id"] == created["branch_id"]
        assert result["source_id"] == created["parent_id"]

    def delete(self, try_number: int) -> None:
        op = JamboDeleteBranchOperator(
            task_id="delete_branch", jambo_conn_id=CONN_ID, branch=self.name, deferrable=False
        )
        self._run("delete_branch", op, try_number)

    def run(self) -> None:
        try:
            created = run_task("create", self.create, tries=TASK_TRIES, log=self.tasks)
            if self.reset:
                run_task("reset", lambda n: self.reset_branch(created, n), tries=TASK_TRIES, log=self.tasks)
        finally:
            run_task("delete", self.delete, tries=TASK_TRIES, log=self.tasks)


def test_operator_lifecycles_under_faults_leave_a_clean_project(
    project: ChaosProject, capsys: pytest.CaptureFixture[str]
) -> None:
    emu = project.emu
    emu.clear_requests()
    sleeps, tasks = FastSleep(), TaskLog()
    lifecycles = [
        OperatorLifecycle(f"chaos-ops-{i:02d}", i % 2 == 1, i in TARGETED, sleeps, tasks)
        for i in range(LIFECYCLES)
    ]
    injected = 0
    for lc in lifecycles:
        if lc.targeted:
            # Only the targeted faults: a random rule on the same route would decide first.
            lc.lookup_failure = FailLookupAfterCreate(emu, attempts=MAX_RETRIES + 1)
            lc.lookup_failure.prepare()
        else:
            inject_chaos(emu, FAULT_PROBABILITY)
        try:
            lc.run()
        finally:
            injected += faults_injected(emu)
            emu.clear_faults()

    names = [lc.name for lc in lifecycles]
    stats = account(emu.requests(), names)
    with capsys.disabled():
        print("\n" + stats.line("operators", injected, sleeps, tasks))

    assert check_invariant(project, names) == []
    assert {n: c for n, c in stats.applied_creates.items() if c != 1} == {}
    for lc in lifecycles:
        creates = lc.results["create_branch"]
        assert len({r["branch_id"] for r in creates}) == 1, creates
        # The teardown deleted that branch and nothing else (a re-run of a teardown whose first try
        # deleted it and then failed finds nothing to delete).
        deleted = {d["branch_id"] for d in lc.results["delete_branch"] if d["deleted"]}
        assert deleted <= {creates[0]["branch_id"]}
    for i in sorted(TARGETED):
        lc = lifecycles[i]
        # The first try failed after the dropped create; the re-run adopted the branch it made.
        assert [r["created"] for r in lc.results["create_branch"]] == [False], lc.results
    assert tasks.failure_kinds[JamboServerError.__name__] >= len(TARGETED)
    assert tasks.adopted >= len(TARGETED)
    assert injected >= LIFECYCLES
