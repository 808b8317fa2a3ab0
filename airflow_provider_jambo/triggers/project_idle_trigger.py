"""JamboProjectIdleTrigger: waits in the triggerer until a locked project has nothing in flight.

What a 423 means and how it is waited for are ``hooks/project_lock.py``'s (:func:`idle_steps`, also
driven in the worker by ``wait_until_idle``); this trigger drives the same steps with the async hook
for a deferrable operator.
"""

from __future__ import annotations

from typing import Any

from airflow_provider_jambo.hooks.jambo import JamboHook
from airflow_provider_jambo.hooks.project_lock import idle_steps
from airflow_provider_jambo.hooks.waiting import Fetch, WaitResult
from airflow_provider_jambo.triggers.wait_trigger import JamboWaitTrigger


class JamboProjectIdleTrigger(JamboWaitTrigger):
    """Wait in the triggerer until ``project_id`` has no operation in flight, or ``deadline`` passes.

    Takes :class:`~airflow_provider_jambo.triggers.wait_trigger.JamboWaitTrigger`'s arguments
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
