"""JamboOperationSensor: wait for Jambo operations started elsewhere (another DAG, a CI job, a person).

Targets, in order of precedence:

- ``operation_ids`` (templated; a list, or a string of ids separated by commas/whitespace, or a
  rendered list such as ``"['id1', 'id2']"``);
- otherwise every operation of ``branch`` (id or exact name) in flight when the sensor starts;
- otherwise every operation of the project in flight when the sensor starts.

(In-flight operations are looked up among those started in the last day; the list is newest first.)

In ``poke`` and deferrable mode the set of in-flight operations is taken once, when the sensor
starts; in ``reschedule`` mode each poke takes it again (the sensor then waits until nothing is in
flight). Honours ``timeout`` (a deferred sensor carries it as an absolute deadline) and ``soft_fail``
(skip instead of fail on failed operations or a timeout).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import (
    AirflowException,
    AirflowFailException,
    AirflowSensorTimeout,
    AirflowSkipException,
    BaseSensorOperator,
    PokeReturnValue,
    conf,
)

from airflow_provider_jambo.exceptions import JamboConfigError
from airflow_provider_jambo.rules import (
    DEFAULT_CONN_ID,
    check_id,
    check_operation_ids,
    check_poll_interval,
    check_ref,
    is_known,
)

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context

    from airflow_provider_jambo.hooks.jambo import JamboHook

#: Airflow's own deferral timeout fires this much after the trigger's deadline, so the trigger's
#: clearer timeout message (naming the operations) normally wins; both end as a sensor timeout.
DEFERRAL_TIMEOUT_MARGIN = timedelta(seconds=60)


#: ``next_kwargs["error"]`` when Airflow times a deferral out (2.x scheduler; 3.x TriggerFailureReason).
_DEFERRAL_TIMEOUT_ERRORS = frozenset({"Trigger timeout", "Trigger/execution timeout"})


class JamboOperationSensor(BaseSensorOperator):
    """Wait until Jambo operations are done; fail (or skip with ``soft_fail``) naming failed ones.

    :param operation_ids: ids to wait for (templated).
    :param branch: wait for the operations of this branch (id or exact name, templated) in flight
        at start; exclusive with ``operation_ids``.
    :param project_id: project (templated); default: the connection's ``project_id`` extra.
    :param jambo_conn_id: Airflow connection of the Jambo API (templated).
    :param deferrable: wait in the triggerer; default from ``[operators] default_deferrable``.
    """

    template_fields: Sequence[str] = ("jambo_conn_id", "project_id", "operation_ids", "branch")
    ui_color = "#c9f2e1"

    def __init__(
        self,
        *,
        operation_ids: Sequence[str] | str | None = None,
        branch: str | None = None,
        project_id: str | None = None,
        jambo_conn_id: str = DEFAULT_CONN_ID,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        poke_interval: timedelta | float = 5,
        **kwargs: Any,
    ) -> None:
        # Checked before BaseSensorOperator sees it: 0 would poll the API in a busy loop.
        check_poll_interval("poke_interval", poke_interval)
        super().__init__(poke_interval=poke_interval, **kwargs)
        if operation_ids is not None and branch is not None:
            raise JamboConfigError("give either operation_ids or branch, not both")
        self.operation_ids = operation_ids
        self.branch = branch
        self.project_id = project_id
        self.jambo_conn_id = jambo_conn_id
        self.deferrable = deferrable
        self._targets: list[str] | None = None
        self._validate()

    def _validate(self) -> None:
        """Check the arguments whose value is known (at parse time; all of them once rendered)."""
        if self.operation_ids is not None and is_known(self.operation_ids):
            check_operation_ids("operation_ids", self.operation_ids)
        if self.branch is not None and is_known(self.branch):
            check_ref("branch", self.branch)
        if self.project_id is not None and is_known(self.project_id):
            check_id("project_id", self.project_id)

    @cached_property
    def hook(self) -> JamboHook:
        # Imported here, not at module level: DAG parsing never pays for httpx, tenacity, the hook.
        from airflow_provider_jambo.hooks.jambo import JamboHook

        return JamboHook(jambo_conn_id=self.jambo_conn_id)

    def _project_id(self) -> str:
        if self.project_id is not None:
            return check_id("project_id", self.project_id)
        return self.hook.project_id

    def _target_ids(self) -> list[str]:
        """The ids to wait for (taken once per sensor instance)."""
        if self._targets is None:
            if self.operation_ids is not None:
                self._targets = check_operation_ids("operation_ids", self.operation_ids)
            else:
                project_id = self._project_id()
                branch_id = None
                if self.branch:
                    branch_id = self.hook.branches.resolve(self.branch, project_id=project_id).id
                ops = self.hook.operations.in_flight(project_id, branch_id=branch_id)
                self._targets = [op.id for op in ops]
                where = f"branch {self.branch!r}" if self.branch else f"project {project_id}"
                self.log.info("Operations in flight on %s: %s", where, self._targets or "none")
        return self._targets

    def execute(self, context: Context) -> Any:
        # Rendered values are checked before the first request.
        self._validate()
        if not self.deferrable:
            return super().execute(context)
        ids = self._target_ids()
        if not ids:
            return []
        deadline = time.time() + self.timeout
        from airflow_provider_jambo.triggers.operation_trigger import JamboOperationTrigger
        from airflow_provider_jambo.triggers.wait_trigger import settle_deadline

        self.defer(
            trigger=JamboOperationTrigger(
                jambo_conn_id=self.jambo_conn_id,
                project_id=self._project_id(),
                operation_ids=ids,
                deadline=deadline,
                poll_interval=self.poke_interval,
                retry_policy=self.hook.retry_policy.to_dict(),
                not_before=settle_deadline(),
            ),
            method_name="execute_complete",
            timeout=timedelta(seconds=self.timeout) + DEFERRAL_TIMEOUT_MARGIN,
        )

    def poke(self, context: Context) -> bool | PokeReturnValue:
        ids = self._target_ids()
        if not ids:
            return PokeReturnValue(is_done=True, xcom_value=[])
        # One list call serves all of them (the hook's polling rules), not one read each.
        ops = self.hook.operations.get_many(ids, project_id=self._project_id())
        from airflow_provider_jambo.hooks.waiting import evaluate

        result = evaluate(ops)
        if result is None:
            pending = [op.id for op in ops if op.is_pending]
            self.log.info("Still waiting for %s", pending)
            return False
        if result.status == "failed":
            # AirflowFailException: soft_fail turns it into a skip; retrying would see the same failure.
            raise AirflowFailException(result.message)
        self.log.info(result.message)
        return PokeReturnValue(is_done=True, xcom_value=ids)

    def resume_execution(self, next_method: str, next_kwargs: dict[str, Any] | None, context: Context) -> Any:
        # Airflow's own deferral timeout is a sensor timeout (a skip under soft_fail) on every
        # version: 2.11 raises a plain, retryable TaskDeferralError for it, 3.0 ignores soft_fail.
        if next_method == "__fail__" and (next_kwargs or {}).get("error") in _DEFERRAL_TIMEOUT_ERRORS:
            message = f"Airflow timed the deferral out: {(next_kwargs or {}).get('error')}"
            if self.soft_fail:
                raise AirflowSkipException(message)
            raise AirflowSensorTimeout(message)
        return super().resume_execution(next_method, next_kwargs, context)

    def execute_complete(self, context: Context, event: dict[str, Any]) -> list[str]:
        """Resume after the trigger (``resume_execution`` maps failures to skips under soft_fail)."""
        from airflow_provider_jambo.triggers.operation_events import parse_operation_event

        parsed = parse_operation_event(event)
        status, message, ids = parsed["status"], parsed["message"], parsed["operation_ids"]
        if status == "success":
            self.log.info(message)
            return ids
        if status == "failed":
            raise AirflowFailException(message)
        if status == "timeout":
            raise AirflowSensorTimeout(f"sensor timeout of {self.timeout:g} s passed: {message}")
        raise AirflowException(f"waiting for operations {ids} failed: {message}")
