"""``hook.branches``: find, create (at most once, adopting on a lost answer), change, delete.

A create is one :class:`~airflow_provider_jambo.create_branch_request.CreateBranchRequest`,
checked and turned into its body when it was made; an anonymized create is the same request
with masking rules, sent to ``/branch_anonymized``.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any

from airflow_provider_jambo.api_models import UNSET, Branch, BranchCreation, Mutation, Operation, _Unset
from airflow_provider_jambo.create_branch_request import CreateBranchRequest
from airflow_provider_jambo.exceptions import (
    JamboBranchConflict,
    JamboBranchNotFound,
    JamboConfigError,
    JamboConflictError,
    JamboLookupError,
    JamboNotFoundError,
    JamboServerError,
    JamboTransportError,
)
from airflow_provider_jambo.hooks import secret_masking
from airflow_provider_jambo.hooks.client import ApiRequest
from airflow_provider_jambo.hooks.resources.computes import ComputesApi
from airflow_provider_jambo.hooks.resources.operations import OperationsApi
from airflow_provider_jambo.hooks.resources.resource_group import ResourceGroup, mutation, ops_or_empty
from airflow_provider_jambo.hooks.retry import outcome_unknown
from airflow_provider_jambo.rules import (
    ID_PATTERN,
    ROLE_NAME_MAX,
    SCHEMA_ONLY,
    check_expires_at,
    check_id,
    check_lsn,
    check_name,
    check_past_timestamp,
    format_timestamp,
    point_in_time,
)

BRANCH_PAGE_LIMIT = 1000


def _with_annotation(body: Any) -> Branch:
    # GET /branches/{id} answers the branch's annotation beside it; keep it in raw.
    raw = dict(body["branch"])
    if isinstance(body.get("annotation"), Mapping):
        raw["annotation"] = body["annotation"]
    return Branch.from_api(raw)


def delete_request(project_id: str, branch_id: str) -> ApiRequest[list[Operation]]:
    """``DELETE /projects/{project_id}/branches/{branch_id}``: its operations, ``[]`` on a 204.

    One description for :meth:`BranchesApi.delete` and the triggers' cleanup (sent with ``arequest``).
    """
    return ApiRequest(
        "DELETE",
        "/projects/{project_id}/branches/{branch_id}",
        {"project_id": project_id, "branch_id": branch_id},
        parse=ops_or_empty,
    )


def _branch_not_found(name_or_id: str, project_id: str) -> JamboBranchNotFound:
    return JamboBranchNotFound(
        f"branch {name_or_id!r} not found in project {project_id}: no branch has that id or exact name",
        name=name_or_id,
        project_id=project_id,
    )


class BranchesApi(ResourceGroup):
    """Branches of a project; ``project_id`` defaults to the connection's."""

    # --- reading ---------------------------------------------------------------------------------

    def get(self, branch_id: str, *, project_id: str | None = None) -> Branch:
        return self._call(
            "GET", "/branches/{branch_id}", project_id, {"branch_id": branch_id}, parse=_with_annotation
        )

    def find_by_name(self, name: str, *, project_id: str | None = None) -> Branch | None:
        """The branch named exactly ``name`` (the API's ``search`` is partial; we match exactly)."""
        check_name("name", name)
        return next((b for b in self.list(project_id, search=name) if b.name == name), None)

    def resolve(self, name_or_id: str, *, project_id: str | None = None) -> Branch:
        """A branch by id (``br-...``) or exact name; :class:`JamboBranchNotFound` when neither
        matches (the provider's lookup, not a 404)."""
        check_name("name_or_id", name_or_id)
        pid = self._hook.resolve_project_id(project_id)
        if name_or_id.startswith("br-") and ID_PATTERN.match(name_or_id):
            try:
                return self.get(name_or_id, project_id=pid)
            except JamboNotFoundError:
                pass  # a branch may be *named* like an id; fall back to the name
        branch = self.find_by_name(name_or_id, project_id=pid)
        if branch is None:
            raise _branch_not_found(name_or_id, pid)
        return branch

    def resolve_with_children(
        self, name_or_id: str, *, project_id: str | None = None
    ) -> tuple[Branch, builtins.list[Branch]]:
        """:meth:`resolve` and the branch's children, both from one listing of the project
        (what a delete needs to know before it is sent)."""
        check_name("name_or_id", name_or_id)
        pid = self._hook.resolve_project_id(project_id)
        branches = builtins.list(self.list(pid))
        # An id wins over a name, as in resolve.
        branch = next((b for b in branches if b.id == name_or_id), None) or next(
            (b for b in branches if b.name == name_or_id), None
        )
        if branch is None:
            raise _branch_not_found(name_or_id, pid)
        return branch, [b for b in branches if b.parent_id == branch.id]

    def get_default(self, project_id: str | None = None) -> Branch:
        pid = self._hook.resolve_project_id(project_id)
        branch = next((b for b in self.list(pid) if b.default), None)
        if branch is None:
            raise JamboLookupError(f"project {pid} has no default branch among its branches")
        return branch

    # --- creating --------------------------------------------------------------------------------

    def create(self, request: CreateBranchRequest, *, project_id: str | None = None) -> BranchCreation:
        """Create a branch (anonymized when ``request`` has masking rules), at most once even when
        a response is lost.

        If the response is lost (timeout, dropped connection, 5xx), the branch is looked up by name
        and adopted when it exists with the requested parent; only when it is not there is the
        create sent again. A 409 after such a re-send is our earlier attempt applied late: adopted.
        """
        hook = self._hook
        pid = hook.resolve_project_id(project_id)
        req = ApiRequest(
            "POST",
            "/projects/{project_id}/branch_anonymized"
            if request.anonymized
            else "/projects/{project_id}/branches",
            {"project_id": pid},
            json=request.body(),
            parse=BranchCreation.from_api,
        )
        name = request.name
        policy = hook.retry_policy
        resends = 0
        while True:
            try:
                created = hook.request(req)
                break
            except JamboConflictError:
                # Names are unique per project, so a re-sent create cannot make a second branch: a
                # 409 here means an earlier attempt of ours was applied after all (late). Adopt it.
                existing = self.find_by_name(name, project_id=pid) if resends and name else None
                if existing is None:
                    raise
            except (JamboTransportError, JamboServerError) as err:
                if not outcome_unknown(err):
                    raise
                if name is None:
                    hook.log.error("%s; the branch has no name to look it up by, so it is not re-sent", err)
                    raise
                hook.log.warning("%s: outcome unknown; looking branch %r up before any re-send", err, name)
                existing = self.find_by_name(name, project_id=pid)
                if existing is None:
                    resends += 1
                    if resends >= policy.max_attempts:
                        raise
                    wait = policy.backoff(resends)
                    hook.log.warning("Branch %r does not exist: re-sending the create in %.2f s", name, wait)
                    hook.sleep(wait)
                    continue
            self._check_adoptable(existing, request, pid)
            hook.log.info(
                "Branch %r (%s) was created by a request whose answer was lost: adopting it",
                name,
                existing.id,
            )
            return self._adopted(existing, pid, created=True)
        secret_masking.mask_secrets(created.roles, [c.uri for c in created.connection_uris])
        return created

    def get_or_create(
        self, request: CreateBranchRequest, *, project_id: str | None = None, look_first: bool = True
    ) -> BranchCreation:
        """The branch named ``request.name`` (``created=False``) or a new one; an existing branch
        must have the requested parent (or the default branch when none is given) or, for
        ``init_source="schema-only"``, be a schema-only root; else JamboBranchConflict.

        ``look_first=False`` sends the create first and looks the name up only on a 409 (names are
        unique in a project): one request instead of two where the name is most likely free (an
        operator's first try). A retry looks first: an earlier try's branch may still have
        operations in flight, and a create sent then would only meet the project's lock.
        """
        name = request.name
        if name is None:
            raise JamboConfigError("get_or_create needs a request with a name (to look the branch up by)")
        pid = self._hook.resolve_project_id(project_id)
        existing = self.find_by_name(name, project_id=pid) if look_first else None
        if existing is None:
            try:
                return self.create(request, project_id=pid)
            except JamboConflictError:
                # Taken meanwhile (another task, a retry of ours) or, unlooked, before: adopt it.
                existing = self.find_by_name(name, project_id=pid)
                if existing is None:
                    raise
        self._check_adoptable(existing, request, pid)
        return self._adopted(existing, pid, created=False)

    def _check_adoptable(self, branch: Branch, request: CreateBranchRequest, pid: str) -> None:
        """An existing branch may be adopted only if it is what the create asked for.

        A schema-only branch is a new root (the service records no parent), so it is matched by
        being such a root; any other branch by its parent (the default branch when none is given).
        The error names both parents and says what to do, for whoever shows it (the operator
        raises it unchanged).
        """
        if request.init_source == SCHEMA_ONLY:
            if branch.is_schema_only_root:
                return
            requested = "a schema-only root (no parent)"
        else:
            expected = request.parent_id or self.get_default(pid).id
            if branch.parent_id == expected:
                return
            requested = f"parent {self._label(expected, pid)}"
        if branch.parent_id is not None:
            actual = f"with parent {self._label(branch.parent_id, pid)}"
        elif branch.default:
            actual = "as the project's default branch (no parent)"
        else:
            actual = "as a schema-only root (no parent)" if branch.is_schema_only_root else "with no parent"
        raise JamboBranchConflict(
            f"branch {branch.name!r} ({branch.id}) already exists in project {pid} {actual}, "
            f"not the requested {requested}, so it is not adopted. Use another branch name, delete "
            "the existing branch, or set if_exists='fail' (JamboCreateBranchOperator) to fail "
            "whenever the name is taken"
        )

    def _label(self, branch_id: str, pid: str) -> str:
        """``'main' (br-…)`` for an error message; the bare id when the branch is gone."""
        try:
            branch = self.get(branch_id, project_id=pid)
        except JamboNotFoundError:
            return f"{branch_id} (deleted)"
        return f"{branch.name!r} ({branch.id})"

    def _adopted(self, branch: Branch, pid: str, *, created: bool) -> BranchCreation:
        """An existing branch as a creation result: its computes and its operations still in flight."""
        endpoints = ComputesApi(self._hook).list(pid, branch_id=branch.id)
        in_flight = OperationsApi(self._hook).pending_of_branch(branch.id, project_id=pid)
        return BranchCreation(branch=branch, endpoints=endpoints, operations=in_flight, created=created)

    # --- changing --------------------------------------------------------------------------------

    def update(
        self,
        branch_id: str,
        *,
        project_id: str | None = None,
        name: str | _Unset = UNSET,
        protected: bool | _Unset = UNSET,
        expires_at: datetime | str | _Unset | None = UNSET,
    ) -> Mutation[Branch]:
        """Rename, (un)protect, or set/clear (``expires_at=None``) the expiry of a branch."""
        branch: dict[str, Any] = {}
        if not isinstance(name, _Unset):
            branch["name"] = check_name("name", name)
        if not isinstance(protected, _Unset):
            branch["protected"] = bool(protected)
        if not isinstance(expires_at, _Unset):
            branch["expires_at"] = (
                None if expires_at is None else format_timestamp(check_expires_at("expires_at", expires_at))
            )
        if not branch:
            raise JamboConfigError("branches.update needs at least one of name, protected, expires_at")
        return self._call(
            "PATCH",
            "/branches/{branch_id}",
            project_id,
            {"branch_id": branch_id},
            json={"branch": branch},
            parse=mutation("branch", Branch.from_api),
        )

    def delete(self, branch_id: str, *, project_id: str | None = None) -> builtins.list[Operation]:
        """Delete a branch; its deletion's operations, ``[]`` when it was gone long ago.

        The API answers 204 for a branch that is already gone. That is also what a DELETE re-sent
        after a lost response gets, while the first attempt's ``suspend_compute``/``delete_timeline``
        still run: so on 204 the branch's unfinished operations are returned, for callers to wait on.
        """
        pid = self._hook.resolve_project_id(project_id)
        ops = self._hook.request(delete_request(pid, branch_id))
        return ops or OperationsApi(self._hook).pending_of_branch(branch_id, project_id=pid)

    def restore(
        self,
        branch_id: str,
        *,
        source_branch_id: str,
        source_lsn: str | None = None,
        source_timestamp: datetime | str | None = None,
        preserve_under_name: str | None = None,
        project_id: str | None = None,
    ) -> Mutation[Branch]:
        """Restore (reset) a branch from a source; reset to parent = ``source_branch_id=parent_id``."""
        body: dict[str, Any] = {"source_branch_id": check_id("source_branch_id", source_branch_id)}
        body.update(point_in_time("source", source_lsn, source_timestamp))
        if preserve_under_name is not None:
            body["preserve_under_name"] = check_name("preserve_under_name", preserve_under_name)
        if source_branch_id == branch_id and source_lsn is None and source_timestamp is None:
            raise JamboConfigError("restoring a branch from itself needs source_lsn or source_timestamp")
        return self._call(
            "POST",
            "/branches/{branch_id}/restore",
            project_id,
            {"branch_id": branch_id},
            json=body,
            parse=mutation("branch", Branch.from_api),
        )

    def set_default(self, branch_id: str, *, project_id: str | None = None) -> Mutation[Branch]:
        return self._call(
            "POST",
            "/branches/{branch_id}/set_as_default",
            project_id,
            {"branch_id": branch_id},
            # Setting the same default twice changes nothing: safe to re-send.
            idempotent=True,
            parse=mutation("branch", Branch.from_api),
        )

    # --- schema and connection -------------------------------------------------------------------

    def get_schema(
        self,
        branch_id: str,
        *,
        database: str,
        project_id: str | None = None,
        lsn: str | None = None,
        timestamp: datetime | str | None = None,
    ) -> str:
        """The branch's schema as SQL (``pg_dump --schema-only`` style)."""
        if lsn is not None and timestamp is not None:
            raise JamboConfigError("give either lsn or timestamp, not both")
        query = {
            "db_name": check_name("database", database),
            "lsn": check_lsn("lsn", lsn) if lsn is not None else None,
            "timestamp": (
                format_timestamp(check_past_timestamp("timestamp", timestamp))
                if timestamp is not None
                else None
            ),
        }
        return self._call(
            "GET",
            "/branches/{branch_id}/schema",
            project_id,
            {"branch_id": branch_id},
            query=query,
            parse=lambda body: str((body or {}).get("sql") or ""),
        )

    def compare_schema(
        self,
        branch_id: str,
        *,
        database: str,
        base_branch_id: str | None = None,
        project_id: str | None = None,
    ) -> str:
        """A unified diff of the schema against ``base_branch_id`` (default: the parent)."""
        query = {
            "db_name": check_name("database", database),
            "base_branch_id": check_id("base_branch_id", base_branch_id) if base_branch_id else None,
        }
        return self._call(
            "GET",
            "/branches/{branch_id}/compare_schema",
            project_id,
            {"branch_id": branch_id},
            query=query,
            parse=lambda body: str((body or {}).get("diff") or ""),
        )

    def connection_uri(
        self,
        *,
        branch_id: str,
        database: str,
        role: str,
        endpoint_id: str | None = None,
        pooled: bool = False,
        project_id: str | None = None,
    ) -> str:
        """A ``postgresql://`` URI for the branch (direct or pooled); masked before it is returned."""
        query = {
            "branch_id": check_id("branch_id", branch_id),
            "database_name": check_name("database", database),
            "role_name": check_name("role", role, ROLE_NAME_MAX),
            "endpoint_id": check_id("endpoint_id", endpoint_id) if endpoint_id else None,
            "pooled": bool(pooled),
        }
        uri: str = self._call(
            "GET", "/connection_uri", project_id, query=query, parse=lambda body: str(body["uri"])
        )
        secret_masking.mask_secrets(uris=[uri])
        return uri

    # Last: a method named ``list`` would shadow the builtin in the annotations below it.
    def list(self, project_id: str | None = None, *, search: str | None = None) -> Iterator[Branch]:
        """Every branch of the project, following ``pagination.next`` across pages."""
        path_params = {"project_id": self._hook.resolve_project_id(project_id)}
        return self._pages(
            "/projects/{project_id}/branches",
            path_params,
            "branches",
            BRANCH_PAGE_LIMIT,
            Branch.from_api,
            search=search,
        )
