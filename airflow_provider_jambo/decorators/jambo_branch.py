"""``@task.jambo_branch``: run a Python function with a fresh branch, deleted afterwards.

The task is the create operator (:class:`JamboCreateBranchOperator`: the same arguments, checks,
request, waiting and all-or-nothing cleanup) followed by the function and the delete, in one worker
run. The function gets, when it declares them by name, ``branch`` (the create's result: ids, host,
database and role, never a password) and ``branch_hook`` (a :class:`JamboPostgresHook` connected to
the branch when first used; needs the ``postgres`` extra). Its return value is the task's XCom.
"""

from __future__ import annotations

import functools
import inspect
from collections import ChainMap
from collections.abc import Callable, Collection, Mapping, MutableMapping, Sequence
from typing import TYPE_CHECKING, Any, cast

from airflow.providers.common.compat.sdk import DecoratedOperator, determine_kwargs, task_decorator_factory

from airflow_provider_jambo.exceptions import (
    JamboConfigError,
    JamboError,
    JamboNotFoundError,
    JamboRefusedError,
)
from airflow_provider_jambo.operators.all_or_nothing import made_by_task
from airflow_provider_jambo.operators.branch_operators import JamboCreateBranchOperator

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context, TaskDecorator

    from airflow_provider_jambo.hooks.branch_postgres import JamboPostgresHook
    from airflow_provider_jambo.operators.results import BranchResult

#: The parameters the task fills in when the function declares them (by name).
INJECTED = ("branch", "branch_hook")

#: XCom key of the create's result (the return value is the function's).
BRANCH_XCOM_KEY = "jambo_branch"


def _presented(python_callable: Callable[..., Any]) -> tuple[Callable[..., Any], frozenset[str]]:
    """The function as Airflow should see it: ``branch``/``branch_hook`` defaulted to None.

    Airflow binds the call's arguments to the signature when the DAG is parsed; these two are given
    only at run time, so they must not count as missing. The user's function is not modified.
    """
    signature = inspect.signature(python_callable)
    injected = frozenset(name for name in INJECTED if name in signature.parameters)
    if not injected:
        return python_callable, injected
    parameters = [
        p.replace(default=None) if p.name in injected and p.default is inspect.Parameter.empty else p
        for p in signature.parameters.values()
    ]
    try:
        presented = signature.replace(parameters=parameters)
    except ValueError as err:
        raise JamboConfigError(
            f"@task.jambo_branch function {python_callable.__name__!r}: declare "
            f"{' and '.join(sorted(injected))} after its other positional parameters or keyword-only "
            f"(def {python_callable.__name__}(x, *, branch)): {err}"
        ) from err

    @functools.wraps(python_callable)
    def call(*args: Any, **kwargs: Any) -> Any:
        return python_callable(*args, **kwargs)

    # inspect.signature stops at __signature__, so Airflow binds against the defaulted one.
    setattr(call, "__signature__", presented)  # noqa: B010 (mypy: a function has no such attribute)
    return call, injected


class _JamboBranchDecoratedOperator(DecoratedOperator, JamboCreateBranchOperator):
    """The operator behind ``@task.jambo_branch`` (see the module docstring).

    :param python_callable: the decorated function.
    :param op_args: its positional arguments (templated).
    :param op_kwargs: its keyword arguments (templated).
    :param keep_branch: keep the branch after the task, whether the function succeeded or failed
        (it is in the task's XCom under the key ``jambo_branch``).
    """

    custom_operator_name = "@task.jambo_branch"
    template_fields: Sequence[str] = (
        *DecoratedOperator.template_fields,
        *JamboCreateBranchOperator.template_fields,
    )
    template_fields_renderers = {
        **DecoratedOperator.template_fields_renderers,
        **JamboCreateBranchOperator.template_fields_renderers,
    }

    def __init__(
        self,
        *,
        python_callable: Callable[..., Any],
        op_args: Collection[Any] | None = None,
        op_kwargs: Mapping[str, Any] | None = None,
        keep_branch: bool = False,
        **kwargs: Any,
    ) -> None:
        if inspect.iscoroutinefunction(python_callable):
            raise JamboConfigError(
                f"@task.jambo_branch function {python_callable.__name__!r} is async; give a plain "
                "function (it runs in the worker between the create and the delete)"
            )
        if kwargs.get("wait_for_completion") is False:
            raise JamboConfigError(
                "wait_for_completion=False: @task.jambo_branch runs the function on a ready branch, "
                "so it always waits for the create"
            )
        presented, injected = _presented(python_callable)
        _check_call(presented, injected, op_args or (), op_kwargs or {})
        if "keep_on_failure" in kwargs:
            raise JamboConfigError("@task.jambo_branch takes keep_branch=True/False, not keep_on_failure")
        if kwargs.get("deferrable"):
            raise JamboConfigError(
                "deferrable=True: @task.jambo_branch runs the function in the worker right after the "
                "create, so it waits there; use JamboCreateBranchOperator to wait in the triggerer"
            )
        kwargs["deferrable"] = False
        super().__init__(
            python_callable=presented,
            op_args=op_args,
            op_kwargs=op_kwargs,
            keep_on_failure=keep_branch,
            **kwargs,
        )
        self.keep_branch = keep_branch
        self.injected = injected

    def push_early(self, context: Context, result: Mapping[str, Any]) -> None:
        # The return value belongs to the function; the branch is kept under its own key.
        if self.do_xcom_push:
            context["ti"].xcom_push(key=BRANCH_XCOM_KEY, value=dict(result))

    def execute(self, context: Context) -> Any:
        result = JamboCreateBranchOperator.execute(self, context)
        if result is None:  # only a deferral returns nothing, and this task never defers
            raise JamboError("the branch create returned no result")
        with self._all_or_nothing():
            self._refuse_foreign(context, result)
            value = self._call(context, result)
        self._finish_branch(result)
        return value

    def _refuse_foreign(self, context: Context, result: BranchResult) -> None:
        """The function runs on a fresh branch: one this task instance made (in this try or one
        before it), never a branch of that name someone else made."""
        if result["created"]:
            return
        branch = self.hook.branches.get(result["branch_id"], project_id=result["project_id"])
        if not made_by_task(branch, context["ti"]):
            raise JamboRefusedError(
                f"branch {branch.name!r} ({branch.id}) already exists and was not made by this task; "
                "@task.jambo_branch runs on a branch of its own: give another branch_name"
            )

    def _call(self, context: Context, result: BranchResult) -> Any:
        given: dict[str, Any] = {"branch": dict(result)}
        if "branch_hook" in self.injected:
            given["branch_hook"] = self._branch_hook(result)
        # A lazy view: only the names the function declares are read from the context.
        source: Mapping[str, Any] = ChainMap(
            given, dict(self.op_kwargs), cast("MutableMapping[str, Any]", context)
        )
        kwargs = determine_kwargs(self.python_callable, self.op_args, source)
        return self.python_callable(*self.op_args, **kwargs)

    def _branch_hook(self, result: BranchResult) -> JamboPostgresHook:
        from airflow_provider_jambo.hooks.branch_postgres import JamboPostgresHook

        return JamboPostgresHook(branch=result, jambo_conn_id=self.jambo_conn_id)

    def _finish_branch(self, result: BranchResult) -> None:
        """Delete the branch once the function succeeded (or keep it); a failed delete fails the
        task, so no branch outlives a run that reports success."""
        self._cleaned_up = True  # on_kill from here on must not delete it a second time
        branch_id, project_id = result["branch_id"], result["project_id"]
        if self.keep_branch:
            self.log.info("Keeping branch %s (keep_branch=True)", branch_id)
            return
        try:
            waited = self.delete_branch(project_id, branch_id)
        except JamboNotFoundError:
            self.log.info("Branch %s is already gone", branch_id)
            return
        if not waited.succeeded:
            raise JamboError(
                f"the function succeeded, but deleting branch {branch_id} failed: {waited.message}"
            )
        self.console_target = None  # no link to a branch that is gone
        self.log.info("Deleted branch %s", branch_id)


def _check_call(
    presented: Callable[..., Any],
    injected: frozenset[str],
    op_args: Collection[Any],
    op_kwargs: Mapping[str, Any],
) -> None:
    """``branch``/``branch_hook`` come from the task: the call must not pass them."""
    named = sorted(injected & set(op_kwargs))
    positional = list(inspect.signature(presented).parameters)[: len(op_args)]
    named += sorted(injected & set(positional))
    if named:
        raise JamboConfigError(
            f"{named[0]} is given by @task.jambo_branch at run time; do not pass it when calling the task"
        )


def jambo_branch_task(
    python_callable: Callable[..., Any] | None = None,
    multiple_outputs: bool | None = None,
    **kwargs: Any,
) -> TaskDecorator:
    """Run the decorated function with a fresh branch, deleted afterwards (also when it fails).

    ``@task.jambo_branch(parent="main", ttl=3600)``, or typed,
    ``from airflow_provider_jambo.decorators import jambo_branch_task``. Takes the create
    operator's branch arguments (:class:`JamboCreateBranchOperator`: ``branch_name``, ``parent``,
    ``parent_timestamp``/``parent_lsn``, ``schema_only``, ``ttl``/``expires_at``, ``compute_type``,
    ``min_cu``/``max_cu``, ``suspend_timeout_seconds``, ``annotations``, ``database``,
    ``jambo_conn_id``, ``project_id``, ``timeout``), checked when the DAG is parsed, plus
    ``keep_branch=True`` to keep the branch. The function may declare ``branch`` and ``branch_hook``.

    :param python_callable: the function (when used without parentheses).
    :param multiple_outputs: push each key of a returned dict as its own XCom too.
    """
    return task_decorator_factory(
        python_callable=python_callable,
        multiple_outputs=multiple_outputs,
        decorated_operator_class=_JamboBranchDecoratedOperator,
        **kwargs,
    )
