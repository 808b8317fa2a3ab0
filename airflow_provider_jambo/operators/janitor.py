"""The branch janitor: delete branches that are stale by name prefix, annotation and age.

Selection is a pure function (:func:`plan_cleanup`) so what would be deleted can be listed, tested
and reviewed without touching anything; :class:`JamboDeleteStaleBranchesOperator` applies a plan
(or only logs and returns it in dry-run mode).

Rules, in the order they are checked:

* a branch is a candidate only if its name starts with ``name_prefix`` (required, non-empty),
  every ``annotations`` key/value matches exactly, and it was created at least ``older_than`` ago;
* the default branch and protected branches are never deleted, whatever they are called;
* with ``only_ended_runs``, a candidate must also carry the default annotations of a run
  (``dag_id``, ``run_id``: the create operators add them) whose state is ``success`` or
  ``failed``: an orphan for certain, whatever its age. A run still queued or running, one whose
  state cannot be read, and a branch without those annotations keep their branch. Where a task can
  read other runs' states: Airflow 3 through the Task SDK (``ti.get_dagrun_state``, the execution
  API; a worker has no metadata-database access there), Airflow 2 through the ORM;
* a candidate with a child that is not itself deleted is kept (the API refuses to delete a branch
  with children, and the janitor never deletes a branch nobody named);
* children are deleted before their parents.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import BaseOperator

from airflow_provider_jambo.exceptions import JamboConfigError
from airflow_provider_jambo.rules import (
    DEFAULT_CONN_ID,
    check_annotations,
    check_bool,
    check_id,
    check_name,
    check_timeout,
    is_known,
    seconds,
)

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context

    from airflow_provider_jambo.api_models import Branch
    from airflow_provider_jambo.hooks.jambo import JamboHook

__all__ = ["CleanupPlan", "JamboDeleteStaleBranchesOperator", "StaleBranchRule", "plan_cleanup"]

#: States of a run that is over: a branch annotated by it is an orphan.
ENDED_RUN_STATES = frozenset({"success", "failed"})

#: (dag_id, run_id) -> that run's state, None when it cannot be read.
RunStates = Mapping[tuple[str, str], "str | None"]


@dataclass(frozen=True)
class StaleBranchRule:
    """What makes a branch stale. All three conditions must hold."""

    name_prefix: str
    older_than: timedelta
    annotations: Mapping[str, str]
    only_ended_runs: bool = False

    def __post_init__(self) -> None:
        try:
            check_name("name_prefix", self.name_prefix)
        except JamboConfigError as err:
            raise JamboConfigError(f"janitor: {err} (an empty prefix would match every branch)") from None
        if not isinstance(self.older_than, timedelta):
            raise JamboConfigError(f"janitor: older_than must be a timedelta, got {self.older_than!r}")
        seconds("older_than", self.older_than, allow_zero=True)
        check_annotations("annotations", self.annotations)

    def matches_name_and_age(self, branch: Branch, now: datetime) -> bool:
        if not branch.name.startswith(self.name_prefix):
            return False
        # A branch without a creation time cannot be proven old enough: keep it.
        return branch.created_at is not None and now - branch.created_at >= self.older_than

    def matches_annotations(self, annotations: Mapping[str, str]) -> bool:
        return all(annotations.get(key) == value for key, value in self.annotations.items())


@dataclass(frozen=True)
class CleanupPlan:
    """``delete``: branches in deletion order (children first). ``kept``: candidates not deleted."""

    delete: tuple[Branch, ...]
    kept: tuple[tuple[Branch, str], ...]

    def to_dict(self, *, dry_run: bool) -> dict[str, Any]:
        """The operator's XCom value: names and ids only."""
        return {
            "dry_run": dry_run,
            "would_delete" if dry_run else "deleted": [_describe(branch) for branch in self.delete],
            "kept": [{**_describe(branch), "reason": reason} for branch, reason in self.kept],
        }


def run_of(annotations: Mapping[str, str]) -> tuple[str, str] | None:
    """The (dag_id, run_id) a branch's default annotations name, or None."""
    dag_id, run_id = annotations.get("dag_id"), annotations.get("run_id")
    return (dag_id, run_id) if dag_id and run_id else None


def _run_verdict(annotations: Mapping[str, str], run_states: RunStates) -> str | None:
    """Why a candidate is kept under ``only_ended_runs``; None when its run has ended."""
    run = run_of(annotations)
    if run is None:
        return "no dag_id/run_id annotations: whether its run ended is unknown"
    state = run_states.get(run)
    if state is None:
        return f"the state of run {run[0]}/{run[1]} could not be read"
    if state not in ENDED_RUN_STATES:
        return f"its run {run[0]}/{run[1]} is {state}"
    return None


def _describe(branch: Branch) -> dict[str, Any]:
    return {
        "branch_id": branch.id,
        "name": branch.name,
        "parent_id": branch.parent_id,
        "created_at": branch.created_at.isoformat() if branch.created_at else None,
    }


def plan_cleanup(
    branches: Iterable[Branch],
    rule: StaleBranchRule,
    *,
    now: datetime,
    annotations: Mapping[str, Mapping[str, str]],
    run_states: RunStates | None = None,
) -> CleanupPlan:
    """Decide what to delete. Pure: no API calls.

    ``annotations`` maps branch id to its annotation values; a branch missing from it has none.
    ``annotations`` only needs entries for branches matching the name and age (the operator reads
    annotations for those alone). ``run_states`` (for ``only_ended_runs``) holds the state of
    each run those annotations name.
    """
    all_branches = list(branches)
    children: dict[str, list[Branch]] = {}
    for branch in all_branches:
        if branch.parent_id:
            children.setdefault(branch.parent_id, []).append(branch)

    stale: dict[str, Branch] = {}
    kept: list[tuple[Branch, str]] = []
    for branch in all_branches:
        if not rule.matches_name_and_age(branch, now):
            continue
        tags = annotations.get(branch.id, {})
        if not rule.matches_annotations(tags):
            continue
        if branch.default:
            kept.append((branch, "default branch"))
        elif branch.protected:
            kept.append((branch, "protected branch"))
        elif rule.only_ended_runs and (why := _run_verdict(tags, run_states or {})) is not None:
            kept.append((branch, why))
        else:
            stale[branch.id] = branch

    # A stale branch can go only if its whole subtree goes; repeat until nothing changes, since
    # keeping a child can make its parent's subtree non-deletable too.
    changed = True
    while changed:
        changed = False
        for branch_id, branch in list(stale.items()):
            blocker = next((c for c in children.get(branch_id, []) if c.id not in stale), None)
            if blocker is not None:
                del stale[branch_id]
                kept.append((branch, f"has child {blocker.name} ({blocker.id}) that is not deleted"))
                changed = True

    order: list[Branch] = []
    visited: set[str] = set()

    def visit(branch: Branch) -> None:  # post-order: children before the parent
        if branch.id in visited:
            return
        visited.add(branch.id)
        for child in sorted(children.get(branch.id, []), key=lambda b: b.name):
            if child.id in stale:
                visit(child)
        order.append(branch)

    for branch in sorted(stale.values(), key=lambda b: b.name):
        visit(branch)
    return CleanupPlan(delete=tuple(order), kept=tuple(kept))


def _duration(value: timedelta | float | str, field: str) -> timedelta:
    if isinstance(value, timedelta):
        seconds(field, value, allow_zero=True)
        return value
    return timedelta(seconds=seconds(field, value, allow_zero=True, allow_text=True))


class JamboDeleteStaleBranchesOperator(BaseOperator):
    """Delete stale branches of a project, children first; or list them (``dry_run=True``).

    :param name_prefix: only branches whose name starts with this (required, templated).
    :param older_than: minimum age since creation: a timedelta or seconds (templated).
    :param annotations: annotation values a branch must all carry, e.g. ``{"dag_id": "preview"}``
        (templated). Empty: no annotation condition.
    :param dry_run: list what would be deleted, delete nothing (templated; "true"/"false" accepted).
    :param only_ended_runs: delete only branches whose default annotations name a run that has
        ended (``success``/``failed``): exact orphans, whatever ``older_than`` allows (templated).
    :param project_id: default: the connection's project (templated).
    :param jambo_conn_id: the Jambo API connection (templated).
    :param operation_timeout: seconds to wait for each deletion's operations.

    Returns ``{"dry_run", "deleted" | "would_delete", "kept"}`` with ids, names and reasons.
    """

    template_fields: Sequence[str] = (
        "name_prefix",
        "older_than",
        "annotations",
        "dry_run_value",
        "only_ended_runs",
        "project_id",
        "jambo_conn_id",
    )
    ui_color = "#f5efe9"

    def __init__(
        self,
        *,
        name_prefix: str,
        older_than: timedelta | float | str,
        annotations: Mapping[str, str] | str | None = None,
        dry_run: bool | str = False,
        only_ended_runs: bool | str = False,
        project_id: str | None = None,
        jambo_conn_id: str = DEFAULT_CONN_ID,
        operation_timeout: float = 600.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.name_prefix = name_prefix
        self.older_than = older_than
        self.annotations = annotations if annotations is not None else {}
        # Not `self.dry_run`: that name is a BaseOperator method.
        self.dry_run_value = dry_run
        self.only_ended_runs = only_ended_runs
        self.project_id = project_id
        self.jambo_conn_id = jambo_conn_id
        self.operation_timeout = check_timeout("operation_timeout", operation_timeout)
        # Plain values can be checked while the DAG is parsed; templates only once rendered.
        if is_known(name_prefix, older_than, self.annotations, only_ended_runs):
            self._rule()
        if is_known(dry_run):
            self._dry_run()
        if project_id is not None and is_known(project_id):
            check_id("project_id", project_id)

    def _rule(self) -> StaleBranchRule:
        if not isinstance(self.annotations, Mapping):
            raise JamboConfigError(
                f"janitor: annotations must be a dict of strings, got {type(self.annotations).__name__} "
                "(rendering a template into a dict needs render_template_as_native_obj=True on the DAG)"
            )
        return StaleBranchRule(
            self.name_prefix,
            _duration(self.older_than, "older_than"),
            self.annotations,
            only_ended_runs=check_bool("only_ended_runs", self.only_ended_runs),
        )

    def _dry_run(self) -> bool:
        return check_bool("dry_run", self.dry_run_value)

    def execute(self, context: Context) -> dict[str, Any]:
        # Everything is checked before the first request, so bad input deletes nothing.
        rule = self._rule()
        dry_run = self._dry_run()
        check_timeout("operation_timeout", self.operation_timeout)
        if self.project_id is not None:
            check_id("project_id", self.project_id)

        from airflow_provider_jambo.hooks.jambo import JamboHook  # not at parse time

        with JamboHook(jambo_conn_id=self.jambo_conn_id) as hook:
            reader = run_state_reader(context) if rule.only_ended_runs else None
            return self._clean(hook, rule, dry_run=dry_run, run_state=reader)

    def _clean(
        self,
        hook: JamboHook,
        rule: StaleBranchRule,
        *,
        dry_run: bool,
        run_state: Callable[[str, str], str | None] | None = None,
    ) -> dict[str, Any]:
        project_id = self.project_id or hook.project_id
        now = datetime.now(UTC)

        branches = list(hook.branches.list(project_id))
        candidates = [b for b in branches if rule.matches_name_and_age(b, now)]
        annotations = (
            {b.id: _branch_annotations(hook, project_id, b.id) for b in candidates}
            if rule.annotations or rule.only_ended_runs
            else {}
        )
        run_states: dict[tuple[str, str], str | None] = {}
        if run_state is not None:
            for tags in annotations.values():
                if (run := run_of(tags)) is not None and run not in run_states:
                    run_states[run] = run_state(*run)
        plan = plan_cleanup(branches, rule, now=now, annotations=annotations, run_states=run_states)

        for branch, reason in plan.kept:
            self.log.info("Keeping %s (%s): %s", branch.name, branch.id, reason)
        if dry_run:
            for branch in plan.delete:
                self.log.info(
                    "Dry run: would delete %s (%s), created %s", branch.name, branch.id, branch.created_at
                )
            self.log.info("Dry run: %d branch(es) would be deleted; nothing was changed", len(plan.delete))
            return plan.to_dict(dry_run=True)

        for branch in plan.delete:
            self.log.info("Deleting %s (%s), created %s", branch.name, branch.id, branch.created_at)
            operations = hook.branches.delete(branch.id, project_id=project_id)
            if operations:
                # The parent can only go once the child's deletion has finished.
                hook.operations.wait(
                    operations, project_id=project_id, timeout=self.operation_timeout
                ).raise_for_status()
        self.log.info("Deleted %d stale branch(es)", len(plan.delete))
        return plan.to_dict(dry_run=False)


def _branch_annotations(hook: JamboHook, project_id: str, branch_id: str) -> Mapping[str, str]:
    """Annotation values of one branch (``GET .../branches/{id}`` answers them beside the branch)."""
    branch = hook.branches.get(branch_id, project_id=project_id)
    return branch_annotation_values(branch)


def branch_annotation_values(branch: Branch) -> Mapping[str, str]:
    raw = branch.raw.get("annotation") if isinstance(branch.raw, Mapping) else None
    value = raw.get("value") if isinstance(raw, Mapping) else None
    if not isinstance(value, Mapping):
        return {}
    return {str(k): str(v) for k, v in value.items()}


def run_state_reader(context: Context) -> Callable[[str, str], str | None]:
    """How this task reads another run's state: None for a run it cannot read (or that is gone).

    Airflow 3: the Task SDK's ``get_dagrun_state`` (the execution API; a worker may not open the
    metadata database). Airflow 2: the ORM, as tasks there may.
    """
    ti = context["ti"]
    getter = getattr(ti, "get_dagrun_state", None)
    from airflow import __version__ as airflow_version

    if getter is None and int(airflow_version.split(".")[0]) >= 3:
        # A Task SDK line whose task instances cannot read other runs (no ORM there either): no
        # state, so nothing is deleted.
        return lambda dag_id, run_id: None
    if getter is not None:
        from airflow.sdk.exceptions import AirflowRuntimeError

        def read(dag_id: str, run_id: str) -> str | None:
            try:
                return str(getter(dag_id, run_id))
            except AirflowRuntimeError:  # no such run (deleted), or the API refused
                return None

        return read

    def read_orm(dag_id: str, run_id: str) -> str | None:
        from airflow.models.dagrun import DagRun
        from airflow.utils.session import create_session

        with create_session() as session:
            runs = DagRun.find(dag_id=dag_id, run_id=run_id, session=session)
            return str(runs[0].state) if runs else None

    return read_orm
