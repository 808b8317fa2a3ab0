"""What every Jambo trigger shares: plain-value kwargs, one hook per run, one event, the settle hold.

A trigger carries only plain values (a connection id, never a key) and an absolute wall-clock
deadline, so a triggerer that restarts and re-creates it from its serialized kwargs resumes the same
wait. Subclasses say what they wait for (:meth:`JamboWaitTrigger._wait`) and which kwargs they add
(:meth:`JamboWaitTrigger._own_kwargs`); the hook's life, the error event and the settle hold are
written here once.

A user who marks a deferred task failed (or skipped, or success), or clears it, ends its trigger:
Airflow 3.3's triggerer then calls :meth:`BaseTrigger.on_kill`, bounded by ``[triggerer]
on_kill_timeout`` (30 s by default). It is not called on the triggerer's shutdown or restart, nor
on a trigger's timeout; it is called, through the same cancel, when this triggerer finds the
trigger assigned to another one (it missed its heartbeats), which is why the task's state is read
first. A trigger given ``delete_on_kill`` (the id of the branch the deferring try created) deletes
that branch there when the task is over (:data:`DELETE_STATES`); a cleared task runs again, and
its next try adopts the branch (its annotations name this task instance), so it is kept for it:
deleting it then would race that adoption. Airflow 3.3.2's runner cancels the trigger's task again
at every sync round (about a second) until it is finished, ``on_kill`` included, so the cleanup
runs as a task of its own, shielded, that outlives those cancels (:data:`_CLEANUPS` holds it).
Airflow 2.11 to 3.2 never call ``on_kill``: there the branch's safety expiry and the janitor are
the net.

The settle hold: Airflow 3.3's task supervisor reports a deferral only at its next heartbeat (up to
~5 s later); an event that comes sooner makes the scheduler fail the requeued task
(apache/airflow#72716, #71580, #67287). So an operator gives its trigger ``not_before`` (from
:func:`settle_deadline`, read in the worker) and the trigger holds a ready event until then.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from airflow.providers.common.compat.sdk import conf
from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_jambo.exceptions import JamboError
from airflow_provider_jambo.hooks.jambo import JamboHook
from airflow_provider_jambo.hooks.operation_durations import durations_for
from airflow_provider_jambo.hooks.resources.branches import delete_request
from airflow_provider_jambo.hooks.retry import RetryPolicy
from airflow_provider_jambo.rules import seconds

#: What :func:`task_state` answers when the triggerer cannot tell (no Task SDK, no answer).
UNKNOWN_STATE = "unknown"

#: Task states in which a killed trigger deletes its try's branch: the task is over without it
#: (marked failed or skipped; removed), or its state cannot be read (``on_kill`` is documented as a
#: user's action). Any other state keeps it: ``deferred`` (the trigger moved to another
#: triggerer, whose copy still waits), ``success`` (a user marked the create done; its result was
#: pushed before deferring), cleared (None, then scheduled, queued, running: the next try adopts it).
DELETE_STATES = frozenset({"failed", "upstream_failed", "skipped", "removed", UNKNOWN_STATE})

#: The cleanups started by ``on_kill`` still running (a strong reference: the loop keeps only weak ones).
_CLEANUPS: set[asyncio.Task[None]] = set()

#: Taken off ``[triggerer] on_kill_timeout`` so the cleanup ends (and logs) before Airflow cancels it.
ON_KILL_MARGIN_SECONDS = 2.0

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
    :param delete_on_kill: id of a branch the deferring try created, deleted by :meth:`on_kill`
        (a user marked the task failed or cleared it); None deletes nothing. An id, never a name:
        a branch of the same name made later by anyone else is not touched.
    :param durations: optional, the spans (seconds) the deferring task's process learned per
        action (``Durations.samples()``): a triggerer that has seen none of those actions times
        its looks by them, as the task's own wait would have (plain numbers, nothing secret).
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
        delete_on_kill: str | None = None,
        durations: Mapping[str, Sequence[float]] | None = None,
    ) -> None:
        super().__init__()
        self.jambo_conn_id = jambo_conn_id
        self.project_id = project_id
        self.deadline = float(deadline)
        self.poll_interval = float(poll_interval)
        self.retry_policy = dict(retry_policy) if retry_policy is not None else None
        self.not_before = float(not_before) if not_before is not None else None
        self.delete_on_kill = str(delete_on_kill) if delete_on_kill is not None else None
        self.durations = (
            {str(action): [float(s) for s in spans] for action, spans in durations.items()}
            if durations
            else None
        )

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
                "delete_on_kill": self.delete_on_kill,
                "durations": self.durations,
            },
        )

    def _before_delete(self) -> list[str]:
        """Operations :meth:`on_kill` lets finish before its delete (the service refuses a delete
        while the branch's create runs)."""
        return []

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
        if self.durations:
            durations_for(self.project_id).seed(self.durations)
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

    async def on_kill(self) -> None:
        """Airflow 3.3, a user ended the deferred task: delete the branch its try created
        (``delete_on_kill``) when the task is over (:data:`DELETE_STATES`; module docstring).

        Never blocks the loop (the async client), never raises (failures are logged: Airflow would
        only log them too). Takes ``[triggerer] on_kill_timeout`` at most, on its own clock (it is
        shielded from the runner's repeated cancels: module docstring); a delete that does not fit
        is left to the branch's safety expiry and the janitor.
        """
        if self.delete_on_kill is None:
            return
        cleanup = asyncio.get_running_loop().create_task(self._delete_after_kill(self.delete_on_kill))
        _CLEANUPS.add(cleanup)
        cleanup.add_done_callback(_CLEANUPS.discard)
        await asyncio.shield(cleanup)

    async def _delete_after_kill(self, branch_id: str) -> None:
        state = await task_state(getattr(self, "task_instance", None))
        if state not in DELETE_STATES:
            self.log.info(
                "The task is %s (its trigger ended): branch %s is kept for it",
                state or "cleared",
                branch_id,
            )
            return
        budget = conf.getfloat("triggerer", "on_kill_timeout", fallback=30.0) - ON_KILL_MARGIN_SECONDS
        deadline = time.time() + max(budget, 1.0)
        hook = self._hook()
        try:
            # The service refuses a delete while the create's operations run (423): let them end.
            if pending := self._before_delete():
                await hook.operations.wait_async(pending, project_id=self.project_id, deadline=deadline)
            deleting = await hook.arequest(delete_request(self.project_id, branch_id))
            waited = await hook.operations.wait_async(deleting, project_id=self.project_id, deadline=deadline)
        except JamboError as err:
            self.log.error(
                "The deferred task was ended (now %s); deleting branch %s, which its try created, "
                "failed: %s. Its safety expiry, if it has one, or the janitor deletes it",
                state,
                branch_id,
                err,
            )
            return
        finally:
            await hook.aclose()
        self.log.warning(
            "The deferred task was ended (now %s): deleted branch %s, which its try created (%s)",
            state,
            branch_id,
            waited.message,
        )


async def task_state(ti: Any) -> str | None:
    """The current state of the trigger's task instance, read through the triggerer (Airflow 3.3):
    None for a cleared one, :data:`UNKNOWN_STATE` where it cannot be read (no task instance, no Task
    SDK, an answer without it)."""
    if ti is None:
        return UNKNOWN_STATE
    try:
        from airflow.sdk.execution_time import task_runner
        from airflow.sdk.execution_time.comms import GetTaskStates
    except ImportError:  # Airflow 2: no Task SDK (and no on_kill either)
        return UNKNOWN_STATE
    comms = getattr(task_runner, "SUPERVISOR_COMMS", None)
    if comms is None:
        return UNKNOWN_STATE
    map_index = getattr(ti, "map_index", -1)
    answer = await comms.asend(
        GetTaskStates(dag_id=ti.dag_id, task_ids=[ti.task_id], run_ids=[ti.run_id], map_index=map_index)
    )
    states = getattr(answer, "task_states", None) or {}
    key = ti.task_id if map_index is None or map_index < 0 else f"{ti.task_id}_{map_index}"
    found = states.get(ti.run_id) or {}
    if key not in found:
        return UNKNOWN_STATE
    state = found[key]
    return str(state) if state is not None else None
