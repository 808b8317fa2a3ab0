"""JamboOperationTrigger: waits in the triggerer for Jambo operations to finish.

Its kwargs, hook, error event and settle hold are ``triggers/wait_trigger.py``'s. The
waiting rules (what counts as done, failed, when to poll) are the hook's (``hooks/waiting.py``), the
same as the synchronous path's. It yields exactly one event:

``{"status": "success" | "failed" | "timeout" | "error", "operation_ids": [...], "message": str}``

The trigger never fails the task itself on a timeout: it reports it, and the deferred operator
decides (an operator creating a branch, for instance, still hands the branch id to its teardown).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from airflow_provider_jambo.api_models import Operation
from airflow_provider_jambo.hooks.jambo import JamboHook
from airflow_provider_jambo.triggers.operation_events import operation_event
from airflow_provider_jambo.triggers.wait_trigger import (
    DEFERRAL_SETTLE_SECONDS,
    JamboWaitTrigger,
    settle_deadline,
    settle_until,
)

__all__ = ["DEFERRAL_SETTLE_SECONDS", "JamboOperationTrigger", "settle_deadline", "settle_until"]


class JamboOperationTrigger(JamboWaitTrigger):
    """Wait until the given operations of a project are done, failed, or ``deadline`` passes.

    :param operation_ids: ids of the operations to wait for.
    :param operations: optional, those operations as the deferring task last saw them (the API's
        dicts: ids, actions, statuses; nothing secret). Their actions tell when they are expected
        to be done, so the first look is then rather than a guess; ids without one are polled as
        usual. Statuses only move forward, so a triggerer restarted long after still waits right.

    The other arguments are :class:`~airflow_provider_jambo.triggers.wait_trigger.JamboWaitTrigger`'s
    (``jambo_conn_id``, ``project_id``, ``deadline``, ``poll_interval``, ``retry_policy``,
    ``not_before``, ``delete_on_kill``, ``durations``).
    """

    def __init__(
        self,
        *,
        operation_ids: Sequence[str],
        operations: Sequence[Mapping[str, Any]] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.operation_ids = [str(op_id) for op_id in operation_ids]
        self.operations = [dict(op) for op in operations] if operations else None

    @property
    def subject(self) -> str:
        return f"operations {self.operation_ids}"

    def _own_kwargs(self) -> dict[str, Any]:
        return {
            "operation_ids": list(self.operation_ids),
            "operations": self.operations,
        }

    def _before_delete(self) -> list[str]:
        return list(self.operation_ids)

    def _error_payload(self, message: str) -> dict[str, Any]:
        return dict(operation_event("error", self.operation_ids, message))

    async def _wait(self, hook: JamboHook) -> dict[str, Any]:
        seen = {op.id: op for op in map(Operation.from_api, self.operations or ())}
        result = await hook.operations.wait_async(
            [seen.get(op_id, op_id) for op_id in self.operation_ids],
            project_id=self.project_id,
            deadline=self.deadline,
            poll_interval=self.poll_interval,
        )
        return dict(operation_event(result.status, self.operation_ids, result.message))
