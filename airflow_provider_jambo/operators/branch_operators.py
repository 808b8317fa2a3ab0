"""Operators for branches: create (get-or-create), delete, reset.

Guard rails: names are matched exactly (never by prefix or search hit), the default and protected
branches are refused for delete/reset unless ``allow_protected=True``, and a created branch is checked
to be neither its parent nor the default branch before anything is handed downstream.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from airflow_provider_jambo.exceptions import (
    JamboAPIError,
    JamboBranchNotFound,
    JamboConfigError,
    JamboConflictError,
    JamboLookupError,
    JamboRefusedError,
)
from airflow_provider_jambo.operators.all_or_nothing import AllOrNothingBranchOperator, made_by_task
from airflow_provider_jambo.operators.base_operator import JamboBaseOperator
from airflow_provider_jambo.operators.branch_lineage import BranchChange, BranchLineageMixin, lineage_enabled
from airflow_provider_jambo.operators.run_names import (
    default_branch_name,
    is_run_branch_name,
    run_branch_ttl_setting,
    safety_ttl,
)
from airflow_provider_jambo.rules import (
    IF_EXISTS_POLICIES,
    MAX_EXPIRY,
    SCHEMA_ONLY,
    check_annotations,
    check_choice,
    check_expiry,
    check_name,
    check_operator_compute,
    check_ref,
    check_ttl,
    endpoint_settings,
    format_timestamp,
    parse_timestamp,
    point_in_time,
)

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context

    from airflow_provider_jambo.api_models import Branch, BranchCreation, Database, Endpoint, Operation
    from airflow_provider_jambo.create_branch_request import CreateBranchRequest
    from airflow_provider_jambo.operators.results import BranchResult, DeletedBranchResult, ResetBranchResult


def _iso(value: datetime | None) -> str | None:
    return format_timestamp(value) if value is not None else None


def _point(param: str, value: datetime | str | None) -> str | None:
    """A point in time as given (datetime or RFC 3339 text, checked before the call), in UTC."""
    return format_timestamp(parse_timestamp(param, value)) if value is not None else None


def refuse_guarded(branch: Branch, *, action: str, allow_protected: bool) -> None:
    """Refuse to ``action`` the default or a protected branch unless explicitly allowed."""
    if allow_protected:
        return
    if branch.default:
        raise JamboRefusedError(
            f"refusing to {action} branch {branch.name!r} ({branch.id}): it is the project's default branch; "
            "pass allow_protected=True if you really mean it"
        )
    if branch.protected:
        raise JamboRefusedError(
            f"refusing to {action} branch {branch.name!r} ({branch.id}): it is protected; "
            "pass allow_protected=True if you really mean it"
        )


class JamboCreateBranchOperator(BranchLineageMixin, AllOrNothingBranchOperator):
    """Create a branch, or adopt the one a previous try created (``if_exists="reuse"``).

    Returns (XCom) ``project_id``, ``branch_id``, ``branch_name``, ``parent_id`` (None for a
    schema-only root), ``created``, ``endpoint_id``, ``host``, ``pooler_host``, ``database``,
    ``role``, ``expires_at`` — never a password or a connection URI (get one at run time from the
    hook). Each key is also its own XCom (``create.output["branch_id"]``).

    :param branch_name: exact name of the branch (templated). Default:
        ``<dag_id>-<task_id>-<run id>`` as built by :func:`run_branch_name` (unique per run and task,
        the same for every try). Build names from ``run_id``, not ``ts``/``ds``: a manual run of
        Airflow 3 has no logical date, and those variables are undefined then.
    :param parent: parent branch, by id or exact name (templated); default: the default branch.
    :param parent_timestamp: branch from the parent's state at this time (datetime or RFC 3339).
    :param parent_lsn: branch from the parent's state at this LSN (exclusive with ``parent_timestamp``).
    :param schema_only: a new root branch with only the parent's schema (``init_source=schema-only``).
    :param protected: create the branch protected.
    :param expires_at: absolute expiry (at most 30 days ahead, not with ``protected``).
    :param ttl: relative expiry from the moment the task runs (seconds or timedelta, at most 30 days).
    :param safety_expiry: the expiry a branch named for its run gets when neither ``ttl`` nor
        ``expires_at`` is given (see "Safety expiry" below). ``None`` (default): only a run-named
        branch gets it; ``True``: a fixed name gets it too; ``False``: no expiry at all.
    :param compute_type: ``read_write`` (default), ``read_only``, or None for a branch without compute.
    :param min_cu: autoscaling minimum, 0.25..16 compute units.
    :param max_cu: autoscaling maximum, 0.25..16, at most 8 above ``min_cu``.
    :param suspend_timeout_seconds: -1 (never), 0 (service default) .. 604800.
    :param annotations: string tags for the branch (templated); ``dag_id``, ``run_id``, ``task_id`` and
        ``try_number`` are added unless ``default_annotations=False``.
    :param if_exists: ``reuse`` (get-or-create; a retried task adopts its branch) or ``fail``.
    :param database: which database to report in the return value (default: the branch's first).
    :param keep_on_failure: keep the branch when the task fails after creating it (see below).
    :param add_to_asset_aliases: add the branch's asset (``jambo://<project id>/<branch name>``) to
        every asset alias among the task's ``outlets``, with the create's extra (default: aliases
        are left alone). The task's asset outlets always get that extra.

    All or nothing (``operators/all_or_nothing.py``): when anything fails after the branch was
    created (its operations failed or timed out, the triggerer lacks the connection, the trigger
    crashed, the task is killed or times out: ``on_kill``), the task deletes the branch before it
    fails, best effort and logged,
    unless ``keep_on_failure=True``. It deletes only a branch this task created: in this try, or
    in an earlier try of the same task instance (an adopted branch whose default annotations name
    this ``dag_id``, ``run_id``, ``task_id`` and ``map_index``). Any other branch it adopted (made by
    hand, by another task or run, or without ``default_annotations``) is left alone. A process
    killed with SIGKILL cannot clean up: the branch's expiry is then what deletes it.

    Safety expiry: a branch named for its run (the default name, or a rendered ``branch_name`` that
    ends with the run id or its hash as :func:`run_branch_name` builds it: ``is_run_branch_name``) expires by
    default, so one leaked by a killed worker is deleted by the service. It lives the DAG's
    ``dagrun_timeout`` + 1 h when set, else the task's ``execution_timeout`` + 1 h when that is
    longer than the default, else the default: 1 day, or ``[jambo] run_branch_ttl_seconds``
    (``AIRFLOW__JAMBO__RUN_BRANCH_TTL_SECONDS``); never more than the service's 30 days. A retry
    that adopts its branch (annotated by this task instance) gives it this try's expiry (the
    safety one, or ``ttl`` from now), so the clock starts again. An explicit ``ttl``
    or ``expires_at`` wins, and so does ``safety_expiry=False`` (a branch meant to outlive its run).
    The service allows no expiry on a protected branch, and none on a branch with children: such a
    branch gets none, and the log says why. An expiring branch cannot get children either: a task
    branching from one is refused before its create, naming the parent's expiry.
    """

    template_fields: Sequence[str] = (
        *AllOrNothingBranchOperator.template_fields,
        "branch_name",
        "parent",
        "parent_timestamp",
        "parent_lsn",
        "expires_at",
        "annotations",
        "database",
    )
    template_fields_renderers = {"annotations": "json"}

    def __init__(
        self,
        *,
        branch_name: str | None = None,
        parent: str | None = None,
        parent_timestamp: datetime | str | None = None,
        parent_lsn: str | None = None,
        schema_only: bool = False,
        protected: bool = False,
        expires_at: datetime | str | None = None,
        ttl: timedelta | float | None = None,
        safety_expiry: bool | None = None,
        compute_type: str | None = "read_write",
        min_cu: float | None = None,
        max_cu: float | None = None,
        suspend_timeout_seconds: int | None = None,
        annotations: Mapping[str, str] | None = None,
        default_annotations: bool = True,
        if_exists: str = "reuse",
        database: str | None = None,
        keep_on_failure: bool = False,
        add_to_asset_aliases: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(keep_on_failure=keep_on_failure, **kwargs)
        self.add_to_asset_aliases = add_to_asset_aliases
        self.branch_name = branch_name
        self.parent = parent
        self.parent_timestamp = parent_timestamp
        self.parent_lsn = parent_lsn
        self.schema_only = schema_only
        self.protected = protected
        self.expires_at = expires_at
        self.ttl = ttl
        self.safety_expiry = safety_expiry
        # Whether the branch is named for its run: decided at the start of execute.
        self._run_named = False
        self.compute_type = compute_type
        self.min_cu = min_cu
        self.max_cu = max_cu
        self.suspend_timeout_seconds = suspend_timeout_seconds
        self.annotations = annotations
        self.default_annotations = default_annotations
        self.if_exists = if_exists
        self.database = database
        self._validate(at_parse=True)

    def _validate(self, *, at_parse: bool) -> None:
        """Check every argument whose value is known (all of them at run time)."""
        known = self._checkable(at_parse=at_parse)
        check_choice("if_exists", self.if_exists, IF_EXISTS_POLICIES)
        check_operator_compute(self.compute_type, self.min_cu, self.max_cu, self.suspend_timeout_seconds)
        if self.ttl is not None:
            check_ttl("ttl", self.ttl)
        if known(self.expires_at):
            check_expiry(expires_at=self.expires_at, ttl=self.ttl, protected=self.protected)
        elif self.ttl is not None:
            raise JamboConfigError("give either expires_at (absolute) or ttl (relative), not both")
        if self.safety_expiry not in (None, True, False):
            raise JamboConfigError(
                "safety_expiry must be None (an expiry for run-named branches only), True (for any "
                f"name) or False (no expiry), got {self.safety_expiry!r}"
            )
        if self.safety_expiry and self.protected:
            raise JamboConfigError(
                "safety_expiry=True cannot be set on a protected branch (protected=True); "
                "the service refuses an expiry there"
            )
        may_be_run_named = self.branch_name is None or not known(self.branch_name)
        if (
            (self.safety_expiry or (self.safety_expiry is None and may_be_run_named))
            and self.expires_at is None
            and self.ttl is None
        ):
            run_branch_ttl_setting()  # a bad [jambo] run_branch_ttl_seconds fails the parse
        if known(self.parent_timestamp, self.parent_lsn):
            point_in_time("parent", self.parent_lsn, self.parent_timestamp)
        if self.branch_name is not None and known(self.branch_name):
            check_name("branch_name", self.branch_name)
        if self.parent is not None and known(self.parent):
            check_ref("parent", self.parent)
        if self.database is not None and known(self.database):
            check_name("database", self.database)
        if self.schema_only and (self.parent_timestamp is not None or self.parent_lsn is not None):
            raise JamboConfigError(
                "schema_only branches take the parent's current schema; drop parent_timestamp/lsn"
            )
        if known(self.annotations) and self.annotations is not None:
            check_annotations("annotations", self.annotations)

    def _annotations(self, context: Context) -> dict[str, str]:
        tags: dict[str, str] = {}
        if self.default_annotations:
            ti = context["ti"]
            tags.update(
                {
                    "dag_id": str(ti.dag_id),
                    "run_id": str(ti.run_id),
                    "task_id": str(ti.task_id),
                    "try_number": str(ti.try_number),
                }
            )
            map_index = getattr(ti, "map_index", None)
            if isinstance(map_index, int) and map_index >= 0:
                tags["map_index"] = str(map_index)
        tags.update({str(k): str(v) for k, v in (self.annotations or {}).items()})
        return tags

    def create_request_fields(self, context: Context) -> dict[str, Any]:
        """This task's create as :class:`CreateBranchRequest` arguments (rendered, checked by the
        caller); the parent is named by id once it is resolved (``with_parent``)."""
        expires = self.expiry(context)
        endpoints = None
        if self.compute_type is not None:
            limits = endpoint_settings(self.min_cu, self.max_cu, self.suspend_timeout_seconds)
            endpoints = [{"type": self.compute_type, **limits}]
        return {
            "name": self.branch_name,
            "parent_lsn": self.parent_lsn,
            "parent_timestamp": self.parent_timestamp,
            "init_source": SCHEMA_ONLY if self.schema_only else None,
            "protected": self.protected or None,
            "expires_at": _iso(expires),
            "endpoints": endpoints,
            "annotations": self._annotations(context),
        }

    def expiry(self, context: Context) -> datetime | None:
        """The branch's expiry: the explicit one, else its safety expiry (class docstring), else none."""
        explicit = check_expiry(expires_at=self.expires_at, ttl=self.ttl, protected=self.protected)
        if explicit is not None or self.safety_expiry is False:
            return explicit
        if not (self.safety_expiry or self._run_named):
            return None
        if self.protected:
            self.log.info(
                "Branch %r is named for its run but protected: it gets no safety expiry (the service "
                "allows none on a protected branch); delete it yourself if the run dies",
                self.branch_name,
            )
            return None
        dag = context.get("dag")
        chosen = safety_ttl(
            dagrun_timeout=getattr(dag, "dagrun_timeout", None),
            execution_timeout=self.execution_timeout,
            default=run_branch_ttl_setting(),
        )
        self.log.info(
            "Branch %r is named for its run: it expires in %s (%s), so a run that dies leaks it no "
            "longer; pass ttl, expires_at or safety_expiry=False to choose otherwise",
            self.branch_name,
            chosen.ttl,
            chosen.reason,
        )
        return datetime.now(UTC) + chosen.ttl

    def create_request(self, context: Context) -> CreateBranchRequest:
        """The one request this task's create sends (the anonymized operator adds its rules)."""
        from airflow_provider_jambo.create_branch_request import CreateBranchRequest

        return CreateBranchRequest(**self.create_request_fields(context))

    def execute(self, context: Context) -> BranchResult | None:
        # Every rendered argument is checked before the first request.
        self._context = context
        if self.branch_name is None:
            self.branch_name = default_branch_name(context)
            self._run_named = True
        else:
            self._run_named = is_run_branch_name(self.branch_name, str(context["run_id"]))
        self._validate(at_parse=False)
        # The create, checked and turned into its body once (its parent named by id below).
        request = self.create_request(context)
        hook = self.hook
        project_id = self.resolved_project_id()

        # Without a parent the service branches from the default branch: no lookup is needed for it.
        parent = hook.branches.resolve(self.parent, project_id=project_id) if self.parent else None
        if parent is not None:
            if parent.expires_at is not None:
                raise JamboRefusedError(
                    f"parent branch {parent.name!r} ({parent.id}) expires at {_iso(parent.expires_at)}, "
                    "and the service allows no children of an expiring branch: create the parent "
                    "with safety_expiry=False (or without ttl/expires_at), or clear its expiry"
                )
            request = request.with_parent(parent.id)
        if self.if_exists == "reuse":
            # Only a retry can find its own branch from an earlier try; a first try sends the create
            # first (and adopts on a 409 all the same).
            look_first = int(getattr(context["ti"], "try_number", 1) or 1) > 1
            creation = self.send(
                lambda: hook.branches.get_or_create(request, project_id=project_id, look_first=look_first),
                project_id=project_id,
            )
        else:
            try:
                creation = self.send(
                    lambda: hook.branches.create(request, project_id=project_id),
                    project_id=project_id,
                )
            except JamboConflictError as err:
                raise JamboConflictError(
                    err.status,
                    f"branch {self.branch_name!r} already exists in project {project_id} "
                    "and if_exists='fail' (use if_exists='reuse' to adopt it)",
                    code=err.code,
                    request_id=err.request_id,
                    method=err.method,
                    path=err.path,
                    target=err.target,
                ) from err
        branch = creation.branch
        self._check_result(branch, parent)
        parent_name = parent.name if parent is not None else None
        if parent_name is None and branch.parent_id and lineage_enabled():
            # Lineage names the parent, and the listener cannot look it up itself (branch_lineage.py).
            parent_name = hook.branches.get(branch.parent_id, project_id=project_id).name
        self.resume_state = {"parent_name": parent_name}
        if not creation.created:
            self.log.info("Branch %r (%s) already exists: adopting it", branch.name, branch.id)
            creation = self._renew_expiry(creation, request.expires_at, project_id, context)
        else:
            source = (
                f"{parent.name!r} ({parent.id})"
                if parent is not None
                else f"the default branch ({branch.parent_id})"
            )
            self.log.info("Created branch %r (%s) from %s", branch.name, branch.id, source)

        self.remember_created(project_id, branch.id, created=creation.created)
        with self._all_or_nothing():
            result = self._result(creation, project_id)
            # Pushed before waiting: a deferred task resumes (or fails) with it, and a teardown finds it.
            self.push_early(context, result)
            # For an adopted branch these are its operations still in flight (a previous try may have
            # died while the branch was being created), so a retry waits for them too.
            operations: list[Operation] = list(creation.operations)
            return self.wait_for(context, project_id=project_id, operations=operations, result=result)

    def _renew_expiry(
        self, creation: BranchCreation, expires_at: datetime | str | None, project_id: str, context: Context
    ) -> BranchCreation:
        """Give an adopted branch this try's expiry, when this task instance made it: a retry
        starts the run's clock again (a branch made by hand or another run is left as it is)."""
        if expires_at is None:
            return creation
        hook = self.hook
        branch = hook.branches.get(creation.branch.id, project_id=project_id)
        if not made_by_task(branch, context["ti"]):
            self.log.info(
                "Branch %r (%s) was not made by this task instance: its expiry is left as it is",
                branch.name,
                branch.id,
            )
            return creation
        if branch.protected:
            self.log.info(
                "Branch %r (%s) is protected: no expiry is set (the service allows none there)",
                branch.name,
                branch.id,
            )
            return creation
        try:
            changed = self.send(
                lambda: hook.branches.update(branch.id, project_id=project_id, expires_at=expires_at),
                project_id=project_id,
            )
        except JamboAPIError as err:
            if err.status != 400:
                raise
            # The service's rules on expiring branches (e.g. none on a branch with children).
            self.log.warning(
                "Branch %r (%s) keeps its expiry (%s): the service refused a new one: %s",
                branch.name,
                branch.id,
                _iso(branch.expires_at) or "none",
                err,
            )
            return creation
        self.log.info("Branch %r (%s) now expires at %s", branch.name, branch.id, expires_at)
        return replace(
            creation,
            branch=changed.resource,
            operations=[*creation.operations, *changed.operations],
        )

    def _check_result(self, branch: Branch, parent: Branch | None) -> None:
        if branch.name != self.branch_name:
            raise JamboRefusedError(
                f"the service returned branch {branch.name!r} ({branch.id}) for name {self.branch_name!r}"
            )
        if (parent is not None and branch.id == parent.id) or branch.default:
            raise JamboRefusedError(
                f"branch {self.branch_name!r} resolved to {branch.id}, which is the parent or the default "
                "branch; refusing to hand it downstream as an ephemeral branch"
            )
        # Whether an existing branch has the requested parent is checked by the hook before it is
        # adopted (JamboConflictError naming both parents); it is not repeated here.

    def _result(self, creation: BranchCreation, project_id: str) -> BranchResult:
        branch = creation.branch
        endpoint: Endpoint | None = creation.read_write_endpoint or next(iter(creation.endpoints), None)
        if endpoint is None and self.compute_type is not None and not creation.created:
            endpoints = self.hook.computes.list(project_id, branch_id=branch.id)
            endpoint = next((ep for ep in endpoints if ep.type == "read_write"), next(iter(endpoints), None))
        databases: list[Database] = list(creation.databases)
        if not databases:
            databases = list(self.hook.databases.list(branch.id, project_id=project_id))
        database = pick_database(databases, self.database)
        return {
            "project_id": project_id,
            "branch_id": branch.id,
            "branch_name": branch.name,
            "parent_id": branch.parent_id,
            "created": creation.created,
            "endpoint_id": endpoint.id if endpoint else None,
            "host": endpoint.host if endpoint else None,
            "pooler_host": endpoint.pooled_host if endpoint else None,
            "database": database.name if database else None,
            "role": database.owner_name if database else None,
            "expires_at": _iso(branch.expires_at),
        }

    def record_change(self, result: Mapping[str, Any]) -> None:
        if result.get("project_id") and result.get("branch_name"):
            parent = (self.resume_state or {}).get("parent_name")
            self.branch_change = BranchChange("CREATE", result["project_id"], result["branch_name"], parent)

    def alias_asset(self, result: Mapping[str, Any]) -> Any:
        if not self.add_to_asset_aliases or not result.get("project_id") or not result.get("branch_name"):
            return None
        from airflow_provider_jambo.assets import create_asset

        return create_asset(project_id=str(result["project_id"]), branch_name=str(result["branch_name"]))

    def asset_extra(self, result: Mapping[str, Any]) -> dict[str, Any] | None:
        """The branch made (or adopted), the point in time it was made at, its expiry and compute."""
        return {
            "event": "created" if result.get("created") else "adopted",
            **{k: result.get(k) for k in ("project_id", "branch_id", "branch_name", "parent_id")},
            "parent_timestamp": _point("parent_timestamp", self.parent_timestamp),
            "parent_lsn": self.parent_lsn,
            **{k: result.get(k) for k in ("expires_at", "endpoint_id", "host")},
        }

    def failure_hint(self, result: Mapping[str, Any] | None) -> str:
        if not result or not result.get("branch_id"):
            return ""
        if self.keep_on_failure:
            return (
                f"; branch {result['branch_id']} is kept (keep_on_failure=True) and is in this "
                "task's XCom (keys branch_id and return_value)"
            )
        return f"; branch {result['branch_id']} is deleted by this task if it created it (see the log)"


def pick_database(databases: Iterable[Database], name: str | None) -> Database | None:
    """The named database of a branch, or its first one when no name is given (the create result's
    rule; the dbt profile mapping uses it for a branch given by name)."""
    items = list(databases)
    if name is None:
        return items[0] if items else None
    for db in items:
        if db.name == name:
            return db
    have = ", ".join(d.name for d in items) or "none"
    raise JamboLookupError(f"database={name!r} does not exist on the branch; it has: {have}")


class JamboDeleteBranchOperator(BranchLineageMixin, JamboBaseOperator):
    """Delete a branch by id or exact name and wait until it is gone.

    A branch that does not exist is success (logged). The default branch is always refused, a
    protected one unless ``allow_protected=True`` (then it is unprotected first); a branch with
    children fails naming them.
    """

    template_fields: Sequence[str] = (*JamboBaseOperator.template_fields, "branch")

    def __init__(
        self, *, branch: str | Mapping[str, Any], allow_protected: bool = False, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.branch = branch
        self.allow_protected = allow_protected
        if self._known(branch) and not isinstance(branch, Mapping):
            check_ref("branch", branch)

    def record_change(self, result: Mapping[str, Any]) -> None:
        if result.get("deleted") and result.get("project_id") and result.get("branch_name"):
            self.branch_change = BranchChange("DROP", result["project_id"], result["branch_name"])

    def execute(self, context: Context) -> DeletedBranchResult | None:
        ref = self.reference("branch", "branch_id")
        hook = self.hook
        project_id = self.resolved_project_id()
        try:
            branch, children = hook.branches.resolve_with_children(ref, project_id=project_id)
        except JamboBranchNotFound:
            self.log.info("Branch %r does not exist in project %s: nothing to delete", ref, project_id)
            return {"project_id": project_id, "branch_id": None, "branch_name": None, "deleted": False}
        if branch.default:
            raise JamboRefusedError(
                f"refusing to delete branch {branch.name!r} ({branch.id}): it is the project's default branch"
            )
        refuse_guarded(branch, action="delete", allow_protected=self.allow_protected)
        if children:
            names = ", ".join(f"{c.name!r} ({c.id})" for c in children)
            raise JamboRefusedError(
                f"cannot delete branch {branch.name!r} ({branch.id}): it has child branches {names}; "
                "delete them first"
            )
        operations: list[Operation] = []
        if branch.protected:
            # Only reached with allow_protected=True; the service deletes no protected branch.
            self.log.warning("Unprotecting branch %r (%s) to delete it", branch.name, branch.id)
            unprotect = self.send(
                lambda: hook.branches.update(branch.id, project_id=project_id, protected=False),
                project_id=project_id,
            )
            operations.extend(unprotect.operations)
        operations.extend(
            self.send(lambda: hook.branches.delete(branch.id, project_id=project_id), project_id=project_id)
        )
        self.log.info("Deleting branch %r (%s)", branch.name, branch.id)
        result: DeletedBranchResult = {
            "project_id": project_id,
            "branch_id": branch.id,
            "branch_name": branch.name,
            "deleted": True,
        }
        return self.wait_for(context, project_id=project_id, operations=operations, result=result)


class JamboResetBranchOperator(BranchLineageMixin, JamboBaseOperator):
    """Reset a branch to its parent's current state (or a source branch / point in time) and wait.

    :param branch: the branch to reset, by id or exact name (templated).
    :param source: branch to restore from (id or exact name); default: the branch's parent.
    :param source_timestamp: restore the source's state at this time.
    :param source_lsn: restore the source's state at this LSN.
    :param preserve_under_name: keep the branch's current state as a new branch of this name.
    :param ttl: set a new expiry this long after the reset. Without it, a branch that had a TTL gets
        it refreshed (the service does so for a reset from the parent; otherwise it is re-applied).
    :param allow_protected: allow resetting the default or a protected branch.
    """

    template_fields: Sequence[str] = (
        *JamboBaseOperator.template_fields,
        "branch",
        "source",
        "source_timestamp",
        "source_lsn",
        "preserve_under_name",
    )

    def __init__(
        self,
        *,
        branch: str | Mapping[str, Any],
        source: str | None = None,
        source_timestamp: datetime | str | None = None,
        source_lsn: str | None = None,
        preserve_under_name: str | None = None,
        ttl: timedelta | float | None = None,
        allow_protected: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.branch = branch
        self.source = source
        self.source_timestamp = source_timestamp
        self.source_lsn = source_lsn
        self.preserve_under_name = preserve_under_name
        self.ttl = ttl
        self.allow_protected = allow_protected
        if ttl is not None:
            check_ttl("ttl", ttl)
        self._validate()

    def _validate(self) -> None:
        """Check the arguments whose value is known (all of them once rendered)."""
        if self._known(self.source) and self.source is not None:
            check_ref("source", self.source)
        if self._known(self.preserve_under_name) and self.preserve_under_name is not None:
            check_name("preserve_under_name", self.preserve_under_name)
        if self._known(self.source_timestamp, self.source_lsn):
            point_in_time("source", self.source_lsn, self.source_timestamp)
        if self._known(self.branch) and not isinstance(self.branch, Mapping):
            check_ref("branch", self.branch)

    def execute(self, context: Context) -> ResetBranchResult | None:
        ref = self.reference("branch", "branch_id")
        self._validate()
        source_ts = self.source_timestamp
        hook = self.hook
        project_id = self.resolved_project_id()
        branch = hook.branches.resolve(ref, project_id=project_id)
        refuse_guarded(branch, action="reset", allow_protected=self.allow_protected)
        if self.source:
            source = hook.branches.resolve(self.source, project_id=project_id)
        elif branch.parent_id:
            source = hook.branches.get(branch.parent_id, project_id=project_id)
        else:
            raise JamboRefusedError(
                f"branch {branch.name!r} ({branch.id}) has no parent; name a source to reset from"
            )
        if source.id == branch.id and not self.preserve_under_name:
            raise JamboRefusedError(
                f"resetting branch {branch.name!r} to its own past needs preserve_under_name "
                "(the service keeps the current state under that name)"
            )
        self.resume_state = {"source_name": source.name}
        from_parent = source.id == branch.parent_id and source_ts is None and self.source_lsn is None
        self.log.info("Resetting branch %r (%s) from %r (%s)", branch.name, branch.id, source.name, source.id)
        operations: list[Operation] = []
        expires = self._new_expiry(branch, from_parent)
        if expires is not None:
            # Set before the restore: a reset from the parent re-applies the (new) TTL interval, and
            # an update right after it would collide with the restore's operations (423).
            update = self.send(
                lambda: hook.branches.update(
                    branch.id, project_id=project_id, expires_at=format_timestamp(expires)
                ),
                project_id=project_id,
            )
            operations.extend(update.operations)
        mutation = self.send(
            lambda: hook.branches.restore(
                branch.id,
                source_branch_id=source.id,
                source_lsn=self.source_lsn,
                source_timestamp=source_ts,
                preserve_under_name=self.preserve_under_name,
                project_id=project_id,
            ),
            project_id=project_id,
        )
        operations.extend(mutation.operations)
        reset = mutation.resource
        result: ResetBranchResult = {
            "project_id": project_id,
            "branch_id": branch.id,
            "branch_name": branch.name,
            "source_id": source.id,
            "expires_at": _iso(reset.expires_at) or (_iso(expires) if expires is not None else None),
        }
        return self.wait_for(context, project_id=project_id, operations=operations, result=result)

    def record_change(self, result: Mapping[str, Any]) -> None:
        if result.get("project_id") and result.get("branch_name"):
            source = (self.resume_state or {}).get("source_name")
            self.branch_change = BranchChange(
                "OVERWRITE", result["project_id"], result["branch_name"], source
            )

    def asset_extra(self, result: Mapping[str, Any]) -> dict[str, Any] | None:
        """The branch reset, what it was reset to (source, point in time) and its expiry."""
        return {
            "event": "reset",
            **{k: result.get(k) for k in ("project_id", "branch_id", "branch_name")},
            "source_branch_id": result.get("source_id"),
            "source_timestamp": _point("source_timestamp", self.source_timestamp),
            "source_lsn": self.source_lsn,
            "expires_at": result.get("expires_at"),
        }

    def _new_expiry(self, branch: Branch, from_parent: bool) -> datetime | None:
        """The expiry to set after the reset, or None to leave it to the service."""
        now = datetime.now(UTC)
        if self.ttl is not None:
            return check_expiry(expires_at=None, ttl=self.ttl, protected=False, now=now)
        interval = branch.raw.get("ttl_interval_seconds")
        if branch.expires_at is None or from_parent or not isinstance(interval, int) or interval <= 0:
            return None
        return now + min(timedelta(seconds=interval), MAX_EXPIRY)
