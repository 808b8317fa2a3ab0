"""Shared pieces of the chaos tests: the fault plan, the guarded branches, Airflow-like task retries,
and request accounting per lifecycle.

A *lifecycle* is what a preview-environment DAG does with one branch: get-or-create it (with a
``read_write`` compute), wait, optionally reset it to its parent, delete it, wait. The chaos tests
run many of them while the emulator injects seeded faults on every route they use, then check the
invariant: nothing leaked, nothing duplicated, nothing wrongly deleted.
"""

from __future__ import annotations

import statistics
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx

from airflow_provider_jambo.exceptions import JamboError
from airflow_provider_jambo.hooks.client import REQUEST_ID_HEADER
from airflow_provider_jambo.hooks.jambo import JamboHook
from jambo_emulator import JamboEmulator

T = TypeVar("T")

CHAOS_SEED = 20261127
#: Every route a lifecycle touches (hook or operators); faults are injected on all of them.
LIFECYCLE_ROUTES: tuple[tuple[str, str], ...] = (
    ("GET", "/projects/{project_id}/branches"),
    ("POST", "/projects/{project_id}/branches"),
    ("GET", "/projects/{project_id}/branches/{branch_id}"),
    ("DELETE", "/projects/{project_id}/branches/{branch_id}"),
    ("POST", "/projects/{project_id}/branches/{branch_id}/restore"),
    ("GET", "/projects/{project_id}/branches/{branch_id}/endpoints"),
    ("GET", "/projects/{project_id}/branches/{branch_id}/databases"),
    ("GET", "/projects/{project_id}/operations"),
    ("GET", "/projects/{project_id}/operations/{operation_id}"),
)
#: What can go wrong with one request. Latency stays below the client timeout: a request that
#: lands *after* the client gave up is a different hazard (see the report in the test module).
FAULT_MENU: tuple[dict[str, Any], ...] = (
    {"kind": "rate_limit", "retry_after": "1"},
    {"kind": "rate_limit", "retry_after": None},
    {"kind": "locked"},
    {"kind": "status", "status": 500},
    {"kind": "status", "status": 502},
    {"kind": "status", "status": 503},
    {"kind": "status", "status": 524},
    {"kind": "latency", "seconds": 0.05},
    {"kind": "drop_after_apply"},
)
PROTECTED_NAME = "chaos-protected"


def start_emulator(operation_duration: float = 0.0) -> JamboEmulator:
    """A deterministic emulator (seeded ids and faults). With zero durations its clock is manual
    (operations finish at the next request); otherwise operations take that long in real time and
    the 423 rule makes concurrent lifecycles collide as on the service. Its own rate limits are
    off: 429s come from the injected faults only, so the run does not depend on speed."""
    return JamboEmulator(
        api_key="chaos-test-key",
        deterministic=True,
        seed=CHAOS_SEED,
        manual_clock=operation_duration == 0,
        operation_duration=operation_duration,
        rate_limits=False,
        data_plane="off",
    ).start()


def inject_chaos(emu: JamboEmulator, probability: float) -> None:
    """One probabilistic rule per lifecycle route; each picks a fault from the whole menu."""
    for method, route in LIFECYCLE_ROUTES:
        emu.inject_fault(method, route, faults=[dict(f) for f in FAULT_MENU], probability=probability)


def faults_injected(emu: JamboEmulator) -> int:
    return sum(int(rule["injected"]) for rule in emu.controller.faults())


class FastSleep:
    """The hook's sleep seam: sleeps a fiftieth of what was asked (at most 20 ms), so backoff and
    Retry-After still pace and spread the threads a little, and counts the calls."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.calls = 0
        self.asked = 0.0

    def __call__(self, seconds: float) -> None:
        with self._lock:
            self.calls += 1
            self.asked += seconds
        time.sleep(min(seconds / 50, 0.02))


def tag_requests(hook: JamboHook, tag: str) -> None:
    """Prefix the hook's X-Request-ID with ``tag``; the emulator logs the client's id, so the
    request log can be split per lifecycle."""

    def retag(request: httpx.Request) -> None:
        request.headers[REQUEST_ID_HEADER] = f"{tag}.{request.headers.get(REQUEST_ID_HEADER) or uuid.uuid4()}"

    hook.get_conn().event_hooks["request"].append(retag)


BRANCHES_ROUTE = "/projects/{project_id}/branches"


class FailLookupAfterCreate:
    """An httpx request hook: when the client sends the branch create, the emulator is told to
    answer the next ``attempts`` branch listings with 503. With the create's own response dropped,
    the hook's lookup then runs out of retries and the task fails with the branch already made."""

    def __init__(self, emu: JamboEmulator, attempts: int) -> None:
        self.emu = emu
        self.attempts = attempts
        self.armed = False

    def __call__(self, request: httpx.Request) -> None:
        if request.method == "POST" and request.url.path.endswith("/branches") and not self.armed:
            self.armed = True
            status = {"kind": "status", "status": 503}
            self.emu.inject_fault("GET", BRANCHES_ROUTE, faults=[status], times=self.attempts)

    def prepare(self) -> None:
        """Drop the next create's response (call with no other rule on the create route)."""
        self.emu.inject_fault("POST", BRANCHES_ROUTE, faults=[{"kind": "drop_after_apply"}])


@dataclass
class TaskLog:
    """What the Airflow-like task runner saw, across all lifecycles (thread-safe)."""

    tries: Counter[str] = field(default_factory=Counter)
    failures: Counter[str] = field(default_factory=Counter)
    failure_kinds: Counter[str] = field(default_factory=Counter)
    adopted: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, task: str, error: BaseException | None) -> None:
        with self.lock:
            self.tries[task] += 1
            if error is not None:
                self.failures[task] += 1
                self.failure_kinds[type(error).__name__] += 1

    def record_adopted(self) -> None:
        with self.lock:
            self.adopted += 1

    @property
    def task_retries(self) -> int:
        return sum(self.failures.values())


def run_task(task: str, fn: Callable[[int], T], *, tries: int, log: TaskLog) -> T:
    """Run ``fn(try_number)`` the way Airflow runs a task with ``retries=tries - 1``: a JamboError
    fails the try and the task runs again, from the start; anything else is a bug and propagates."""
    for try_number in range(1, tries + 1):
        try:
            result = fn(try_number)
        except JamboError as err:
            log.record(task, err)
            if try_number == tries:
                raise
            continue
        log.record(task, None)
        return result
    raise AssertionError("unreachable")


# --- the project and the branches that must survive ------------------------------------------------


@dataclass
class ChaosProject:
    emu: JamboEmulator
    project_id: str
    default_branch_id: str
    guarded_ids: tuple[str, ...]
    before: dict[str, Any]

    def api(self) -> httpx.Client:
        return self.emu.client()


def _wait_idle(client: httpx.Client, project_id: str) -> None:
    for _ in range(200):
        ops = client.get(f"/projects/{project_id}/operations").json()["operations"]
        if all(op["status"] in ("finished", "skipped") for op in ops):
            return
        time.sleep(0.01)
    raise AssertionError(f"operations of project {project_id} still in flight")


def setup_project(emu: JamboEmulator, name: str, *, unrelated_name: str) -> ChaosProject:
    """A project with its default branch, a protected branch and an unrelated branch with a compute;
    created before any fault is injected, and snapshotted. Give the unrelated branch a name that
    *contains* a lifecycle's name: the API's ``search`` is partial, so a lookup by name that is not
    matched exactly would pick it (and a teardown would delete it)."""
    body = emu.create_project(name=name)
    project_id = body["project"]["id"]
    with emu.client() as client:
        _wait_idle(client, project_id)
        default_id = next(b["id"] for b in list_branches(client, project_id) if b["default"])
        for branch, endpoints in (
            ({"name": PROTECTED_NAME, "protected": True}, []),
            ({"name": unrelated_name}, [{"type": "read_write"}]),
        ):
            resp = client.post(
                f"/projects/{project_id}/branches", json={"branch": branch, "endpoints": endpoints}
            )
            resp.raise_for_status()
            _wait_idle(client, project_id)
        names = {b["name"]: b["id"] for b in list_branches(client, project_id)}
        guarded = (default_id, names[PROTECTED_NAME], names[unrelated_name])
        before = snapshot(client, project_id, guarded)
    return ChaosProject(emu, project_id, default_id, guarded, before)


def list_branches(client: httpx.Client, project_id: str) -> list[dict[str, Any]]:
    resp = client.get(f"/projects/{project_id}/branches", params={"limit": 10000})
    resp.raise_for_status()
    branches: list[dict[str, Any]] = resp.json()["branches"]
    return branches


def snapshot(client: httpx.Client, project_id: str, branch_ids: Iterable[str]) -> dict[str, Any]:
    """Everything the API says about these branches: the branch, its endpoints, databases, roles."""
    out: dict[str, Any] = {}
    for bid in branch_ids:
        base = f"/projects/{project_id}/branches/{bid}"
        out[bid] = {
            what: client.get(base + suffix).json()
            for what, suffix in (("branch", ""), ("endpoints", "/endpoints"), ("databases", "/databases"))
        }
        out[bid]["roles"] = client.get(base + "/roles").json()
    return out


def check_invariant(project: ChaosProject, lifecycle_names: Iterable[str]) -> list[str]:
    """Problems with the final state (empty when clean). Call after clearing the faults."""
    problems: list[str] = []
    names = set(lifecycle_names)
    with project.api() as client:
        _wait_idle(client, project.project_id)
        branches = list_branches(client, project.project_id)
        counts = Counter(b["name"] for b in branches)
        problems += [f"duplicated: {n!r} exists {c} times" for n, c in counts.items() if c > 1]
        leaked = [b for b in branches if b["name"] in names]
        problems += [f"leaked: {b['name']!r} ({b['id']}) still exists" for b in leaked]
        ids = {b["id"] for b in branches}
        problems += [f"wrongly deleted: {bid}" for bid in project.guarded_ids if bid not in ids]
        unknown = [b for b in branches if b["id"] not in project.guarded_ids and b["name"] not in names]
        problems += [f"unexpected branch {b['name']!r} ({b['id']})" for b in unknown]
        survivors = [bid for bid in project.guarded_ids if bid in ids]
        after = snapshot(client, project.project_id, survivors)
        problems += [
            f"guarded branch {bid} changed: {project.before[bid]} -> {after[bid]}"
            for bid in survivors
            if after[bid] != project.before[bid]
        ]
    return problems


# --- request accounting -----------------------------------------------------------------------------


@dataclass
class Accounting:
    per_lifecycle: dict[str, int]
    applied_creates: dict[str, int]
    outcomes: Counter[str]

    def line(self, label: str, injected: int, sleeps: FastSleep, tasks: TaskLog) -> str:
        counts = list(self.per_lifecycle.values())
        outcomes = ", ".join(f"{k} {v}" for k, v in sorted(self.outcomes.items()))
        return (
            f"chaos[{label}]: {len(counts)} lifecycles, {sum(counts)} requests, "
            f"per lifecycle mean {statistics.mean(counts):.1f} max {max(counts)}; "
            f"faults injected {injected}; failed answers: {outcomes}; hook retry/poll sleeps {sleeps.calls}; "
            f"task tries {sum(tasks.tries.values())} of which failed {tasks.task_retries} "
            f"{dict(tasks.failure_kinds)}; adopted on a re-run {tasks.adopted}"
        )


def account(requests: list[dict[str, Any]], lifecycle_names: Iterable[str]) -> Accounting:
    """Split the emulator's request log per lifecycle (by the X-Request-ID prefix)."""
    names = list(lifecycle_names)
    per: dict[str, int] = dict.fromkeys(names, 0)
    creates: dict[str, int] = dict.fromkeys(names, 0)
    outcomes: Counter[str] = Counter()
    for entry in requests:
        tag = str(entry.get("request_id") or "").split(".", 1)[0]
        if tag not in per:
            continue
        per[tag] += 1
        status = int(entry["status"])
        if entry.get("dropped"):
            outcomes["dropped"] += 1
        elif status >= 400:
            outcomes[str(status)] += 1
        if (
            entry["method"] == "POST"
            and entry["route"] == "/projects/{project_id}/branches"
            and status in (200, 201)
        ):
            creates[tag] += 1
    return Accounting(per, creates, outcomes)
