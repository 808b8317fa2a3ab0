"""Operators for computes (endpoints): create, delete, start, suspend.

Each waits for the operations its call started (here or deferred) and returns a dict with
``project_id``, ``branch_id`` (so the "Jambo Console" link works) and the endpoint's id and hosts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow_provider_jambo.exceptions import JamboConfigError, JamboNotFoundError, JamboRefusedError
from airflow_provider_jambo.operators.base_operator import JamboBaseOperator
from airflow_provider_jambo.rules import (
    IF_EXISTS_POLICIES,
    check_choice,
    check_id,
    check_operator_compute,
    check_ref,
)

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context

    from airflow_provider_jambo.api_models import Endpoint, Mutation, Operation
    from airflow_provider_jambo.operators.results import ComputeResult, DeletedComputeResult


def endpoint_result(project_id: str, endpoint: Endpoint, *, created: bool | None = None) -> ComputeResult:
    result: ComputeResult = {
        "project_id": project_id,
        "branch_id": endpoint.branch_id,
        "endpoint_id": endpoint.id,
        "type": endpoint.type,
        "host": endpoint.host,
        "pooler_host": endpoint.pooled_host,
    }
    if created is not None:
        result["created"] = created
    return result


class JamboCreateComputeOperator(JamboBaseOperator):
    """Create a compute on a branch (by id or exact name) and wait until it is running.

    A branch has at most one ``read_write`` compute: with ``if_exists="reuse"`` (default) an existing
    one is adopted (so a retried task does not fail on 409), with ``"fail"`` the task fails.
    ``read_only`` computes are always created.
    """

    template_fields: Sequence[str] = (*JamboBaseOperator.template_fields, "branch")

    def __init__(
        self,
        *,
        branch: str | Mapping[str, Any],
        compute_type: str = "read_write",
        min_cu: float | None = None,
        max_cu: float | None = None,
        suspend_timeout_seconds: int | None = None,
        if_exists: str = "reuse",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.branch = branch
        self.compute_type = compute_type
        self.min_cu = min_cu
        self.max_cu = max_cu
        self.suspend_timeout_seconds = suspend_timeout_seconds
        self.if_exists = if_exists
        if compute_type is None:
            raise JamboConfigError("compute_type must be one of read_write, read_only, got None")
        check_operator_compute(compute_type, min_cu, max_cu, suspend_timeout_seconds)
        check_choice("if_exists", if_exists, IF_EXISTS_POLICIES)
        if self._known(branch) and not isinstance(branch, Mapping):
            check_ref("branch", branch)

    def execute(self, context: Context) -> ComputeResult | None:
        ref = self.reference("branch", "branch_id")
        hook = self.hook
        project_id = self.resolved_project_id()
        branch = hook.branches.resolve(ref, project_id=project_id)
        if self.compute_type == "read_write":
            existing = [
                ep for ep in hook.computes.list(project_id, branch_id=branch.id) if ep.type == "read_write"
            ]
            if existing:
                endpoint = existing[0]
                if self.if_exists == "fail":
                    raise JamboRefusedError(
                        f"branch {branch.name!r} ({branch.id}) already has read_write compute "
                        f"{endpoint.id} and if_exists='fail' (a branch has at most one; "
                        "use if_exists='reuse' to adopt it)"
                    )
                self.log.info(
                    "Branch %s already has read_write compute %s: adopting it", branch.id, endpoint.id
                )
                operations = hook.operations.in_flight(project_id, endpoint_id=endpoint.id)
                result = endpoint_result(project_id, endpoint, created=False)
                return self.wait_for(context, project_id=project_id, operations=operations, result=result)
        mutation = self.send(
            lambda: hook.computes.create(
                branch.id,
                project_id=project_id,
                type=self.compute_type,
                min_cu=self.min_cu,
                max_cu=self.max_cu,
                suspend_timeout_seconds=self.suspend_timeout_seconds,
            ),
            project_id=project_id,
        )
        endpoint = mutation.resource
        self.log.info("Created %s compute %s on branch %s", endpoint.type, endpoint.id, branch.id)
        result = endpoint_result(project_id, endpoint, created=True)
        # Pushed before waiting, so a teardown can delete the compute even if the wait fails.
        self.push_early(context, result)
        return self.wait_for(context, project_id=project_id, operations=mutation.operations, result=result)

    def failure_hint(self, result: Mapping[str, Any] | None) -> str:
        if result and result.get("endpoint_id"):
            return f"; compute {result['endpoint_id']} is in this task's XCom (return_value)"
        return ""


class JamboDeleteComputeOperator(JamboBaseOperator):
    """Delete a compute by id and wait; a compute that is already gone is success."""

    template_fields: Sequence[str] = (*JamboBaseOperator.template_fields, "endpoint_id")

    def __init__(self, *, endpoint_id: str | Mapping[str, Any], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.endpoint_id = endpoint_id
        if self._known(endpoint_id) and not isinstance(endpoint_id, Mapping):
            check_id("endpoint_id", endpoint_id)

    def execute(self, context: Context) -> DeletedComputeResult | None:
        endpoint_id = check_id("endpoint_id", self.reference("endpoint_id", "endpoint_id"))
        hook = self.hook
        project_id = self.resolved_project_id()
        try:
            endpoint = hook.computes.get(endpoint_id, project_id=project_id)
        except JamboNotFoundError:
            self.log.info(
                "Compute %s does not exist in project %s: nothing to delete", endpoint_id, project_id
            )
            return {
                "project_id": project_id,
                "branch_id": None,
                "endpoint_id": endpoint_id,
                "deleted": False,
            }
        operations: list[Operation] = self.send(
            lambda: hook.computes.delete(endpoint.id, project_id=project_id), project_id=project_id
        )
        self.log.info("Deleting compute %s of branch %s", endpoint.id, endpoint.branch_id)
        result: DeletedComputeResult = {
            "project_id": project_id,
            "branch_id": endpoint.branch_id,
            "endpoint_id": endpoint.id,
            "deleted": True,
        }
        return self.wait_for(context, project_id=project_id, operations=operations, result=result)


class _EndpointActionOperator(JamboBaseOperator):
    """Start or suspend a compute by id, and wait."""

    template_fields: Sequence[str] = (*JamboBaseOperator.template_fields, "endpoint_id")
    action = ""

    def __init__(self, *, endpoint_id: str | Mapping[str, Any], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.endpoint_id = endpoint_id
        if self._known(endpoint_id) and not isinstance(endpoint_id, Mapping):
            check_id("endpoint_id", endpoint_id)

    def _call(self, endpoint_id: str, project_id: str) -> Mutation[Endpoint]:
        raise NotImplementedError

    def execute(self, context: Context) -> ComputeResult | None:
        endpoint_id = check_id("endpoint_id", self.reference("endpoint_id", "endpoint_id"))
        project_id = self.resolved_project_id()
        mutation = self.send(lambda: self._call(endpoint_id, project_id), project_id=project_id)
        self.log.info("%s compute %s", self.action, mutation.resource.id)
        result = endpoint_result(project_id, mutation.resource)
        return self.wait_for(context, project_id=project_id, operations=mutation.operations, result=result)


class JamboStartComputeOperator(_EndpointActionOperator):
    """Start (wake) a compute and wait until it is active."""

    action = "Starting"

    def _call(self, endpoint_id: str, project_id: str) -> Mutation[Endpoint]:
        return self.hook.computes.start(endpoint_id, project_id=project_id)


class JamboSuspendComputeOperator(_EndpointActionOperator):
    """Suspend a compute and wait until it is idle."""

    action = "Suspending"

    def _call(self, endpoint_id: str, project_id: str) -> Mutation[Endpoint]:
        return self.hook.computes.suspend(endpoint_id, project_id=project_id)
