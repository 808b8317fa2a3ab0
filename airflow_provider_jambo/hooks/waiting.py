"""Waiting for operations: the rules, written once, driven by the sync hook, the async hook or a trigger.

The rules are pure functions (``classify``, ``evaluate``, ``PollPolicy.next_interval``). The
polling loop is a generator (:func:`wait_steps`) that *yields* what it needs (``Fetch`` a request,
``Sleep`` some seconds) and receives the fetched operations back, so :func:`run_sync` and
:func:`run_async` are a few lines each and cannot drift apart.

Economy: while two or more operations of the project are pending, one list call
(``GET /projects/{id}/operations``, newest first) serves them all; an operation that is not on
that page is read by id from then on (:func:`fetch_steps`, one round of fetches, which is also
what a sensor's poke costs). Intervals start at ``initial_interval`` and grow to
``max_interval``; a round of ``n`` requests is never followed by less than
``n / max_requests_per_second`` seconds, far below the service's 700 requests/minute.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Generator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime
from typing import Any, Literal, TypeAlias, TypeVar

from airflow_provider_jambo.exceptions import (
    JamboConfigError,
    JamboOperationFailedError,
    JamboOperationTimeoutError,
)
from airflow_provider_jambo.hooks.client import ApiRequest, check_id
from airflow_provider_jambo.models import Operation, OperationStatus, parse_operations

Verdict = Literal["success", "failure", "pending"]
WaitStatus = Literal["success", "failed", "timeout"]
R = TypeVar("R")


@dataclass(frozen=True)
class PollPolicy:
    """Polling pace; plain numbers so a trigger can carry it."""

    initial_interval: float = 0.5
    max_interval: float = 10.0
    factor: float = 1.5
    max_requests_per_second: float = 2.0
    list_limit: int = 100

    def __post_init__(self) -> None:
        if self.initial_interval < 0 or self.max_interval < self.initial_interval:
            raise JamboConfigError(
                "poll intervals must satisfy 0 <= initial_interval <= max_interval, "
                f"got {self.initial_interval} and {self.max_interval}"
            )
        if self.factor < 1 or self.max_requests_per_second <= 0 or not 1 <= self.list_limit <= 1000:
            raise JamboConfigError(
                "poll policy needs factor >= 1, max_requests_per_second > 0 and 1 <= list_limit <= 1000"
            )

    def next_interval(self, previous: float | None) -> float:
        if previous is None:
            return self.initial_interval
        return min(self.max_interval, max(previous, self.initial_interval) * self.factor)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PollPolicy:
        known = {f.name for f in fields(cls)}
        if set(data) - known:
            raise JamboConfigError(
                f"unknown poll settings {sorted(set(data) - known)}; allowed: {sorted(known)}"
            )
        return cls(**dict(data))


def classify(op: Operation, *, deadline_passed: bool = False) -> Verdict:
    """success = finished/skipped; failure = error/cancelled, or ``failed`` once the service
    stops retrying it (no ``retry_at``) or the deadline has passed; anything else is pending."""
    if op.is_succeeded:
        return "success"
    if op.is_pending and not (deadline_passed and op.status is OperationStatus.FAILED):
        return "pending"
    return "failure"


def failure_message(failed: Sequence[Operation]) -> str:
    return f"{len(failed)} operation(s) failed: " + "; ".join(op.describe() for op in failed)


@dataclass(frozen=True)
class WaitResult:
    status: WaitStatus
    operations: list[Operation] = field(default_factory=list)
    message: str = ""

    @property
    def succeeded(self) -> bool:
        return self.status == "success"

    def raise_for_status(self) -> WaitResult:
        if self.status == "failed":
            raise JamboOperationFailedError(self.message, self.operations)
        if self.status == "timeout":
            raise JamboOperationTimeoutError(self.message, self.operations)
        return self

    def to_dict(self) -> dict[str, Any]:
        """Plain values (for a trigger event): status, message and the operations' raw dicts."""
        return {
            "status": self.status,
            "message": self.message,
            "operations": [dict(op.raw) for op in self.operations],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> WaitResult:
        status = data.get("status")
        if status not in ("success", "failed", "timeout"):
            raise JamboConfigError(f"wait status must be success, failed or timeout, got {status!r}")
        ops = [Operation.from_api(raw) for raw in data.get("operations", [])]
        return cls(status=status, operations=ops, message=str(data.get("message", "")))


def evaluate(operations: Sequence[Operation], *, deadline_passed: bool = False) -> WaitResult | None:
    """The outcome of a set of operations, or ``None`` while waiting should go on.

    Any failure ends the wait at once (no point waiting for the rest of a broken change).
    """
    ops = list(operations)
    verdicts = [classify(op, deadline_passed=deadline_passed) for op in ops]
    failed = [op for op, v in zip(ops, verdicts, strict=True) if v == "failure"]
    if failed:
        return WaitResult("failed", ops, failure_message(failed))
    pending = [op for op, v in zip(ops, verdicts, strict=True) if v == "pending"]
    if not pending:
        actions = ", ".join(op.action for op in ops) or "none"
        return WaitResult("success", ops, f"{len(ops)} operation(s) finished: {actions}")
    if deadline_passed:
        names = "; ".join(op.describe() for op in pending)
        return WaitResult("timeout", ops, f"timed out waiting for {len(pending)} operation(s): {names}")
    return None


# --- the polling loop as a generator of steps --------------------------------------------------


@dataclass(frozen=True)
class Fetch:
    """Send ``request``; send back its result (a list of operations)."""

    request: ApiRequest[list[Operation]]


@dataclass(frozen=True)
class Sleep:
    seconds: float


Step: TypeAlias = "Fetch | Sleep"


def get_operation_request(project_id: str, operation_id: str) -> ApiRequest[list[Operation]]:
    return ApiRequest(
        "GET",
        "/projects/{project_id}/operations/{operation_id}",
        {"project_id": project_id, "operation_id": operation_id},
        parse=lambda body: [Operation.from_api(body["operation"])],
    )


def list_operations_request(
    project_id: str, *, limit: int, cursor: str | None = None
) -> ApiRequest[list[Operation]]:
    return ApiRequest(
        "GET",
        "/projects/{project_id}/operations",
        {"project_id": project_id},
        query={"limit": limit, "cursor": cursor},
        parse=parse_operations,
    )


def resolve_deadline(timeout: float | None, deadline: datetime | float | None, now: float) -> float | None:
    """One absolute deadline (epoch seconds) from a relative timeout and/or an absolute deadline."""
    candidates: list[float] = []
    if timeout is not None:
        if timeout < 0:
            raise JamboConfigError(f"timeout must be >= 0 seconds, got {timeout}")
        candidates.append(now + timeout)
    if isinstance(deadline, datetime):
        if deadline.tzinfo is None:
            raise JamboConfigError("deadline must be a timezone-aware datetime")
        candidates.append(deadline.timestamp())
    elif deadline is not None:
        candidates.append(float(deadline))
    return min(candidates) if candidates else None


def fetch_steps(
    project_id: str, operation_ids: Sequence[str], *, list_limit: int, read_by_id: set[str]
) -> Generator[Fetch, Any, tuple[dict[str, Operation], int]]:
    """Yield the fetches that bring ``operation_ids`` up to date; return them by id, and how many
    requests that took.

    When two or more of them are not in ``read_by_id``, one list call (newest first) serves them;
    those not on that page are added to ``read_by_id`` (so later rounds read them directly) and,
    like any other left, read by id.
    """
    found: dict[str, Operation] = {}
    requests_made = 0
    via_list = [i for i in operation_ids if i not in read_by_id]
    if len(via_list) >= 2:
        page: list[Operation] = yield Fetch(list_operations_request(project_id, limit=list_limit))
        requests_made += 1
        on_page = {op.id: op for op in page}
        for op_id in via_list:
            if op_id in on_page:
                found[op_id] = on_page[op_id]
            else:
                read_by_id.add(op_id)
    for op_id in operation_ids:
        if op_id not in found:
            got: list[Operation] = yield Fetch(get_operation_request(project_id, op_id))
            requests_made += 1
            found.update((op.id, op) for op in got)
    return found, requests_made


def wait_steps(
    project_id: str,
    operation_ids: Sequence[str],
    *,
    deadline: float | None,
    clock: Callable[[], float] = time.time,
    poll: PollPolicy = PollPolicy(),
) -> Generator[Step, Any, WaitResult]:
    """Yield the fetches and sleeps needed to wait for ``operation_ids``; return the result."""
    check_id("project_id", project_id)
    ids = list(dict.fromkeys(operation_ids))
    for op_id in ids:
        check_id("operation_id", op_id)
    if not ids:
        return WaitResult("success", [], "no operations to wait for")
    latest: dict[str, Operation] = {}
    read_by_id: set[str] = set()
    interval: float | None = None
    while True:
        pending = [i for i in ids if i not in latest or classify(latest[i]) == "pending"]
        fetched, requests_made = yield from fetch_steps(
            project_id, pending, list_limit=poll.list_limit, read_by_id=read_by_id
        )
        latest.update(fetched)
        now = clock()
        passed = deadline is not None and now >= deadline
        ops = [latest[i] for i in ids if i in latest]
        result = evaluate(ops, deadline_passed=passed)
        if result is not None:
            return result
        interval = poll.next_interval(interval)
        pause = max(interval, requests_made / poll.max_requests_per_second)
        if deadline is not None:
            # Wake up at the deadline for one last look rather than oversleeping it.
            pause = max(0.0, min(pause, deadline - now))
        yield Sleep(pause)


def run_sync(
    steps: Generator[Step, Any, R],
    fetch: Callable[[ApiRequest[list[Operation]]], list[Operation]],
    sleep: Callable[[float], None] = time.sleep,
) -> R:
    try:
        step = next(steps)
        while True:
            if isinstance(step, Fetch):
                step = steps.send(fetch(step.request))
            else:
                sleep(step.seconds)
                step = steps.send(None)
    except StopIteration as done:
        return done.value


async def run_async(
    steps: Generator[Step, Any, R],
    fetch: Callable[[ApiRequest[list[Operation]]], Awaitable[list[Operation]]],
    sleep: Callable[[float], Awaitable[Any]],
) -> R:
    try:
        step = next(steps)
        while True:
            if isinstance(step, Fetch):
                step = steps.send(await fetch(step.request))
            else:
                await sleep(step.seconds)
                step = steps.send(None)
    except StopIteration as done:
        return done.value
