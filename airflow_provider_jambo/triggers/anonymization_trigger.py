"""JamboAnonymizationTrigger: waits in the triggerer until a branch's anonymization has ended.

Its kwargs, hook, error event and settle hold are ``triggers/wait_trigger.py``'s. The rules are
``hooks/anonymization.py``'s (the sync path's too). One event:

``{"status": "success" | "failed" | "timeout" | "error", "branch_id": str, "state": str, "message": str}``
"""

from __future__ import annotations

from typing import Any

from airflow_provider_jambo.hooks.jambo import JamboHook
from airflow_provider_jambo.triggers.wait_trigger import JamboWaitTrigger


class JamboAnonymizationTrigger(JamboWaitTrigger):
    """Wait until ``anonymized_status`` of the branch is ``anonymized``, failed, or ``deadline`` passes.

    :param branch_id: the anonymized branch.

    The other arguments are :class:`~airflow_provider_jambo.triggers.wait_trigger.JamboWaitTrigger`'s
    (``jambo_conn_id``, ``project_id``, ``deadline``, ``poll_interval``, ``retry_policy``,
    ``not_before``).
    """

    def __init__(self, *, branch_id: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.branch_id = branch_id

    @property
    def subject(self) -> str:
        return f"the anonymization of branch {self.branch_id}"

    def _own_kwargs(self) -> dict[str, Any]:
        return {"branch_id": self.branch_id}

    def _payload(self, status: str, state: str, message: str) -> dict[str, Any]:
        return {"status": status, "branch_id": self.branch_id, "state": state, "message": message}

    def _error_payload(self, message: str) -> dict[str, Any]:
        return self._payload("error", "", message)

    async def _wait(self, hook: JamboHook) -> dict[str, Any]:
        result = await hook.anonymization.wait_async(
            self.branch_id,
            project_id=self.project_id,
            deadline=self.deadline,
            poll_interval=self.poll_interval,
        )
        return self._payload(result.status, result.state, result.message)
