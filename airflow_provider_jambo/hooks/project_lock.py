"""A locked project (423): what it means, who waits for it, and how. The one place for it.

The service answers 423 to a change while the project has a conflicting operation in flight; the
request was not applied. Many runs mutating one project so form a queue, and how to wait in it is
decided here, once:

- A plain hook (``OnLocked.RETRY``, the default) re-sends a 423 with backoff for the retry policy's
  ``locked_budget`` seconds (``retry.py`` bounds 423s by time, not by attempts).
- The operators' hook (``JamboHook(on_locked=OnLocked.RAISE)``) raises a 423 on a change at once
  (never re-sent blindly; reads keep their retries), because the operator waits for the project
  itself: :func:`idle_steps` (list its operations, wait for those in flight, look again), driven in
  the worker by :func:`wait_until_idle` or in the triggerer by ``JamboProjectIdleTrigger``, then it
  sends again after :func:`resend_jitter` (``JamboBaseOperator.send``).

"In flight" is ``Operation.is_pending`` (so ``failed`` with a ``retry_at`` still holds the lock,
as on the service).
"""

from __future__ import annotations

import enum
import random
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any

from airflow_provider_jambo.api_models import Operation, parse_operations
from airflow_provider_jambo.exceptions import JamboAPIError
from airflow_provider_jambo.hooks.client import ApiRequest
from airflow_provider_jambo.hooks.waiting import Fetch, PollPolicy, WaitResult, list_operations_request

LOCKED = 423
#: Longest pause (seconds, jittered) between "the project is unlocked" and sending again, so the
#: runs queued on one project do not all send at the same instant.
LOCKED_RESEND_MAX_WAIT = 2.0


class OnLocked(enum.StrEnum):
    """What a hook does with a 423 on a change: re-send it (``retry``) or raise it (``raise``)."""

    RETRY = "retry"
    RAISE = "raise"


def is_locked(exc: BaseException | None) -> bool:
    return isinstance(exc, JamboAPIError) and exc.status == LOCKED


def locked_retry_seconds(req: ApiRequest[Any], on_locked: OnLocked, budget: float) -> float:
    """How long the retry loop re-sends 423s of ``req``: the policy's ``budget``, or 0 for a change
    sent by a hook whose caller waits for the project itself."""
    if on_locked is OnLocked.RAISE and req.method != "GET":
        return 0.0
    return budget


def resend_jitter(rng: Callable[[float, float], float] = random.uniform) -> float:
    """The pause before sending again once the project is idle: the others queued on it were woken
    by the same finish, so the re-sends are spread."""
    return rng(0.0, LOCKED_RESEND_MAX_WAIT)


@dataclass(frozen=True)
class AwaitOperations:
    """Wait (with the hook's waiting rules) for these operations; send back the ``WaitResult``.

    The operations as listed: their actions tell the wait when to look first."""

    operations: list[Operation]


def idle_steps(
    project_id: str, *, deadline: float, clock: Callable[[], float] = time.time
) -> Generator[Fetch | AwaitOperations, Any, WaitResult]:
    """List the project's operations; while some are in flight, wait for them and look again.

    Returns ``success`` once none is in flight, ``timeout`` when ``deadline`` passes first. Whether
    the operations of others succeeded does not matter here: a finished or failed one no longer
    locks the project. Each round costs one list call (newest first); the waiting itself is the
    hook's ``operations.wait``/``wait_async`` with its pacing and budget.
    """
    while True:
        body = yield Fetch(list_operations_request(project_id, limit=PollPolicy().list_limit))
        busy = [op for op in parse_operations(body) if op.is_pending]
        if not busy:
            return WaitResult("success", [], f"project {project_id} has no operation in flight")
        if clock() >= deadline:
            names = "; ".join(op.describe() for op in busy)
            return WaitResult(
                "timeout", busy, f"project {project_id} still has operations in flight: {names}"
            )
        waited: WaitResult = yield AwaitOperations(busy)
        if waited.status == "timeout":
            return WaitResult("timeout", waited.operations, f"project {project_id}: {waited.message}")


def wait_until_idle(
    request: Callable[[ApiRequest[Any]], Any],
    wait_for: Callable[[list[Operation]], WaitResult],
    project_id: str,
    *,
    deadline: float,
    clock: Callable[[], float] = time.time,
) -> WaitResult:
    """Drive :func:`idle_steps` in the calling thread: ``request`` sends a list call,
    ``wait_for`` waits for operations (a hook's ``request`` and ``operations.wait``)."""
    steps = idle_steps(project_id, deadline=deadline, clock=clock)
    try:
        step = next(steps)
        while True:
            if isinstance(step, Fetch):
                step = steps.send(request(step.request))
            else:
                step = steps.send(wait_for(step.operations))
    except StopIteration as done:
        result: WaitResult = done.value
        return result
