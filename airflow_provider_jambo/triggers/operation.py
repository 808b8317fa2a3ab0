"""JamboOperationTrigger: waits in the triggerer for Jambo operations to finish.

It carries only plain values (a connection id, never a key) and an absolute wall-clock deadline, so
a triggerer that restarts and re-creates it from its serialized kwargs resumes the same wait. The
waiting rules (what counts as done, failed, when to poll) are the hook's (``hooks/waiting.py``), the
same as the synchronous path's. It yields exactly one event:

``{"status": "success" | "failed" | "timeout" | "error", "operation_ids": [...], "message": str}``

The trigger never fails the task itself on a timeout: it reports it, and the deferred operator
decides (an operator creating a branch, for instance, still hands the branch id to its teardown).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

from airflow.providers.common.compat.sdk import conf
from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_jambo.exceptions import JamboError
from airflow_provider_jambo.hooks.jambo import JamboHook
from airflow_provider_jambo.hooks.retry import RetryPolicy
from airflow_provider_jambo.models import operation_event
from airflow_provider_jambo.rules import seconds

#: How long after a deferral a trigger may fire at the earliest (seconds). Airflow 3.3's task
#: supervisor reports a deferral only at its next heartbeat (up to ~5 s later); an event that comes
#: sooner makes the scheduler fail the requeued task (apache/airflow#72716, #71580, #67287).
#: ``[jambo] deferral_settle_seconds`` (``AIRFLOW__JAMBO__DEFERRAL_SETTLE_SECONDS``) overrides it.
DEFERRAL_SETTLE_SECONDS = 8.0


def settle_deadline(now: float | None = None) -> float:
    """The ``not_before`` an operator gives the trigger it defers to (read in the worker)."""
    settle = seconds(
        "[jambo] deferral_settle_seconds",
        conf.getfloat("jambo", "deferral_settle_seconds", fallback=DEFERRAL_SETTLE_SECONDS),
        allow_zero=True,
    )
    return (time.time() if now is None else now) + settle


async def settle_until(not_before: float | None) -> None:
    """Hold a ready event until ``not_before``, so it never overtakes the worker's deferral report.

    A triggerer that restarts re-creates the trigger with the same absolute ``not_before``, so the
    hold is never longer than the first one.
    """
    if not_before is not None:
        delay = not_before - time.time()
        if delay > 0:
            await asyncio.sleep(delay)


class JamboOperationTrigger(BaseTrigger):
    """Wait until the given operations of a project are done, failed, or ``deadline`` passes.

    :param jambo_conn_id: Airflow connection id of the Jambo API (the key stays in the connection).
    :param project_id: project the operations belong to.
    :param operation_ids: ids of the operations to wait for.
    :param deadline: absolute wall-clock deadline, epoch seconds (``time.time()`` scale).
    :param poll_interval: longest interval between polls, seconds (polling starts shorter).
    :param retry_policy: ``RetryPolicy.to_dict()`` for transient API errors while polling;
        None uses the connection's settings.
    :param not_before: epoch seconds before which no event is yielded (see :func:`settle_until`).
    """

    def __init__(
        self,
        *,
        jambo_conn_id: str,
        project_id: str,
        operation_ids: Sequence[str],
        deadline: float,
        poll_interval: float = 2.0,
        retry_policy: dict[str, Any] | None = None,
        not_before: float | None = None,
    ) -> None:
        super().__init__()
        self.jambo_conn_id = jambo_conn_id
        self.project_id = project_id
        self.operation_ids = [str(op_id) for op_id in operation_ids]
        self.deadline = float(deadline)
        self.poll_interval = float(poll_interval)
        self.retry_policy = dict(retry_policy) if retry_policy is not None else None
        self.not_before = float(not_before) if not_before is not None else None

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "jambo_conn_id": self.jambo_conn_id,
                "project_id": self.project_id,
                "operation_ids": list(self.operation_ids),
                "deadline": self.deadline,
                "poll_interval": self.poll_interval,
                "retry_policy": self.retry_policy,
                "not_before": self.not_before,
            },
        )

    def _event(self, status: str, message: str) -> TriggerEvent:
        return TriggerEvent(dict(operation_event(status, self.operation_ids, message)))

    def _hook(self) -> JamboHook:
        policy = RetryPolicy.from_dict(self.retry_policy) if self.retry_policy is not None else None
        return JamboHook(jambo_conn_id=self.jambo_conn_id, retry_policy=policy)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        event = await self._wait()
        await settle_until(self.not_before)
        yield event

    async def _wait(self) -> TriggerEvent:
        hook = self._hook()
        try:
            result = await hook.await_operations(
                self.operation_ids,
                project_id=self.project_id,
                deadline=self.deadline,
                poll_interval=self.poll_interval,
            )
        except JamboError as err:
            # The provider's own errors (auth, not found, retries exhausted, bad connection) become
            # an event the operator reports; anything else is a bug and fails the trigger loudly.
            self.log.error("Waiting for operations %s failed: %s", self.operation_ids, err)
            return self._event("error", str(err))
        finally:
            # Closed before the event is yielded: the triggerer may drop the generator right after.
            await hook.aclose()
        self.log.info("Operations %s: %s", self.operation_ids, result.message)
        return self._event(result.status, result.message)
