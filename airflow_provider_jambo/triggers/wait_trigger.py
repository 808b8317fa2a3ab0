"""What every Jambo trigger shares: plain-value kwargs, one hook per run, one event, the settle hold.

A trigger carries only plain values (a connection id, never a key) and an absolute wall-clock
deadline, so a triggerer that restarts and re-creates it from its serialized kwargs resumes the same
wait. Subclasses say what they wait for (:meth:`JamboWaitTrigger._wait`) and which kwargs they add
(:meth:`JamboWaitTrigger._own_kwargs`); the hook's life, the error event and the settle hold are
written here once.

The settle hold: Airflow 3.3's task supervisor reports a deferral only at its next heartbeat (up to
~5 s later); an event that comes sooner makes the scheduler fail the requeued task
(apache/airflow#72716, #71580, #67287). So an operator gives its trigger ``not_before`` (from
:func:`settle_deadline`, read in the worker) and the trigger holds a ready event until then.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from airflow.providers.common.compat.sdk import conf
from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_jambo.exceptions import JamboError
from airflow_provider_jambo.hooks.jambo import JamboHook
from airflow_provider_jambo.hooks.retry import RetryPolicy
from airflow_provider_jambo.rules import seconds

#: How long after a deferral a trigger may fire at the earliest (seconds);
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


class JamboWaitTrigger(BaseTrigger):
    """A wait on one project that ends in exactly one event.

    :param jambo_conn_id: Airflow connection id of the Jambo API (the key stays in the connection).
    :param project_id: the project waited on.
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
        deadline: float,
        poll_interval: float = 2.0,
        retry_policy: dict[str, Any] | None = None,
        not_before: float | None = None,
    ) -> None:
        super().__init__()
        self.jambo_conn_id = jambo_conn_id
        self.project_id = project_id
        self.deadline = float(deadline)
        self.poll_interval = float(poll_interval)
        self.retry_policy = dict(retry_policy) if retry_policy is not None else None
        self.not_before = float(not_before) if not_before is not None else None

    @property
    def subject(self) -> str:
        """What the wait is, for the log line of a failed wait ("operations [...]", "branch ...")."""
        return "the wait"

    def _own_kwargs(self) -> dict[str, Any]:
        """The subclass's kwargs, plain values, serialized beside the common ones."""
        return {}

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "jambo_conn_id": self.jambo_conn_id,
                "project_id": self.project_id,
                **self._own_kwargs(),
                "deadline": self.deadline,
                "poll_interval": self.poll_interval,
                "retry_policy": self.retry_policy,
                "not_before": self.not_before,
            },
        )

    def _hook(self) -> JamboHook:
        policy = RetryPolicy.from_dict(self.retry_policy) if self.retry_policy is not None else None
        return JamboHook(jambo_conn_id=self.jambo_conn_id, retry_policy=policy)

    async def _wait(self, hook: JamboHook) -> dict[str, Any]:
        """Wait with ``hook``; the event's payload."""
        raise NotImplementedError

    def _error_payload(self, message: str) -> dict[str, Any]:
        """The event's payload when the wait itself failed (``status`` is ``error``)."""
        raise NotImplementedError

    async def run(self) -> AsyncIterator[TriggerEvent]:
        hook = self._hook()
        try:
            payload = await self._wait(hook)
        except JamboError as err:
            # The provider's own errors (auth, connection missing here, not found, retries
            # exhausted) become an event the operator reports and cleans up after; anything else is
            # a bug and fails the trigger loudly.
            self.log.error("Waiting for %s failed: %s", self.subject, err)
            payload = self._error_payload(str(err))
        finally:
            # Closed before the event is held and yielded: the triggerer may drop the generator
            # right after the event.
            await hook.aclose()
        self.log.info("%s", payload.get("message", ""))
        await settle_until(self.not_before)
        yield TriggerEvent(payload)
