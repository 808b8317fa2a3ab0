"""``@task.jambo_branch``: the function runs with a fresh branch, which is deleted afterwards.

Each test builds the task in a DAG, as a DAG file would, and runs its operator on the emulator.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import DAG
from jambo_support import JamboProject, make_context

from airflow_provider_jambo.decorators import jambo_branch_task
from airflow_provider_jambo.exceptions import JamboConfigError, JamboRefusedError

DAG_ARGS: dict[str, Any] = {"dag_id": "deco", "schedule": None, "start_date": datetime(2026, 1, 1)}


def operator_of(decorated: Any, *args: Any, **kwargs: Any) -> Any:
    """The operator a DAG file gets from calling the decorated function."""
    with DAG(**DAG_ARGS):
        return decorated(*args, **kwargs).operator


def names(project: JamboProject) -> list[str]:
    return sorted(b.name for b in project.branches())


def test_the_function_gets_the_branch_and_hook_and_its_value_is_the_xcom(jambo_project: JamboProject) -> None:
    seen: dict[str, Any] = {}

    @jambo_branch_task(branch_name="deco-ok", ttl=600, poll_interval=0.05)
    def check(limit: int, branch: dict[str, Any], branch_hook: Any) -> dict[str, int]:
        seen["branch"], seen["hook"] = branch, branch_hook
        seen["alive"] = jambo_project.branch_named("deco-ok") is not None
        return {"rows": limit}

    op = operator_of(check, 3)
    context = make_context(task_id=op.task_id)
    assert op.execute(context) == {"rows": 3}
    branch = seen["branch"]
    assert seen["alive"]
    assert branch["branch_name"] == "deco-ok"
    assert branch["created"] is True
    assert branch["parent_id"] == jambo_project.default_branch_id
    assert branch["expires_at"]
    assert type(seen["hook"]).__name__ == "JamboPostgresHook"
    assert seen["hook"].target.branch_id == branch["branch_id"]
    assert not seen["hook"].connection_resolved  # connects only when the function uses it
    assert names(jambo_project) == ["main"]  # deleted after success
    # The create's result is kept under its own key, not as the return value; no password anywhere.
    pushed = context["ti"].pushed
    assert set(pushed) == {"jambo_branch"}
    assert pushed["jambo_branch"] == branch
    assert "password" not in json.dumps(pushed)
    assert jambo_project.emu.api_key not in json.dumps(pushed)


def test_a_function_declaring_nothing_gets_nothing(jambo_project: JamboProject) -> None:
    @jambo_branch_task(branch_name="deco-plain", poll_interval=0.05)
    def plain(x: int, y: int = 2) -> int:
        return x * y

    op = operator_of(plain, 5)
    assert op.execute(make_context(task_id=op.task_id)) == 10
    assert names(jambo_project) == ["main"]


def test_a_failing_function_deletes_the_branch_and_reraises(jambo_project: JamboProject) -> None:
    @jambo_branch_task(branch_name="deco-fail", poll_interval=0.05)
    def broken(*, branch: dict[str, Any]) -> None:
        raise ValueError(f"bad data on {branch['branch_name']}")

    op = operator_of(broken)
    with pytest.raises(ValueError, match="bad data on deco-fail"):
        op.execute(make_context(task_id=op.task_id))
    assert names(jambo_project) == ["main"]


@pytest.mark.parametrize("fails", [False, True])
def test_keep_branch_keeps_it(jambo_project: JamboProject, fails: bool) -> None:
    @jambo_branch_task(branch_name="deco-keep", keep_branch=True, poll_interval=0.05)
    def work() -> str:
        if fails:
            raise RuntimeError("boom")
        return "done"

    op = operator_of(work)
    if fails:
        with pytest.raises(RuntimeError, match="boom"):
            op.execute(make_context(task_id=op.task_id))
    else:
        assert op.execute(make_context(task_id=op.task_id)) == "done"
    assert names(jambo_project) == ["deco-keep", "main"]


def test_a_branch_of_that_name_made_by_someone_else_is_refused_and_left_alone(
    jambo_project: JamboProject,
) -> None:
    from airflow_provider_jambo.create_branch_request import CreateBranchRequest

    with jambo_project.hook() as hook:
        made = hook.branches.create(
            CreateBranchRequest(name="deco-theirs"), project_id=jambo_project.project_id
        )
    ran: list[bool] = []

    @jambo_branch_task(branch_name="deco-theirs", poll_interval=0.05)
    def work() -> None:
        ran.append(True)

    op = operator_of(work)
    with pytest.raises(JamboRefusedError, match="not made by this task"):
        op.execute(make_context(task_id=op.task_id))
    assert not ran
    assert jambo_project.branch_named("deco-theirs").id == made.branch.id


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"ttl": -5}, "ttl"),
        ({"compute_type": "big"}, "compute_type"),
        ({"min_cu": 0.25, "max_cu": 12}, "max_cu"),
        ({"parent_lsn": "nope"}, "parent_lsn"),
        ({"deferrable": True}, "deferrable"),
        ({"keep_on_failure": True}, "keep_branch"),
        ({"wait_for_completion": False}, "wait_for_completion"),
    ],
)
def test_bad_arguments_fail_when_the_dag_is_parsed(kwargs: dict[str, Any], message: str) -> None:
    @jambo_branch_task(**kwargs)
    def work() -> None:
        return None

    with pytest.raises(JamboConfigError, match=message):
        operator_of(work)


def test_an_async_function_fails_at_parse() -> None:
    @jambo_branch_task
    async def work() -> None:
        return None

    with pytest.raises(JamboConfigError, match="is async"):
        operator_of(work)


def test_passing_branch_yourself_fails_at_parse() -> None:
    @jambo_branch_task
    def work(x: int, branch: Any) -> None:
        return None

    with pytest.raises(JamboConfigError, match=r"branch is given by @task\.jambo_branch"):
        operator_of(work, 1, {"branch_id": "br-x"})
    with pytest.raises(JamboConfigError, match=r"branch is given by @task\.jambo_branch"):
        operator_of(work, 1, branch={"branch_id": "br-x"})


def test_registered_as_task_jambo_branch() -> None:
    from airflow.providers.common.compat.sdk import task

    @task.jambo_branch(branch_name="deco-registered")
    def work() -> None:
        return None

    op = operator_of(work)
    assert type(op).__name__ == "_JamboBranchDecoratedOperator"
    assert op.branch_name == "deco-registered"


def test_a_retry_runs_on_the_branch_its_killed_try_made_and_deletes_it(jambo_project: JamboProject) -> None:
    from airflow_provider_jambo.create_branch_request import CreateBranchRequest

    @jambo_branch_task(branch_name="deco-retry", poll_interval=0.05)
    def work(branch: dict[str, Any]) -> bool:
        return bool(branch["created"])

    op = operator_of(work)
    context = make_context(task_id=op.task_id, try_number=2)
    ti = context["ti"]
    # What try 1 left behind when it was killed: its branch, tagged with this task instance.
    tags = {"dag_id": ti.dag_id, "run_id": ti.run_id, "task_id": ti.task_id, "try_number": "1"}
    with jambo_project.hook() as hook:
        hook.branches.create(
            CreateBranchRequest(name="deco-retry", annotations=tags), project_id=jambo_project.project_id
        )
    assert op.execute(context) is False  # adopted, not created
    assert names(jambo_project) == ["main"]


def test_it_sends_no_more_requests_than_the_create_and_delete_operators(jambo_project: JamboProject) -> None:
    """The service's request budget is shared: the shortcut must not cost more than the long way."""
    from airflow_provider_jambo.operators.branch_operators import (
        JamboCreateBranchOperator,
        JamboDeleteBranchOperator,
    )

    emu = jambo_project.emu
    emu.clear_requests()
    create = JamboCreateBranchOperator(task_id="create", branch_name="deco-cost-ops", poll_interval=0.05)
    create.execute(make_context(task_id="create"))
    delete = JamboDeleteBranchOperator(task_id="delete", branch="deco-cost-ops", poll_interval=0.05)
    delete.execute(make_context(task_id="delete"))
    by_operators = len(emu.requests())

    @jambo_branch_task(branch_name="deco-cost", poll_interval=0.05)
    def work() -> None:
        return None

    op = operator_of(work)
    emu.clear_requests()
    op.execute(make_context(task_id=op.task_id))
    by_decorator = len(emu.requests())
    assert names(jambo_project) == ["main"]
    assert 0 < by_decorator <= by_operators, (by_decorator, by_operators)
