"""JamboBaseOperator: what every Jambo operator shares.

- The hook is built lazily in ``execute`` (never in ``__init__``): parsing a DAG makes no connection
  lookup and no API call.
- Waiting for the operations a call started, either here (``wait_for_completion``) or deferred to
  :class:`~airflow_provider_jambo.triggers.operation_trigger.JamboOperationTrigger` (``deferrable``).
- The operator owns its deadline (``timeout``): the trigger reports a timeout and the operator fails
  with a clear message, instead of ``execution_timeout`` killing the task (which would skip cleanup).
  One deadline per task run covers its waits for a locked project and for its own operations.
- Short operations never go through a deferral round trip: a deferrable operator first waits
  inline for ``defer_grace_seconds`` (longer than Airflow's ~5 s deferral round trip) and defers
  only if its operations are still pending. Besides saving the round trip, this keeps the usual
  3-second operations clear of an Airflow race where a trigger firing before the worker has
  reported the deferral gets the task marked failed (apache/airflow#72716, #71580, #67287).
- A locked project (423) is a queue, not a failure: every change is sent through :meth:`send`, which
  waits until the project's operations in flight are done (``hooks/project_lock.py``; in the
  triggerer when deferrable, after the same inline grace) and sends again, until the deadline.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from functools import cached_property
from importlib.metadata import version
from typing import TYPE_CHECKING, Any, TypeVar

from airflow.providers.common.compat.sdk import Asset, AssetAlias, BaseOperator, conf

from airflow_provider_jambo.exceptions import (
    JamboConfigError,
    JamboError,
    JamboLockedError,
    JamboOperationFailedError,
    JamboOperationTimeoutError,
)
from airflow_provider_jambo.links import JamboConsoleLink
from airflow_provider_jambo.rules import (
    DEFAULT_CONN_ID,
    check_id,
    check_poll_interval,
    check_ref,
    check_timeout,
    is_known,
    seconds,
)

# The hook (httpx), models, triggers and tenacity are imported where a task runs, not here: every
# DAG file using these operators imports this module while it is parsed (benchmarks/dag_parse_cost.py).
if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context

    from airflow_provider_jambo.api_models import Operation
    from airflow_provider_jambo.hooks.jambo import JamboHook

#: An operator's XCom result (a TypedDict of ``operators/results.py``, or a plain dict).
ResultT = TypeVar("ResultT", bound=Mapping[str, Any])
#: Default time the operator waits for its operations (seconds).
DEFAULT_TIMEOUT = 30 * 60.0
#: Inline wait before a deferrable operator defers (seconds): longer than Airflow's deferral round
#: trip (~5 s: the task supervisor reaps the deferred process at its next heartbeat).
DEFAULT_DEFER_GRACE = 10.0

T = TypeVar("T")


#: Airflow 3.0's execution API refuses an XCom whose value is None ("Field required", a 422 that fails
#: the task), and with ``multiple_outputs`` Airflow pushes every key of a result as its own XCom. On
#: that line the keys whose value is None are left out of what a task returns and pushes (a pull of
#: one gets nothing, as for None); every other line keeps them.
XCOM_REFUSES_NONE = version("apache-airflow").startswith("3.0.")


def xcom_value(result: Any) -> Any:
    """``result`` as this Airflow line can store it (see :data:`XCOM_REFUSES_NONE`)."""
    if XCOM_REFUSES_NONE and isinstance(result, Mapping):
        return {key: value for key, value in result.items() if value is not None}
    return result


def _returns_xcom_value(method: Callable[..., Any]) -> Callable[..., Any]:
    if getattr(method, "_returns_xcom_value", False):
        return method

    @functools.wraps(method)
    def run(self: Any, *args: Any, **kwargs: Any) -> Any:
        return xcom_value(method(self, *args, **kwargs))

    run._returns_xcom_value = True  # type: ignore[attr-defined]
    return run


def _rendered(*values: Any) -> bool:
    """At run time every template is rendered, so every value can be checked."""
    return True


class JamboBaseOperator(BaseOperator):
    """Common arguments of the Jambo operators.

    :param jambo_conn_id: Airflow connection of the Jambo API (templated).
    :param project_id: project to act on (templated); default: the connection's ``project_id`` extra.
    :param wait_for_completion: wait until every operation the call started has finished.
    :param deferrable: wait in the triggerer instead of holding a worker slot; default from
        ``[operators] default_deferrable``.
    :param timeout: how long to wait for the operations (seconds or timedelta). When it passes the
        task fails with a message naming the operations still in flight.
    :param poll_interval: longest interval between status checks, seconds (polling starts shorter
        and backs off up to it).
    :param defer_grace_seconds: with ``deferrable``, wait this long inline first and defer only if
        the operations (or a lock on the project) are still pending; 0 defers at once. Default:
        ``[jambo] default_defer_grace_seconds`` (``AIRFLOW__JAMBO__DEFAULT_DEFER_GRACE_SECONDS``), else 10.
    """

    template_fields: Sequence[str] = ("jambo_conn_id", "project_id")
    operator_extra_links = (JamboConsoleLink(),)
    ui_color = "#c9f2e1"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if XCOM_REFUSES_NONE:
            # What Airflow pushes is what execute, or the method a deferral resumes, returns
            # (inherited ones included: each class gets its own wrapper, never a second one).
            for name in dir(cls):
                if name.startswith("execute") and callable(method := getattr(cls, name)):
                    setattr(cls, name, _returns_xcom_value(method))

    def __init__(
        self,
        *,
        jambo_conn_id: str = DEFAULT_CONN_ID,
        project_id: str | None = None,
        wait_for_completion: bool = True,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        timeout: timedelta | float = DEFAULT_TIMEOUT,
        poll_interval: float = 2.0,
        defer_grace_seconds: float = conf.getfloat(
            "jambo", "default_defer_grace_seconds", fallback=DEFAULT_DEFER_GRACE
        ),
        **kwargs: Any,
    ) -> None:
        # Each key of the returned dict is also its own XCom, so ``task.output["branch_id"]`` works.
        kwargs.setdefault("multiple_outputs", True)
        super().__init__(**kwargs)
        self.jambo_conn_id = jambo_conn_id
        self.project_id = project_id
        self.wait_for_completion = wait_for_completion
        self.deferrable = deferrable
        self.timeout = check_timeout("timeout", timeout)
        self.poll_interval = check_poll_interval("poll_interval", poll_interval)
        if project_id is not None and self._known(project_id):
            check_id("project_id", project_id)
        self.defer_grace_seconds = seconds("defer_grace_seconds", defer_grace_seconds, allow_zero=True)
        # Set on the first call of run_deadline(); carried across deferrals in the resume kwargs.
        self._deadline: float | None = None
        #: (project_id, branch_id, API base URL) of what this task returned, for JamboConsoleLink.
        self.console_target: tuple[str, str, str | None] | None = None

    # -- parse-time checks --------------------------------------------------------------------------

    def _known(self, *values: Any) -> bool:
        """True when none of ``values`` is a template still to render (so they can be checked now)."""
        return is_known(*values)

    def _checkable(self, *, at_parse: bool) -> Callable[..., bool]:
        """Which values a ``_validate`` may check now: the known ones at parse, all at run time."""
        return self._known if at_parse else _rendered

    # -- run time -----------------------------------------------------------------------------------

    def remember_result(self, result: Mapping[str, Any] | None) -> None:
        """Keep the ids the console link shows (read back at the end of the task, Airflow 3)."""
        if not result or not result.get("project_id") or not result.get("branch_id"):
            return
        try:
            base_url: str | None = self.hook.settings.base_url
        except JamboConfigError:
            base_url = None
        self.console_target = (str(result["project_id"]), str(result["branch_id"]), base_url)

    def push_early(self, context: Context, result: Mapping[str, Any]) -> None:
        """Push ``result`` before waiting, as the task's return value would be.

        If the wait then fails or times out, a teardown reading ``task.output["branch_id"]`` (or the
        return value) still finds what was created.
        """
        if not self.do_xcom_push:
            return
        ti = context["ti"]
        pushed = xcom_value(result)
        if self.multiple_outputs:
            for key, value in pushed.items():
                ti.xcom_push(key=key, value=value)
        ti.xcom_push(key="return_value", value=pushed)

    @cached_property
    def hook(self) -> JamboHook:
        return self.make_hook()

    def make_hook(self) -> JamboHook:
        """A hook for this task: a change refused with 423 is raised at once, as :meth:`send`
        waits for the project itself (``hooks/project_lock.py``)."""
        from airflow_provider_jambo.hooks.jambo import JamboHook
        from airflow_provider_jambo.hooks.project_lock import OnLocked

        return JamboHook(jambo_conn_id=self.jambo_conn_id, on_locked=OnLocked.RAISE)

    def run_deadline(self) -> float:
        """The absolute deadline (epoch seconds) of this task run's waits: ``timeout`` from its start."""
        if self._deadline is None:
            self._deadline = time.time() + self.timeout
        return self._deadline

    def send(
        self,
        call: Callable[[], T],
        *,
        project_id: str,
        deadline: float | None = None,
        defer: bool = True,
        hook: JamboHook | None = None,
    ) -> T:
        """Make a change (``call``); while the project is locked (423), wait until its operations in
        flight are done and send it again, until ``deadline`` (default: :meth:`run_deadline`).

        A deferrable operator waits inline for ``defer_grace_seconds`` at most, then defers to
        :class:`JamboProjectIdleTrigger` and runs ``execute`` again when the project is unlocked
        (``defer=False`` keeps the whole wait inline, e.g. for a cleanup). ``hook`` (default
        ``self.hook``) is the one ``call`` uses.
        """
        deadline = self.run_deadline() if deadline is None else deadline
        while True:
            try:
                return call()
            except JamboLockedError as err:
                self._wait_unlocked(
                    err, hook or self.hook, project_id=project_id, deadline=deadline, defer=defer
                )

    def _wait_unlocked(
        self, err: JamboLockedError, hook: JamboHook, *, project_id: str, deadline: float, defer: bool
    ) -> None:
        now = time.time()
        budget = max(0.0, deadline - now)
        deferring = defer and self.deferrable
        inline_until = min(deadline, now + self.defer_grace_seconds) if deferring else deadline
        self.log.info(
            "Project %s is locked (%s): waiting for its operations in flight, then sending again",
            project_id,
            err.message,
        )
        from airflow_provider_jambo.hooks.operation_durations import durations_for
        from airflow_provider_jambo.hooks.project_lock import resend_jitter, wait_until_idle
        from airflow_provider_jambo.triggers.project_idle_trigger import JamboProjectIdleTrigger
        from airflow_provider_jambo.triggers.wait_trigger import settle_deadline

        waited = wait_until_idle(
            hook.request,
            lambda operations: hook.operations.wait(
                operations, project_id=project_id, deadline=inline_until, poll_interval=self.poll_interval
            ),
            project_id,
            deadline=inline_until,
            clock=hook.clock,
        )
        if waited.succeeded:
            hook.sleep(resend_jitter())
            return
        if deferring and time.time() < deadline:
            self.log.info("Project %s still busy: deferring until it is unlocked", project_id)
            self.defer(
                trigger=JamboProjectIdleTrigger(
                    jambo_conn_id=self.jambo_conn_id,
                    project_id=project_id,
                    deadline=deadline,
                    poll_interval=self.poll_interval,
                    retry_policy=self.hook.retry_policy.to_dict(),
                    not_before=settle_deadline(),
                    # What this process learned of the operations in flight: the triggerer
                    # times its looks at them as the inline wait did.
                    durations=durations_for(project_id).samples(op.action for op in waited.operations),
                ),
                method_name="execute_unlocked",
                kwargs={"deadline": deadline},
            )
        raise JamboOperationTimeoutError(
            f"{err.method} {err.path} was refused while project {project_id} was locked "
            f"({err.status} {err.message}), and it stayed locked for the {budget:.1f} s left "
            f"of the timeout: {waited.message}",
            waited.operations,
        ) from err

    def execute_unlocked(self, context: Context, event: dict[str, Any], deadline: float) -> Any:
        """Resume after :class:`JamboProjectIdleTrigger`: run ``execute`` again (it re-sends the
        change; creates adopt what exists), under the same deadline."""
        self._deadline = float(deadline)
        status, message = event.get("status"), event.get("message")
        if status == "timeout":
            raise JamboOperationTimeoutError(
                f"the project stayed locked until the timeout of {self.timeout:g} s: {message}"
            )
        if status != "success":
            raise JamboError(f"waiting for the project to be unlocked failed: {message}")
        return self.execute(context)

    def resolved_project_id(self) -> str:
        if self.project_id is not None:
            return check_id("project_id", self.project_id)
        return self.hook.project_id

    def reference(self, field: str, key: str) -> str:
        """The rendered value of ``field``: an id/name, or an upstream Jambo task's result dict
        (``branch=create_branch.output``), whose ``key`` is used (and its ``project_id`` when this
        task names none)."""
        value = getattr(self, field)
        if isinstance(value, Mapping):
            if not value.get(key):
                raise JamboConfigError(
                    f"{field} is a dict without a {key!r} (pass an id, a name, or a Jambo task's result)"
                )
            if self.project_id is None and value.get("project_id"):
                self.project_id = str(value["project_id"])
            value = value[key]
        return check_ref(field, value)

    def wait_for(
        self,
        context: Context,
        *,
        project_id: str,
        operations: Sequence[Operation],
        result: ResultT,
    ) -> ResultT | None:
        """Wait for ``operations`` (here or deferred) and return ``result`` once they all succeeded."""
        self.remember_result(result)
        ids = [op.id for op in operations]
        if not self.wait_for_completion or not ids:
            self.succeeded(context, result)
            return result
        deadline = self.run_deadline()
        if self.deferrable and self.defer_grace_seconds > 0:
            # Most operations take seconds: finish them here rather than through a deferral. The
            # grace is the hook's wait with its timing: it ends (without a look of its own) once
            # the next look would come after the grace, and the trigger goes on from what it saw.
            grace_end = min(deadline, time.time() + self.defer_grace_seconds)
            soft = grace_end < deadline
            waited = self.hook.operations.wait(
                operations,
                project_id=project_id,
                deadline=deadline if soft else grace_end,
                until=grace_end if soft else None,
                poll_interval=self.poll_interval,
            )
            if waited.status != "timeout" or not soft:
                self._finish(waited.status, ids, waited.message, result)
                self.succeeded(context, result)
                return result
            seen = {op.id: op for op in waited.operations}
            operations = [seen.get(op.id, op) for op in operations]
        if self.deferrable:
            from airflow_provider_jambo.hooks.operation_durations import durations_for
            from airflow_provider_jambo.triggers.operation_trigger import JamboOperationTrigger
            from airflow_provider_jambo.triggers.wait_trigger import settle_deadline

            self.log.info("Deferring until operations %s finish (timeout %.0f s)", ids, self.timeout)
            self.push_early(context, result)
            self.defer(
                trigger=JamboOperationTrigger(
                    jambo_conn_id=self.jambo_conn_id,
                    project_id=project_id,
                    operation_ids=ids,
                    operations=[dict(op.raw) for op in operations],
                    # What this process learned of these actions: a triggerer elsewhere times
                    # its looks as this task would have (plain numbers, nothing secret).
                    durations=durations_for(project_id).samples(op.action for op in operations),
                    deadline=deadline,
                    poll_interval=self.poll_interval,
                    retry_policy=self.hook.retry_policy.to_dict(),
                    not_before=settle_deadline(),
                    delete_on_kill=self.delete_on_kill(),
                ),
                method_name="execute_complete",
                kwargs={"result": result, "state": self.resume_state},
            )
        self.log.info("Waiting for operations %s (timeout %.0f s)", ids, self.timeout)
        waited = self.hook.operations.wait(
            operations, project_id=project_id, deadline=deadline, poll_interval=self.poll_interval
        )
        self._finish(waited.status, ids, waited.message, result)
        self.succeeded(context, result)
        return result

    def delete_on_kill(self) -> str | None:
        """The branch a deferred trigger deletes when a user ends the task (Airflow 3.3's
        ``BaseTrigger.on_kill``): the one this try created, for the all-or-nothing operators."""
        return None

    def execute_complete(
        self,
        context: Context,
        event: dict[str, Any],
        result: Mapping[str, Any] | None = None,
        state: Mapping[str, Any] | None = None,
    ) -> Mapping[str, Any] | None:
        """Resume after the trigger's event: return ``result`` on success, fail otherwise."""
        from airflow_provider_jambo.triggers.operation_events import parse_operation_event

        if state:
            self.resume_state = dict(state)

        parsed = parse_operation_event(event)
        finished = self._finish(
            parsed["status"],
            parsed["operation_ids"],
            parsed["message"],
            self._result_after_deferral(context, result),
        )
        self.succeeded(context, finished)
        return finished

    #: Plain values (names, never a secret) a task keeps across its deferral: set before
    #: ``wait_for``, handed back to the resumed task (lineage names what execute resolved).
    resume_state: dict[str, Any] | None = None

    def succeeded(self, context: Context, result: Mapping[str, Any] | None) -> None:
        """The task's change is done (inline or after a deferral): tell its outlets and lineage."""
        self.fill_outlets(context, result)
        if result:
            self.record_change(result)

    def record_change(self, result: Mapping[str, Any]) -> None:
        """Keep what the task changed, for its lineage (branch operators; nothing by default)."""

    def asset_extra(self, result: Mapping[str, Any]) -> dict[str, Any] | None:
        """What this task's success says in the asset events of its outlets; None: nothing (the
        default: a delete, say, emits no asset event of its own). Ids, names, times: never a secret."""
        return None

    def alias_asset(self, result: Mapping[str, Any]) -> Any:
        """The asset this task adds to the asset aliases among its outlets; None (the default):
        aliases are left alone, nothing is added to one unasked."""
        return None

    def fill_outlets(self, context: Context, result: Mapping[str, Any] | None) -> None:
        """Put :meth:`asset_extra` and the run's ids into the extra of every asset this task declares
        as an outlet, and add :meth:`alias_asset` (with that extra) to every asset alias."""
        extra = self.asset_extra(result) if result else None
        outlet_events = context.get("outlet_events")
        if not extra or outlet_events is None:
            return
        ti = context["ti"]
        extra = {
            **extra,
            "dag_id": ti.dag_id,
            "run_id": ti.run_id,
            "task_id": ti.task_id,
            "try_number": getattr(ti, "try_number", None),
        }
        to_alias = self.alias_asset(result) if result else None
        for outlet in self.outlets or ():
            if isinstance(outlet, Asset):
                outlet_events[outlet].extra.update(extra)
            elif isinstance(outlet, AssetAlias) and to_alias is not None:
                outlet_events[outlet].add(to_alias, extra=extra)

    def _result_after_deferral(
        self, context: Context, result: Mapping[str, Any] | None
    ) -> Mapping[str, Any] | None:
        """The result handed to the deferral, back in the resumed task.

        It travels in next_kwargs; `airflow dags test` replaces those with the event when it runs
        the trigger inline, so it falls back to the copy pushed before deferring.
        """
        if result is not None:
            return result
        pulled = context["ti"].xcom_pull(task_ids=self.task_id, key="return_value")
        return pulled if isinstance(pulled, Mapping) else None

    def _finish(
        self, status: str, operation_ids: list[str], message: str, result: Mapping[str, Any] | None
    ) -> Mapping[str, Any] | None:
        if status == "success":
            self.log.info("Operations %s finished: %s", operation_ids, message)
            self.remember_result(result)
            return result
        hint = self.failure_hint(result)
        if status == "failed":
            raise JamboOperationFailedError(f"{message}{hint}")
        if status == "timeout":
            raise JamboOperationTimeoutError(
                f"operations {', '.join(operation_ids)} not done within the timeout of "
                f"{self.timeout:g} s: {message}{hint}"
            )
        raise JamboError(f"waiting for operations {', '.join(operation_ids)} failed: {message}{hint}")

    def failure_hint(self, result: Mapping[str, Any] | None) -> str:
        """Extra text for a failed wait (e.g. which branch was left behind); empty by default."""
        return ""
