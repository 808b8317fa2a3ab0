"""JamboCreateAnonymizedBranchOperator: a preview branch whose personal data is masked before any
task can read it.

It is :class:`JamboCreateBranchOperator` (same arguments, checks, XCom and get-or-create) whose
create is ``POST /projects/{id}/branch_anonymized`` with the ``masking_rules`` and
``start_anonymization``; it returns only once ``anonymized_status`` says ``anonymized`` (waiting
here or, deferrable, in :class:`JamboAnonymizationTrigger`). All or nothing: when the create's
operations or the anonymization fail or time out, the branch it created (still holding unmasked
data) is deleted before the task fails. An existing branch of that name is adopted only if it is
an anonymized branch; if its rules differ it is re-anonymized with these.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

from airflow_provider_jambo.exceptions import (
    JamboAPIError,
    JamboConfigError,
    JamboError,
    JamboOperationFailedError,
    JamboOperationTimeoutError,
)
from airflow_provider_jambo.masking_rules import MaskingRule, check_masking_rules
from airflow_provider_jambo.operators.branch_operators import JamboCreateBranchOperator

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context

    from airflow_provider_jambo.create_branch_request import CreateBranchRequest
    from airflow_provider_jambo.hooks.resources.anonymization import AnonymizationResult
    from airflow_provider_jambo.operators.results import AnonymizedBranchResult


class JamboCreateAnonymizedBranchOperator(JamboCreateBranchOperator):
    """Create (or adopt) a branch and anonymize it; returns what ``JamboCreateBranchOperator`` does
    plus ``masked_columns``, once the branch is ``anonymized``.

    :param masking_rules: list of rules (templated), each ``{"database_name", "schema_name",
        "table_name", "column_name"}`` plus either ``masking_function`` (a PostgreSQL Anonymizer
        function such as ``anon.fake_email()`` or ``anon.partial(phone, 2, '****', 2)``, or
        ``NULL``) or ``masking_value`` (a constant). Checked when the DAG is parsed.

    ``timeout`` (an argument of every Jambo operator) bounds each wait here: the create's
    operations, then the anonymization. Every other argument is :class:`JamboCreateBranchOperator`'s.
    ``wait_for_completion`` must stay True: the branch is handed downstream only once its data is
    masked.
    """

    template_fields: Sequence[str] = (*JamboCreateBranchOperator.template_fields, "masking_rules")
    template_fields_renderers = {
        **JamboCreateBranchOperator.template_fields_renderers,
        "masking_rules": "json",
    }
    ui_color = "#f2e1c9"

    def __init__(
        self, *, masking_rules: Sequence[Mapping[str, Any] | MaskingRule] | str, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        if not self.wait_for_completion:
            raise JamboConfigError(
                "wait_for_completion=False is not allowed for an anonymized branch: it is handed "
                "downstream only once its data is masked"
            )
        self.masking_rules = masking_rules
        if self._known(masking_rules):
            check_masking_rules(masking_rules)

    def create_request(self, context: Context) -> CreateBranchRequest:
        """The create operator's request, made an anonymized create by the masking rules (its
        get-or-create's creates too)."""
        from airflow_provider_jambo.create_branch_request import CreateBranchRequest

        # Checked there (a rendered value that is not a list of rules is refused), before any call.
        rules = cast("Sequence[Mapping[str, Any]]", self.masking_rules)
        return CreateBranchRequest(
            **self.create_request_fields(context), masking_rules=rules, start_anonymization=True
        )

    # -- the create, then the anonymization ---------------------------------------------------------

    def execute(self, context: Context) -> AnonymizedBranchResult:
        # The rendered rules are checked with the rest of the create (create_request), before any call.
        result = super().execute(context)  # creates, waits for its operations (or defers)
        # The create's all-or-nothing covers the anonymization too: a branch whose masking failed
        # may hold unmasked data, so the branch this task created is deleted before the task fails.
        with self._all_or_nothing():
            return self._anonymize(context, result)

    def execute_complete(
        self,
        context: Context,
        event: dict[str, Any],
        result: Mapping[str, Any] | None = None,
        state: Mapping[str, Any] | None = None,
    ) -> AnonymizedBranchResult:
        """After the create's operations (deferred): go on with the anonymization."""
        # Runs inside resume_execution's all-or-nothing (JamboCreateBranchOperator).
        done = super().execute_complete(context, event, result, state)
        return self._anonymize(context, done)

    def execute_anonymized(
        self, context: Context, event: dict[str, Any], result: Mapping[str, Any] | None = None
    ) -> AnonymizedBranchResult:
        """After the anonymization (deferred): the trigger's event decides."""
        from airflow_provider_jambo.hooks.resources.anonymization import AnonymizationResult

        result = self._result_after_deferral(context, result)
        if event.get("status") == "error":
            raise JamboError(f"waiting for the anonymization failed: {event.get('message')}")
        return self._finish_anonymization(AnonymizationResult.from_dict(event), result)

    def _anonymize(self, context: Context, result: Mapping[str, Any] | None) -> AnonymizedBranchResult:
        if result is None or not result.get("branch_id"):
            raise JamboError("the branch create returned no branch to anonymize")
        project_id, branch_id = str(result["project_id"]), str(result["branch_id"])
        if not result.get("created"):
            self._prepare_adopted(project_id, branch_id, result)
        if self.deferrable:
            from airflow_provider_jambo.triggers.anonymization_trigger import JamboAnonymizationTrigger
            from airflow_provider_jambo.triggers.wait_trigger import settle_deadline

            self.log.info("Deferring until branch %s is anonymized (timeout %.0f s)", branch_id, self.timeout)
            self.defer(
                trigger=JamboAnonymizationTrigger(
                    jambo_conn_id=self.jambo_conn_id,
                    project_id=project_id,
                    branch_id=branch_id,
                    deadline=time.time() + self.timeout,
                    poll_interval=self.poll_interval,
                    retry_policy=self.hook.retry_policy.to_dict(),
                    not_before=settle_deadline(),
                    delete_on_kill=self.delete_on_kill(),
                ),
                method_name="execute_anonymized",
                kwargs={"result": result},
            )
        self.log.info("Waiting until branch %s is anonymized (timeout %.0f s)", branch_id, self.timeout)
        waited = self.hook.anonymization.wait(
            branch_id, project_id=project_id, timeout=self.timeout, poll_interval=self.poll_interval
        )
        return self._finish_anonymization(waited, result)

    def _prepare_adopted(self, project_id: str, branch_id: str, result: Mapping[str, Any]) -> None:
        """An existing branch: only an anonymized one, and with these rules (else re-anonymized)."""
        hook = self.hook
        name = result.get("branch_name")
        try:
            status = hook.anonymization.get_status(branch_id, project_id=project_id)
        except JamboAPIError as err:
            if err.status not in (400, 404):
                raise
            raise JamboConfigError(
                f"branch {name!r} ({branch_id}) already exists and is not an anonymized branch, so its "
                "data is not masked and it is not handed downstream; delete it or use another branch_name"
            ) from err
        rules = check_masking_rules(self.masking_rules)
        current = hook.anonymization.get_masking_rules(branch_id, project_id=project_id)
        if set(current) == set(rules) and status.state not in ("error", "initialized"):
            self.log.info("Adopting anonymized branch %r (%s): %s", name, branch_id, status.describe())
            return
        if set(current) != set(rules):
            self.log.info("Branch %r (%s) has other masking rules: replacing them", name, branch_id)
            hook.anonymization.update_masking_rules(branch_id, rules, project_id=project_id)
        if status.state == "anonymizing":
            hook.anonymization.wait(
                branch_id, project_id=project_id, timeout=self.timeout, poll_interval=self.poll_interval
            )
        self.log.info("Starting the anonymization of branch %r (%s)", name, branch_id)
        hook.anonymization.start(branch_id, project_id=project_id)

    def _finish_anonymization(
        self, waited: AnonymizationResult, result: Mapping[str, Any] | None
    ) -> AnonymizedBranchResult:
        if waited.status == "success" and result is not None:
            self.log.info("%s", waited.message)
            status = self.hook.anonymization.get_status(
                str(result["branch_id"]), project_id=str(result["project_id"])
            )
            return cast("AnonymizedBranchResult", {**result, "masked_columns": status.masked_columns})
        if waited.status == "timeout":
            error: JamboError = JamboOperationTimeoutError(
                f"{waited.message} after the timeout of {self.timeout:g} s"
            )
        else:
            error = JamboOperationFailedError(waited.message)
        raise error
