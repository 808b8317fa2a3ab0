"""An ephemeral-branch task group: create as setup, delete as teardown, your tasks in between.

::

    with jambo_branch_group("preview", branch_name=..., parent="main", ttl=3600) as preview:
        migrate = JamboBranchSQLOperator(task_id="migrate", branch=preview.branch, sql=...)
        check(preview.branch)

adds ``create_branch`` (a :class:`JamboCreateBranchOperator`, setup) before the tasks declared
inside and ``delete_branch`` (a :class:`JamboDeleteBranchOperator`, teardown) after them, so the
branch is deleted whatever happens inside (a teardown runs once its setup succeeded; a create that
fails deletes what it made itself).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from airflow.providers.common.compat.sdk import TaskGroup

from airflow_provider_jambo.exceptions import JamboConfigError
from airflow_provider_jambo.operators.branch_operators import (
    JamboCreateBranchOperator,
    JamboDeleteBranchOperator,
)
from airflow_provider_jambo.rules import DEFAULT_CONN_ID


@dataclass
class JamboBranchGroup:
    """What ``with jambo_branch_group(...) as group`` hands the tasks declared inside.

    :param group: the Airflow task group.
    :param create: the create task (setup).
    :param delete: the delete task (teardown); None until the ``with`` block ends.
    """

    group: TaskGroup
    create: JamboCreateBranchOperator
    delete: JamboDeleteBranchOperator | None = field(default=None)

    @property
    def branch(self) -> Any:
        """The create's result (``XComArg``: ids, host, database, role; never a password), for
        ``branch=`` of ``JamboBranchSQLOperator``/``JamboPostgresHook`` or a ``@task``'s argument."""
        return self.create.output


def _tasks(group: TaskGroup) -> Iterator[Any]:
    """Every task in ``group``, nested groups included (written out: 2.11's TaskGroup differs)."""
    for child in group.children.values():
        if isinstance(child, TaskGroup):
            yield from _tasks(child)
        else:
            yield child


@contextmanager
def jambo_branch_group(
    group_id: str,
    *,
    branch_name: str | None = None,
    create_task_id: str = "create_branch",
    delete_task_id: str = "delete_branch",
    prefix_group_id: bool = True,
    tooltip: str = "",
    jambo_conn_id: str = DEFAULT_CONN_ID,
    project_id: str | None = None,
    **create_kwargs: Any,
) -> Iterator[JamboBranchGroup]:
    """A task group whose tasks run on a branch made for them and deleted afterwards.

    :param group_id: the task group's id.
    :param branch_name: the branch's exact name (templated); the delete names it too, so it is found
        even without the create's XCom. Default: the create operator's (``<dag_id>-<task_id>-<run
        id>``), and the delete reads the branch from the create's XCom.
    :param create_task_id: the create task's id (``create_branch``).
    :param delete_task_id: the delete task's id (``delete_branch``).
    :param prefix_group_id: prefix task ids with ``group_id.`` (Airflow's default); False keeps the
        ids as written, so a DAG moved into the group keeps its task ids, XComs and history.
    :param tooltip: the group's tooltip in the UI.
    :param jambo_conn_id: the Jambo connection of both tasks.
    :param project_id: the project of both tasks (default: the connection's).
    :param create_kwargs: the create operator's other arguments (``parent``, ``parent_timestamp``,
        ``ttl``, ``compute_type``, ``annotations``, ... as :class:`JamboCreateBranchOperator`),
        checked when the DAG is parsed.
    """
    with TaskGroup(group_id, prefix_group_id=prefix_group_id, tooltip=tooltip) as group:
        create = JamboCreateBranchOperator(
            task_id=create_task_id,
            branch_name=branch_name,
            jambo_conn_id=jambo_conn_id,
            project_id=project_id,
            **create_kwargs,
        )
        handle = JamboBranchGroup(group=group, create=create)
        yield handle
        inner = [task for task in _tasks(group) if task is not create]
        if not inner:
            raise JamboConfigError(
                f"jambo_branch_group {group_id!r} has no tasks: declare the tasks that use the "
                "branch inside its with block"
            )
        # The name when there is one (a string the DAG can show); else the create's XCom (an XComArg).
        target: Any = branch_name if branch_name is not None else create.output
        delete = JamboDeleteBranchOperator(
            task_id=delete_task_id,
            branch=target,
            jambo_conn_id=jambo_conn_id,
            project_id=project_id,
        )
        ids = {task.task_id for task in inner}
        for task in inner:
            if not task.upstream_task_ids & ids:
                create >> task
            if not task.downstream_task_ids & ids:
                task >> delete
        delete.as_teardown(setups=create)
        handle.delete = delete
