"""JamboAnonymizationTrigger: waits in the triggerer until a branch's anonymization has ended.

Plain values only (a connection id, never a key) and an absolute deadline, so a restarted triggerer
resumes the same wait. The rules are ``hooks/anonymization.py``'s (the sync path's too). One event:

``{"status": "success" | "failed" | "timeout" | "error", "branch_id": str, "state": str, "message": str}``
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_jambo.exceptions import JamboError
from airflow_provider_jambo.hooks.jambo import JamboHook
from airflow_provider_jambo.hooks.retry import RetryPolicy


class JamboAnonymizationTrigger(BaseTrigger):
    """Wait until ``anonymized_status`` of the branch is ``anonymized``, failed, or ``deadline`` passes.

    :param jambo_conn_id: Airflow connection id of the Jambo API.
    :param project_id: the branch's project.
    :param branch_id: the anonymized branch.
    :param deadline: absolute wall-clock deadline, epoch seconds.
    :param poll_interval: longest interval between polls, seconds.
    :param retry_policy: ``RetryPolicy.to_dict()``; None uses the connection's settings.
    """

    def __init__(
        self,
        *,
        jambo_conn_id: str,
        project_id: str,
        branch_id: str,
        deadline: float,
        poll_interval: float = 2.0,
        retry_policy: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.jambo_conn_id = jambo_conn_id
        self.project_id = project_id
        self.branch_id = branch_id
        self.deadline = float(deadline)
        self.poll_interval = float(poll_interval)
        self.retry_policy = dict(retry_policy) if retry_policy is not None else None

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "jambo_conn_id": self.jambo_conn_id,
                "project_id": self.project_id,
                "branch_id": self.branch_id,
                "deadline": self.deadline,
                "poll_interval": self.poll_interval,
                "retry_policy": self.retry_policy,
            },
        )

    def _event(self, status: str, state: str, message: str) -> TriggerEvent:
        return TriggerEvent(
            {"status": status, "branch_id": self.branch_id, "state": state, "message": message}
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        yield await self._wait()

    async def _wait(self) -> TriggerEvent:
        policy = RetryPolicy.from_dict(self.retry_policy) if self.retry_policy is not None else None
        hook = JamboHook(jambo_conn_id=self.jambo_conn_id, retry_policy=policy)
        try:
            result = await hook.await_anonymization(
                self.branch_id,
                project_id=self.project_id,
                deadline=self.deadline,
                poll_interval=self.poll_interval,
            )
        except JamboError as err:
            self.log.error("Waiting for the anonymization of %s failed: %s", self.branch_id, err)
            return self._event("error", "", str(err))
        finally:
            # Closed before the event is yielded: the triggerer may drop the generator right after.
            await hook.aclose()
        self.log.info("%s", result.message)
        return self._event(result.status, result.state, result.message)
