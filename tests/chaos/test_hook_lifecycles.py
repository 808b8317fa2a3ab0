"""Chaos: many branch lifecycles through JamboHook, concurrently, under seeded injected faults.

Each lifecycle is a small DAG run: ``create`` (get-or-create a uniquely named branch with a
read_write compute, wait for its operations), on every other lifecycle ``reset`` (restore from the
parent, wait), and the teardown ``delete`` (find by exact name, delete, wait), which runs whatever
happened before it. Every task is retried like Airflow would (a fresh hook per try, from the start)
when it fails with a JamboError. Afterwards: no lifecycle branch is left, no name exists twice,
every lifecycle's create was applied exactly once, and the default, the protected and the unrelated
branch are exactly as they were.

Every fourth lifecycle also runs a second create try concurrently (an Airflow zombie try and its
retry). First a few lifecycles run one by one with a targeted sequence (the create's response dropped after
the branch was made, then the lookup fails on every attempt), so some create tasks certainly fail
with their branch made and their re-run must adopt it; then the rest run concurrently under random
faults.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

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

from airflow_provider_jambo.create_branch_request import CreateBranchRequest
from airflow_provider_jambo.hooks.jambo import JamboHook
from airflow_provider_jambo.hooks.retry import RetryPolicy
from jambo_emulator import JamboEmulator

pytestmark = pytest.mark.chaos

CONN_ID = "jambo_chaos"
TARGETED = 4
FAULT_PROBABILITY = 0.2
TASK_TRIES = 6


@dataclass(frozen=True)
class Scenario:
    lifecycles: int
    workers: int
    operation_duration: float
    policy: RetryPolicy


SCENARIOS = {
    # Operations finish at once: the faults alone decide. Fewer attempts than the default, so
    # requests do run out of retries and whole tasks are re-run.
    "instant": Scenario(48, 6, 0.0, RetryPolicy(max_attempts=4, max_elapsed=60.0, initial_wait=0.2)),
    # Operations take 10 ms of real time: waits really poll, adopted branches have operations in
    # flight, and concurrent lifecycles get the project's 423 as on the service (default attempts).
    "timed": Scenario(24, 2, 0.01, RetryPolicy(initial_wait=0.2)),
}


@pytest.fixture(params=sorted(SCENARIOS))
def scenario(request: pytest.FixtureRequest) -> Scenario:
    return SCENARIOS[request.param]


@pytest.fixture
def emulator(scenario: Scenario) -> Iterator[JamboEmulator]:
    emu = start_emulator(scenario.operation_duration)
    try:
        yield emu
    finally:
        emu.stop()


@pytest.fixture
def project(emulator: JamboEmulator, monkeypatch: pytest.MonkeyPatch) -> ChaosProject:
    chaos = setup_project(emulator, "chaos-hook", unrelated_name="chaos-hook-01-unrelated")
    conn = {"conn_type": "jambo", "host": emulator.base_url, "password": emulator.api_key}
    conn["extra"] = {"project_id": chaos.project_id}  # type: ignore[assignment]
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", json.dumps(conn))
    return chaos


@dataclass
class Lifecycle:
    name: str
    policy: RetryPolicy
    reset: bool
    sleeps: FastSleep
    tasks: TaskLog
    #: Also run a second, concurrent create try (a zombie try still running while Airflow runs
    #: the retry): both get-or-create the same name and must end with the same branch.
    twin: bool = False
    lookup_failure: FailLookupAfterCreate | None = None
    created_flags: list[bool] = field(default_factory=list)

    def hook(self) -> JamboHook:
        hook = JamboHook(CONN_ID, retry_policy=self.policy)
        hook.sleep = self.sleeps
        tag_requests(hook, self.name)
        if self.lookup_failure is not None:
            hook.get_conn().event_hooks["request"].append(self.lookup_failure)
        return hook

    def create(self, try_number: int) -> tuple[str, str]:
        with self.hook() as hook:
            creation = hook.branches.get_or_create(
                CreateBranchRequest(name=self.name, endpoints=[{"type": "read_write"}])
            )
            branch = creation.branch
            assert branch.name == self.name
            assert not branch.default
            assert branch.parent_id is not None
            assert [ep.type for ep in creation.endpoints] == ["read_write"]
            self.created_flags.append(creation.created)
            if try_number > 1 and not creation.created:
                self.tasks.record_adopted()
            hook.operations.wait([op.id for op in creation.operations], timeout=30).raise_for_status()
            return branch.id, branch.parent_id

    def reset_to_parent(self, branch_id: str, parent_id: str) -> None:
        with self.hook() as hook:
            mutation = hook.branches.restore(branch_id, source_branch_id=parent_id)
            assert mutation.resource.id == branch_id
            ops = [op.id for op in mutation.operations]
            hook.operations.wait(ops, timeout=30).raise_for_status()

    def delete(self) -> None:
        with self.hook() as hook:
            branch = hook.branches.find_by_name(self.name)
            if branch is None:
                return
            assert not branch.default
            assert not branch.protected
            ops = hook.branches.delete(branch.id)
            hook.operations.wait([op.id for op in ops], timeout=30).raise_for_status()

    def create_task(self) -> tuple[str, str]:
        return run_task("create", self.create, tries=TASK_TRIES, log=self.tasks)

    def run(self) -> None:
        try:
            if self.twin:
                with ThreadPoolExecutor(max_workers=1) as zombie_pool:
                    zombie = zombie_pool.submit(self.create_task)
                    branch_id, parent_id = self.create_task()
                    assert zombie.result() == (branch_id, parent_id)
            else:
                branch_id, parent_id = self.create_task()
            if self.reset:
                run_task(
                    "reset",
                    lambda _try: self.reset_to_parent(branch_id, parent_id),
                    tries=TASK_TRIES,
                    log=self.tasks,
                )
        finally:
            # The teardown runs whatever happened upstream (trigger rule all_done).
            run_task("delete", lambda _try: self.delete(), tries=TASK_TRIES, log=self.tasks)


def test_hook_lifecycles_under_faults_leave_a_clean_project(
    project: ChaosProject, scenario: Scenario, capsys: pytest.CaptureFixture[str]
) -> None:
    emu = project.emu
    emu.clear_requests()
    sleeps, tasks = FastSleep(), TaskLog()
    lifecycles = [
        Lifecycle(f"chaos-hook-{i:02d}", scenario.policy, i % 2 == 0, sleeps, tasks)
        for i in range(scenario.lifecycles)
    ]
    for i, lc in enumerate(lifecycles):
        lc.twin = i >= TARGETED and i % 4 == 1
    targeted, chaotic = lifecycles[:TARGETED], lifecycles[TARGETED:]

    injected = 0
    for lc in targeted:
        lc.lookup_failure = FailLookupAfterCreate(emu, attempts=scenario.policy.max_attempts)
        lc.lookup_failure.prepare()
        lc.run()
        injected += faults_injected(emu)
        emu.clear_faults()

    inject_chaos(emu, FAULT_PROBABILITY)
    with ThreadPoolExecutor(max_workers=scenario.workers) as pool:
        futures = [pool.submit(lc.run) for lc in chaotic]
    errors = [f.exception() for f in futures if f.exception() is not None]
    injected += faults_injected(emu)
    emu.clear_faults()

    names = [lc.name for lc in lifecycles]
    stats = account(emu.requests(), names)
    with capsys.disabled():
        label = f"hook, {scenario.operation_duration:g} s operations"
        print("\n" + stats.line(label, injected, sleeps, tasks))

    assert not errors, f"{len(errors)} lifecycles failed: {errors[:3]}"
    assert check_invariant(project, names) == []
    # Each lifecycle's create was applied exactly once (a re-sent or re-run create adopted it).
    assert {n: c for n, c in stats.applied_creates.items() if c != 1} == {}
    # The targeted creates failed once with their branch made; the re-run adopted it.
    assert [lc.created_flags for lc in targeted] == [[False]] * TARGETED
    assert tasks.failures["create"] >= TARGETED
    # The chaos really happened.
    assert injected >= scenario.lifecycles
