"""Every operator's resume path: success returns the result, failed/timeout/error fail the task."""

from __future__ import annotations

from typing import Any

import pytest
from jambo_support import make_context

from airflow_provider_jambo.exceptions import (
    JamboError,
    JamboOperationFailedError,
    JamboOperationTimeoutError,
)
from airflow_provider_jambo.operators.base_operator import JamboBaseOperator
from airflow_provider_jambo.operators.branch_operators import (
    JamboCreateBranchOperator,
    JamboDeleteBranchOperator,
    JamboResetBranchOperator,
)
from airflow_provider_jambo.operators.compute_operators import (
    JamboCreateComputeOperator,
    JamboDeleteComputeOperator,
    JamboStartComputeOperator,
    JamboSuspendComputeOperator,
)

OPERATORS: list[JamboBaseOperator] = [
    JamboCreateBranchOperator(task_id="create_branch", branch_name="b"),
    JamboDeleteBranchOperator(task_id="delete_branch", branch="b"),
    JamboResetBranchOperator(task_id="reset_branch", branch="b"),
    JamboCreateComputeOperator(task_id="create_compute", branch="b"),
    JamboDeleteComputeOperator(task_id="delete_compute", endpoint_id="ep-a-1"),
    JamboStartComputeOperator(task_id="start_compute", endpoint_id="ep-a-1"),
    JamboSuspendComputeOperator(task_id="suspend_compute", endpoint_id="ep-a-1"),
]
RESULT = {"project_id": "p-1", "branch_id": "br-a-1", "endpoint_id": "ep-a-1"}


def event(status: str, message: str) -> dict[str, Any]:
    return {"status": status, "operation_ids": ["op-1", "op-2"], "message": message}


@pytest.mark.parametrize("op", OPERATORS, ids=lambda op: op.task_id)
def test_success_returns_the_result(op: JamboBaseOperator) -> None:
    resumed = op.resume_execution(
        "execute_complete", {"event": event("success", "2 finished"), "result": RESULT}, make_context()
    )
    assert resumed == RESULT


@pytest.mark.parametrize("op", OPERATORS, ids=lambda op: op.task_id)
@pytest.mark.parametrize(
    ("status", "raised", "fragment"),
    [
        ("failed", JamboOperationFailedError, "delete_timeline op-2 on br-a-1: error"),
        ("timeout", JamboOperationTimeoutError, "op-1, op-2 not done within the timeout of 1800 s"),
        ("error", JamboError, "waiting for operations op-1, op-2 failed"),
    ],
)
def test_failures_fail_the_task(
    op: JamboBaseOperator, status: str, raised: type[Exception], fragment: str
) -> None:
    message = "delete_timeline op-2 on br-a-1: error" if status == "failed" else "GET ... -> 401"
    with pytest.raises(raised, match=fragment) as info:
        op.resume_execution("execute_complete", {"event": event(status, message), "result": RESULT}, {})
    assert message in str(info.value)


def test_trigger_failure_surfaces() -> None:
    """A trigger that crashed (Airflow's __fail__ path) fails the task instead of hanging."""
    from airflow.providers.common.compat.sdk import AirflowException

    with pytest.raises(AirflowException):
        OPERATORS[0].resume_execution("__fail__", {"error": "Trigger failure"}, {})
