"""All or nothing: a task that created a branch deletes it when it fails afterwards.

:class:`AllOrNothingBranchOperator` is the base of the create operators
(``JamboCreateBranchOperator``, and so the anonymized one). Once the task has created (or adopted)
its branch (:meth:`~AllOrNothingBranchOperator.remember_created`), any failure after it, in
``execute``, after a deferral (an error or timeout event, a crashed trigger) or ``on_kill``,
deletes the branch before the task fails, best effort and logged, unless ``keep_on_failure``. An
adopted branch is deleted only when its default annotations name this task instance
(:func:`made_by_task`): a branch made by hand, another task or run is left alone.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import TaskDeferred

from airflow_provider_jambo.exceptions import JamboError, JamboNotFoundError
from airflow_provider_jambo.operators.base_operator import JamboBaseOperator

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context

    from airflow_provider_jambo.api_models import Branch
    from airflow_provider_jambo.hooks.jambo import JamboHook
    from airflow_provider_jambo.hooks.waiting import WaitResult

#: How long the create operator's cleanup after a failure may take (delete, waiting for the
#: project to be unlocked and for the delete's operations), seconds.
CLEANUP_TIMEOUT = 120.0


@dataclass(frozen=True)
class _CreatedBranch:
    """What a failed create task may have to delete: a branch it created, or one it adopted."""

    project_id: str
    branch_id: str
    created: bool


def made_by_task(branch: Branch, ti: Any) -> bool:
    """Whether ``branch`` carries the default annotations of this task instance (any try).

    Read from the branch's annotation (``GET /branches/{id}``); a branch created without
    ``default_annotations`` never matches, so it is never taken for this task's own.
    """
    annotation = branch.raw.get("annotation")
    tags = annotation.get("value") if isinstance(annotation, Mapping) else None
    if not isinstance(tags, Mapping):
        return False
    map_index = getattr(ti, "map_index", None)
    mapped = str(map_index) if isinstance(map_index, int) and map_index >= 0 else None
    return (
        tags.get("dag_id") == str(ti.dag_id)
        and tags.get("run_id") == str(ti.run_id)
        and tags.get("task_id") == str(ti.task_id)
        and tags.get("map_index") == mapped
    )


class AllOrNothingBranchOperator(JamboBaseOperator):
    """An operator that deletes the branch it created when it fails afterwards (module docstring).

    :param keep_on_failure: keep the branch instead (it is in the task's XCom, pushed early).
    """

    def __init__(self, *, keep_on_failure: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.keep_on_failure = keep_on_failure
        # Run-time state for the cleanup after a failure (also reached from on_kill).
        self._created_branch: _CreatedBranch | None = None
        self._cleaned_up = False
        # Set once the cleanup sent the delete: the task must not succeed after that (Airflow 3's
        # SIGTERM handler only calls on_kill, and the task goes on unless SIGKILL follows).
        self._deleted_branch: str | None = None
        self._resumed = False
        self._resume_result: Any = None
        self._context: Context | None = None

    def remember_created(self, project_id: str, branch_id: str, *, created: bool) -> None:
        """The branch this task run now holds: created (``created``) or adopted."""
        self._created_branch = _CreatedBranch(project_id, branch_id, created)

    def delete_on_kill(self) -> str | None:
        # Only a branch this very try created: an adopted one may be the user's or an earlier try's.
        if self.keep_on_failure:
            return None
        target = self._created_branch
        if target is not None:
            return target.branch_id if target.created else None
        # Resumed and deferring again (the anonymization): this try's result says what it created.
        resumed = self._resume_result
        if isinstance(resumed, Mapping) and resumed.get("created") and resumed.get("branch_id"):
            return str(resumed["branch_id"])
        return None

    # -- all or nothing -----------------------------------------------------------------------------

    def resume_execution(self, next_method: str, next_kwargs: dict[str, Any] | None, context: Context) -> Any:
        """Resume after a deferral; any failure there (an error or timeout event, or a crashed
        trigger: Airflow's ``__fail__`` raising ``TaskDeferralError``) deletes the branch first."""
        self._context = context
        if next_method == "execute_unlocked":
            # Deferred before anything was created (the project was locked); execute cleans up.
            return super().resume_execution(next_method, next_kwargs, context)
        # What was created is read back (the resume kwargs, else the XCom pushed before deferring)
        # only on failure.
        self._resumed = True
        self._resume_result = (next_kwargs or {}).get("result")
        with self._all_or_nothing():
            return super().resume_execution(next_method, next_kwargs, context)

    @contextmanager
    def _all_or_nothing(self) -> Iterator[None]:
        try:
            yield
        except TaskDeferred:
            raise
        except BaseException:
            # Re-raised unchanged: the cleanup only adds to what the task reports.
            self.cleanup_after_failure()
            raise

    def succeeded(self, context: Context, result: Mapping[str, Any] | None) -> None:
        if self._deleted_branch is not None:
            # on_kill ran (a SIGTERM the task outlived) and deleted the branch: handing it on now
            # would give downstream tasks a branch that is gone.
            raise JamboError(
                f"the task was killed while it created branch {self._deleted_branch} and deleted it "
                "(on_kill); it fails rather than hand on a branch that is gone"
            )
        super().succeeded(context, result)

    def on_kill(self) -> None:
        # Called from a signal handler, maybe in the middle of a request of self.hook: use a new one.
        self.cleanup_after_failure(self.make_hook())

    def delete_branch(self, project_id: str, branch_id: str, *, hook: JamboHook | None = None) -> WaitResult:
        """Delete a branch this task made and wait for the delete, within :data:`CLEANUP_TIMEOUT`.

        Sent as every change is (a locked project is waited for, never deferred); the caller decides
        what a failure means (the cleanup after a failure logs it, a finished task raises it).
        """
        hook = hook or self.hook
        deadline = time.time() + CLEANUP_TIMEOUT
        operations = self.send(
            lambda: hook.branches.delete(branch_id, project_id=project_id),
            project_id=project_id,
            deadline=deadline,
            defer=False,
            hook=hook,
        )
        return hook.operations.wait(
            operations, project_id=project_id, deadline=deadline, poll_interval=self.poll_interval
        )

    def cleanup_after_failure(self, hook: JamboHook | None = None) -> None:
        """Delete the branch this task created (once; best effort, logged). See the class docstring."""
        context = self._context
        if self._created_branch is None and self._resumed:
            # A resumed task finds its branch in the resume kwargs, or (Airflow's __fail__ for a
            # crashed trigger carries only the error) in the XCom pushed before it deferred.
            pushed = self._resume_result
            if pushed is None and context is not None and "ti" in context:
                pushed = self._result_after_deferral(context, None)
            if isinstance(pushed, Mapping) and pushed.get("branch_id") and pushed.get("project_id"):
                self._created_branch = _CreatedBranch(
                    str(pushed["project_id"]), str(pushed["branch_id"]), bool(pushed.get("created"))
                )
        target = self._created_branch
        if target is None or self._cleaned_up:
            return
        self._cleaned_up = True
        if self.keep_on_failure:
            self.log.warning(
                "The task failed; keeping branch %s (keep_on_failure=True): delete it yourself, "
                "or let its TTL do so",
                target.branch_id,
            )
            return
        hook = hook or self.hook
        pid, bid = target.project_id, target.branch_id
        try:
            if not target.created:
                branch = hook.branches.get(bid, project_id=pid)
                if context is None or "ti" not in context or not made_by_task(branch, context["ti"]):
                    self.log.info(
                        "The task failed; branch %r (%s) was adopted, not created by this task: "
                        "left as it is",
                        branch.name,
                        bid,
                    )
                    return
            self._deleted_branch = bid
            waited = self.delete_branch(pid, bid, hook=hook)
        except JamboNotFoundError:
            self.log.info("The task failed; branch %s is already gone", bid)
            return
        except JamboError as err:
            self.log.error(
                "The task failed, and deleting branch %s (created by this task) failed too: %s. "
                "Delete it by hand; its TTL, if it has one, deletes it eventually",
                bid,
                err,
            )
            return
        self.console_target = None  # no link to a branch that is gone
        if waited.succeeded:
            self.log.warning("The task failed: deleted branch %s, which it had created", bid)
        else:
            self.log.error(
                "The task failed: deleting branch %s (created by this task) was sent, but %s",
                bid,
                waited.message,
            )
