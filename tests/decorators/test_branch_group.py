"""``jambo_branch_group``: create as setup, delete as teardown, the tasks declared inside between.

The DAG's shape only (parsed, not run); tests/dags/test_branch_group_run.py runs one.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import DAG, task

from airflow_provider_jambo.decorators import jambo_branch_group
from airflow_provider_jambo.exceptions import JamboConfigError
from airflow_provider_jambo.operators.branch_operators import (
    JamboCreateBranchOperator,
    JamboDeleteBranchOperator,
)

DAG_ARGS: dict[str, Any] = {"dag_id": "group", "schedule": None, "start_date": datetime(2026, 1, 1)}


@task
def step(branch: dict[str, Any]) -> None:
    return None


def test_setup_and_teardown_wrap_the_tasks_inside() -> None:
    with DAG(**DAG_ARGS) as dag:
        before = step.override(task_id="before")({"branch_id": "br-x"})
        with jambo_branch_group("preview", branch_name="pr-1", parent="main", ttl=600) as group:
            first = step.override(task_id="first")(group.branch)
            second = step.override(task_id="second")(group.branch)
            alone = step.override(task_id="alone")(group.branch)
            first >> second
        before >> group.group
    tasks = dag.task_dict
    create, delete = tasks["preview.create_branch"], tasks["preview.delete_branch"]
    assert isinstance(create, JamboCreateBranchOperator)
    assert isinstance(delete, JamboDeleteBranchOperator)
    assert group.create is create
    assert group.delete is delete
    assert create.is_setup
    assert delete.is_teardown
    assert create.branch_name == "pr-1"
    assert create.parent == "main"
    assert create.ttl == 600
    # The create runs before every first task inside; the delete after every last one.
    assert tasks["preview.first"].upstream_task_ids == {"preview.create_branch"}
    assert tasks["preview.alone"].upstream_task_ids == {"preview.create_branch"}
    assert delete.upstream_task_ids == {"preview.create_branch", "preview.second", "preview.alone"}
    assert tasks["preview.second"].upstream_task_ids == {"preview.first", "preview.create_branch"}
    # The group's tasks get the create's result; the delete names the branch as the create does.
    assert group.branch.operator is create
    assert delete.branch == "pr-1"
    # Upstream of the group means upstream of its setup.
    assert "before" in create.upstream_task_ids
    assert (first.operator.task_id, alone.operator.task_id) == ("preview.first", "preview.alone")


def test_unprefixed_ids_and_own_task_ids_keep_a_dag_ids_as_written() -> None:
    with (
        DAG(**DAG_ARGS) as dag,
        jambo_branch_group(
            "report", create_task_id="branch_at_end", delete_task_id="drop", prefix_group_id=False
        ) as group,
    ):
        step.override(task_id="revenue")(group.branch)
    assert set(dag.task_dict) == {"branch_at_end", "revenue", "drop"}
    drop = dag.task_dict["drop"]
    assert drop.is_teardown
    assert drop.upstream_task_ids == {"branch_at_end", "revenue"}
    # Without a name (the create makes one at run time) the delete reads the create's XCom.
    assert drop.branch.operator is dag.task_dict["branch_at_end"]


def test_an_empty_group_is_refused() -> None:
    with pytest.raises(JamboConfigError, match="has no tasks"), DAG(**DAG_ARGS), jambo_branch_group("g"):
        pass


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"ttl": -1}, "ttl"), ({"branch_name": "bad\nname"}, "branch_name"), ({"if_exists": "x"}, "if_exists")],
)
def test_bad_create_arguments_fail_when_the_dag_is_parsed(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(JamboConfigError, match=message), DAG(**DAG_ARGS), jambo_branch_group("g", **kwargs):
        pass
