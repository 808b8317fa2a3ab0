"""Waiting until a project is unlocked: none of its operations is still in flight.

The service answers 423 to a change while the project has a conflicting operation in flight (any,
for the emulator's rule). Instead of re-sending blindly, an operator waits until the operations in
flight are done and then sends again; many runs mutating one project so form a queue instead of
failing. The rule is written once (:func:`idle_steps`, a generator like ``hooks/waiting.py``'s) and
driven here by the sync hook (:func:`wait_until_idle`, in a worker) and by
:class:`JamboProjectIdleTrigger` (in the triggerer, for deferrable operators). Each round costs one
list call (``GET /projects/{id}/operations``, newest first); the waiting itself is the hook's
``wait_for_operations``/``await_operations`` with its pacing and budget. "In flight" is
``Operation.is_pending`` (so ``failed`` with a ``retry_at`` still holds the lock, as on the service).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any

from airflow_provider_jambo.hooks.jambo import JamboHook
from airflow_provider_jambo.hooks.waiting import (
    Fetch,
    PollPolicy,
    WaitResult,
    list_operations_request,
)
from airflow_provider_jambo.models import Operation, parse_operations
from airflow_provider_jambo.triggers.base import JamboWaitTrigger


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
    locks the project.
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
    hook: JamboHook, project_id: str, *, deadline: float, poll_interval: float | None = None
) -> WaitResult:
    """Drive :func:`idle_steps` with the sync hook (in a worker)."""
    steps = idle_steps(project_id, deadline=deadline, clock=hook.clock)
    try:
        step = next(steps)
        while True:
            if isinstance(step, Fetch):
                step = steps.send(hook.request(step.request))
            else:
                step = steps.send(
                    hook.operations.wait(
                        step.operations,
                        project_id=project_id,
                        deadline=deadline,
                        poll_interval=poll_interval,
                    )
                )
    except StopIteration as done:
        return done.value


class JamboProjectIdleTrigger(JamboWaitTrigger):
    """Wait in the triggerer until ``project_id`` has no operation in flight, or ``deadline`` passes.

    Takes :class:`~airflow_provider_jambo.triggers.base.JamboWaitTrigger`'s arguments
    (``jambo_conn_id``, ``project_id``, ``deadline``, ``poll_interval``, ``retry_policy``,
    ``not_before``); the operations are the project's, found each round. Yields one event
    ``{"status": "success" | "timeout" | "error", "message"}``.
    """

    @property
    def subject(self) -> str:
        return f"project {self.project_id} to be unlocked"

    def _error_payload(self, message: str) -> dict[str, Any]:
        return {"status": "error", "message": message}

    async def _wait(self, hook: JamboHook) -> dict[str, Any]:
        steps = idle_steps(self.project_id, deadline=self.deadline, clock=hook.clock)
        try:
            step = next(steps)
            while True:
                if isinstance(step, Fetch):
                    step = steps.send(await hook.arequest(step.request))
                else:
                    step = steps.send(
                        await hook.operations.wait_async(
                            step.operations,
                            project_id=self.project_id,
                            deadline=self.deadline,
                            poll_interval=self.poll_interval,
                        )
                    )
        except StopIteration as done:
            result: WaitResult = done.value
        return {"status": result.status, "message": result.message}
