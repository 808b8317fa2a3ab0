"""JamboHook: the one way the provider talks to the Jambo API.

Construction is free (no connection lookup, no I/O), so operators may build hooks anywhere and DAG
parsing never touches the metadata database or the network. The connection is read on the first
request (``load()``, or ``aload()`` with ``get_async_connection`` on the async path), the API key
is registered with the secrets masker, and one ``httpx.Client``/``httpx.AsyncClient`` is kept per
hook for keep-alive. Every call is an :class:`ApiRequest` sent by :meth:`request` or
:meth:`arequest`, with the retry rules of ``retry.py``.
"""

from __future__ import annotations

import asyncio
import json
import platform
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

import httpx
from airflow.providers.common.compat.sdk import AirflowNotFoundException, BaseHook, mask_secret

from airflow_provider_jambo import __version__
from airflow_provider_jambo.exceptions import (
    JamboBranchConflict,
    JamboBranchNotFound,
    JamboConfigError,
    JamboConflictError,
    JamboError,
    JamboLookupError,
    JamboNotFoundError,
    JamboServerError,
    JamboTransportError,
)
from airflow_provider_jambo.get_provider_info import get_provider_info
from airflow_provider_jambo.hooks.anonymization import AnonymizedBranchesMixin
from airflow_provider_jambo.hooks.budget import (
    DEFAULT_REQUESTS_PER_MINUTE,
    RequestBudget,
    budget_for,
    check_requests_per_minute,
)
from airflow_provider_jambo.hooks.client import (
    DEFAULT_BASE_URL,
    ApiRequest,
    check_api_key,
    client_kwargs,
    normalize_base_url,
    page_of,
    send_async,
    send_sync,
)
from airflow_provider_jambo.hooks.poller import shared_poller
from airflow_provider_jambo.hooks.retry import (
    RetryPolicy,
    acall_with_retries,
    call_with_retries,
    outcome_unknown,
)
from airflow_provider_jambo.hooks.waiting import (
    PollPolicy,
    WaitResult,
    list_operations_request,
    read_steps,
    resolve_deadline,
    run_sync,
    wait_steps,
)
from airflow_provider_jambo.masking import MaskingRule
from airflow_provider_jambo.models import (
    UNSET,
    Branch,
    BranchCreation,
    Database,
    Endpoint,
    Mutation,
    Operation,
    Project,
    ProjectCreation,
    Role,
    _Unset,
    parse_operations,
)
from airflow_provider_jambo.rules import (
    DEFAULT_CONN_ID,
    ENDPOINT_TYPES,
    ID_PATTERN,
    ROLE_NAME_MAX,
    SCHEMA_ONLY,
    branch_create_body,
    check_choice,
    check_expires_at,
    check_id,
    check_lsn,
    check_name,
    check_past_timestamp,
    check_poll_interval,
    check_timeout,
    endpoint_settings,
    format_timestamp,
    point_in_time,
    seconds,
)

T = TypeVar("T")

DEFAULT_TIMEOUT = 30.0
MAX_CONNECT_TIMEOUT = 10.0
BRANCH_PAGE_LIMIT = 1000
PROJECT_PAGE_LIMIT = 100
OPERATION_PAGE_LIMIT = 100


def _user_agent() -> str:
    try:
        from airflow import __version__ as airflow_version
    except ImportError:  # pragma: no cover - Airflow is a dependency
        airflow_version = "unknown"
    return (
        f"airflow-provider-jambo/{__version__} apache-airflow/{airflow_version} "
        f"python/{platform.python_version()} httpx/{httpx.__version__}"
    )


@dataclass(frozen=True)
class JamboSettings:
    """What the connection says, validated. The key is hidden from repr."""

    conn_id: str
    base_url: str
    api_key: str = field(repr=False)
    project_id: str | None = None
    org_id: str | None = None
    timeout: float = DEFAULT_TIMEOUT
    retry_policy: RetryPolicy = field(default_factory=RetryPolicy)
    requests_per_minute: float = DEFAULT_REQUESTS_PER_MINUTE

    @property
    def budget(self) -> RequestBudget:
        """The process's request budget for this account (shared by every hook on it)."""
        return budget_for(self.base_url, self.api_key, self.requests_per_minute)

    @classmethod
    def from_connection(cls, conn: Any, extras: Mapping[str, Any], conn_id: str = "") -> JamboSettings:
        conn_id = conn_id or str(getattr(conn, "conn_id", "") or "")
        # Before anything else: another type's password must never travel as a bearer token.
        conn_type = getattr(conn, "conn_type", None)
        if conn_type != JamboHook.conn_type:
            raise JamboConfigError(
                f"connection {conn_id!r} has conn_type {conn_type!r}; the Jambo hook needs a connection "
                f"of type {JamboHook.conn_type!r} (its password is sent as the API key)"
            )
        # A key pasted with a trailing newline is still the key.
        api_key = (conn.password or "").strip()
        if not api_key:
            raise JamboConfigError(
                f"connection {conn_id!r} has no API key: put the Jambo API key in its password field "
                "('API key' in the connection form)"
            )
        check_api_key(api_key, conn_id=conn_id)
        base_url = normalize_base_url(conn.host, port=conn.port, schema=conn.schema, conn_id=conn_id)
        project_id = extras.get("project_id") or None
        if project_id is not None:
            try:
                check_id("project_id", project_id)
            except JamboConfigError as err:
                raise JamboConfigError(f"connection {conn_id!r}: extra {err}") from None
        timeout = DEFAULT_TIMEOUT
        if extras.get("timeout") not in (None, ""):
            try:
                timeout = seconds("extra timeout", extras["timeout"], allow_text=True)
            except JamboConfigError as err:
                raise JamboConfigError(f"connection {conn_id!r}: {err}") from None
        requests_per_minute = DEFAULT_REQUESTS_PER_MINUTE
        if extras.get("requests_per_minute") not in (None, ""):
            requests_per_minute = check_requests_per_minute(extras["requests_per_minute"], conn_id=conn_id)
        return cls(
            requests_per_minute=requests_per_minute,
            conn_id=conn_id,
            base_url=base_url,
            api_key=api_key,
            project_id=project_id,
            org_id=extras.get("org_id") or None,
            timeout=timeout,
            retry_policy=RetryPolicy.from_connection_extras(extras, conn_id),
        )


def _extras(conn: Any, conn_id: str) -> Mapping[str, Any]:
    """The connection's extras; refused when they are not a JSON object (Airflow would log a
    traceback, ignore them and let the call go out without them)."""
    text = getattr(conn, "extra", None)
    if not text:
        return {}
    try:
        extras = json.loads(text)
    except ValueError:
        extras = None
    if not isinstance(extras, Mapping):
        raise JamboConfigError(
            f"connection {conn_id!r}: extra must be a JSON object such as "
            '{"project_id": "old-violet-32930710"}; it is not (its text is not shown, it may hold secrets)'
        )
    return extras


def _mask_secrets(roles: Sequence[Role] = (), uris: Sequence[str] = ()) -> None:
    """Register role passwords and connection URIs (and the passwords inside them, raw and
    percent-decoded) with the secrets masker before they are returned to anyone."""
    for role in roles:
        if role.password:
            mask_secret(role.password)
    for uri in uris:
        try:
            password = urlsplit(uri).password
        except ValueError:
            password = None
        if password:
            mask_secret(password)
            mask_secret(unquote(password))
        mask_secret(uri)


# --- reading answers: the resource under its key, a list of them, or it plus its operations ----


def _one(key: str, parse: Callable[[Mapping[str, Any]], T]) -> Callable[[Any], T]:
    return lambda body: parse(body[key])


def _many(key: str, parse: Callable[[Mapping[str, Any]], T]) -> Callable[[Any], list[T]]:
    return lambda body: [parse(item) for item in body.get(key) or []]


def _mutation(key: str, parse: Callable[[Mapping[str, Any]], T]) -> Callable[[Any], Mutation[T]]:
    return lambda body: Mutation(parse(body[key]), parse_operations(body))


def _ops_or_empty(body: Any) -> list[Operation]:
    """DELETE answers 200 with operations, or 204 (empty) when the resource is already gone."""
    return parse_operations(body) if body else []


def _with_annotation(body: Any) -> Branch:
    # GET /branches/{id} answers the branch's annotation beside it; keep it in raw.
    raw = dict(body["branch"])
    if isinstance(body.get("annotation"), Mapping):
        raw["annotation"] = body["annotation"]
    return Branch.from_api(raw)


# --- paths below /projects/{project_id} of resources addressed by more than their id ------------

_ENDPOINT = "/endpoints/{endpoint_id}"
_DATABASE = "/branches/{branch_id}/databases/{database_name}"
_ROLE = "/branches/{branch_id}/roles/{role_name}"


def _known_and_ids(operations: Sequence[str | Operation]) -> tuple[list[Operation], list[str]]:
    """A wait's operations as given (ids, or the ``Operation`` objects a call returned): those
    known, and every id."""
    known = [op for op in operations if isinstance(op, Operation)]
    return known, [op.id if isinstance(op, Operation) else op for op in operations]


def _branch_not_found(name_or_id: str, project_id: str) -> JamboBranchNotFound:
    return JamboBranchNotFound(
        f"branch {name_or_id!r} not found in project {project_id}: no branch has that id or exact name",
        name=name_or_id,
        project_id=project_id,
    )


def _database_ids(branch_id: str, name: str) -> dict[str, str]:
    return {"branch_id": branch_id, "database_name": check_name("name", name)}


def _role_ids(branch_id: str, name: str) -> dict[str, str]:
    return {"branch_id": branch_id, "role_name": check_name("name", name, ROLE_NAME_MAX)}


class JamboHook(AnonymizedBranchesMixin, BaseHook):
    """Interact with the Jambo serverless-Postgres API.

    Anonymized branches (create, masking rules, anonymize, status): ``hooks/anonymization.py``.

    :param jambo_conn_id: connection of type ``jambo`` (password: API key; host: API base URL,
        empty for the public one; extras ``project_id``, ``org_id``, ``timeout``, ``max_retries``,
        ``retry_max_wait``, ``requests_per_minute`` (this process's budget for the account,
        default 560 of the service's 700; see ``hooks/budget.py``)).
    :param retry_policy: overrides the connection's retry settings (triggers carry one).
    :param timeout: overrides the connection's read timeout in seconds.
    """

    conn_name_attr = "jambo_conn_id"
    default_conn_name = DEFAULT_CONN_ID
    conn_type = "jambo"
    hook_name = "Jambo"

    def __init__(
        self,
        jambo_conn_id: str = default_conn_name,
        *,
        retry_policy: RetryPolicy | None = None,
        timeout: float | None = None,
    ) -> None:
        super().__init__()
        self.jambo_conn_id = jambo_conn_id
        self._retry_policy_override = retry_policy
        self._timeout_override = timeout
        self._settings: JamboSettings | None = None
        self._client: httpx.Client | None = None
        self._aclient: httpx.AsyncClient | None = None
        self._aclient_loop: asyncio.AbstractEventLoop | None = None
        # Seams for tests and for callers with their own pacing; the rules do not depend on them.
        self.sleep: Callable[[float], None] = time.sleep
        self.asleep: Callable[[float], Any] = asyncio.sleep
        self.clock: Callable[[], float] = time.time

    def __repr__(self) -> str:
        base = self._settings.base_url if self._settings else "<not loaded>"
        return f"JamboHook(jambo_conn_id={self.jambo_conn_id!r}, base_url={base!r})"

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """Connection form hints (also declared in ``get_provider_info`` for Airflow 3.2+)."""
        conn_type = get_provider_info()["connection-types"][0]
        return dict(conn_type["ui-field-behaviour"])

    # --- connection ----------------------------------------------------------------------------

    def _adopt_settings(self, conn: Any, extras: Mapping[str, Any]) -> JamboSettings:
        settings = JamboSettings.from_connection(conn, extras, self.jambo_conn_id)
        mask_secret(settings.api_key)
        self._settings = settings
        return settings

    def load(self) -> JamboSettings:
        """Read and validate the connection (once); raises JamboConfigError when it is unusable."""
        if self._settings is None:
            try:
                conn = self.get_connection(self.jambo_conn_id)
            except AirflowNotFoundException as err:
                raise JamboConfigError(
                    f"connection {self.jambo_conn_id!r} is not defined (create a 'jambo' connection "
                    f"or set AIRFLOW_CONN_{self.jambo_conn_id.upper()})"
                ) from err
            self._adopt_settings(conn, _extras(conn, self.jambo_conn_id))
        assert self._settings is not None
        return self._settings

    async def aload(self) -> JamboSettings:
        """Like :meth:`load`, without blocking the event loop (for triggers)."""
        if self._settings is None:
            from airflow.providers.common.compat.connection import (
                get_async_connection,
                get_async_extra_dejson,
            )

            try:
                conn = await get_async_connection(self.jambo_conn_id, hook=self)
            except AirflowNotFoundException as err:
                raise JamboConfigError(f"connection {self.jambo_conn_id!r} is not defined") from err
            _extras(conn, self.jambo_conn_id)  # refuses extras that are not a JSON object
            self._adopt_settings(conn, await get_async_extra_dejson(conn))
        assert self._settings is not None
        return self._settings

    @property
    def settings(self) -> JamboSettings:
        return self.load()

    @property
    def project_id(self) -> str:
        """The connection's default project (extra ``project_id``)."""
        return self._default_project(self.load())

    def _default_project(self, settings: JamboSettings) -> str:
        if not settings.project_id:
            raise JamboConfigError(
                f"no project_id given and connection {self.jambo_conn_id!r} has no 'project_id' extra"
            )
        return settings.project_id

    def _pid(self, project_id: str | None) -> str:
        return check_id("project_id", project_id) if project_id is not None else self.project_id

    @property
    def retry_policy(self) -> RetryPolicy:
        return self._retry_policy_override or self.load().retry_policy

    def _client_kwargs(self, settings: JamboSettings) -> dict[str, Any]:
        timeout = self._timeout_override or settings.timeout
        return client_kwargs(
            settings.base_url,
            settings.api_key,
            timeout=timeout,
            connect_timeout=min(timeout, MAX_CONNECT_TIMEOUT),
            user_agent=_user_agent(),
        )

    def get_conn(self) -> httpx.Client:
        """The hook's reused sync client."""
        if self._client is None:
            self._client = httpx.Client(**self._client_kwargs(self.load()))
        return self._client

    async def aget_conn(self) -> httpx.AsyncClient:
        """The hook's reused async client (one per event loop)."""
        settings = await self.aload()
        loop = asyncio.get_running_loop()
        if self._aclient is None or self._aclient_loop is not loop:
            # An AsyncClient's pool belongs to the loop that created it.
            self._aclient = httpx.AsyncClient(**self._client_kwargs(settings))
            self._aclient_loop = loop
        return self._aclient

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    async def aclose(self) -> None:
        if self._aclient is not None:
            await self._aclient.aclose()
            self._aclient = None
        self.close()

    def __enter__(self) -> JamboHook:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- the one sending path each -------------------------------------------------------------

    def request(self, req: ApiRequest[T], *, retry_policy: RetryPolicy | None = None) -> T:
        """Send ``req`` with the sync client, retrying per the policy; returns the parsed result."""
        client = self.get_conn()
        settings = self.load()
        secrets = (settings.api_key,)
        ticket = settings.budget.ticket()
        return call_with_retries(
            retry_policy or self.retry_policy,
            req,
            lambda: send_sync(client, req, secrets=secrets, ticket=ticket, sleep=self.sleep),
            sleep=self.sleep,
            logger=self.log,
        )

    async def arequest(self, req: ApiRequest[T], *, retry_policy: RetryPolicy | None = None) -> T:
        """Send ``req`` with the async client; same rules as :meth:`request`."""
        client = await self.aget_conn()
        settings = await self.aload()
        secrets = (settings.api_key,)
        ticket = settings.budget.ticket()
        return await acall_with_retries(
            retry_policy or self._retry_policy_override or settings.retry_policy,
            req,
            lambda: send_async(client, req, secrets=secrets, ticket=ticket, sleep=self.asleep),
            sleep=self.asleep,
            logger=self.log,
        )

    def _call(
        self,
        method: str,
        path: str,
        project_id: str | None,
        ids: Mapping[str, str] | None = None,
        *,
        parse: Callable[[Any], T],
        **request_fields: Any,
    ) -> T:
        """Send ``method /projects/{project_id}<path>`` and parse the answer.

        ``project_id`` defaults to the connection's; ``ids`` fill the rest of the path template;
        ``request_fields`` are the other :class:`ApiRequest` fields (query, json, idempotent).
        """
        path_params = {"project_id": self._pid(project_id), **(ids or {})}
        return self.request(
            ApiRequest(method, "/projects/{project_id}" + path, path_params, parse=parse, **request_fields)
        )

    def _pages(
        self,
        path: str,
        path_params: Mapping[str, str],
        key: str,
        limit: int,
        parse: Callable[[Mapping[str, Any]], T],
        **query: Any,
    ) -> Iterator[T]:
        """Every item of a listing (``key`` in each page), following either pagination style."""
        cursor: str | None = None
        seen: set[str] = set()
        while True:
            req: ApiRequest[Any] = ApiRequest(
                "GET", path, path_params, query={"limit": limit, "cursor": cursor, **query}
            )
            items, cursor = page_of(self.request(req), key, limit)
            yield from (parse(item) for item in items)
            if cursor is None or cursor in seen:
                return
            seen.add(cursor)

    # --- projects ------------------------------------------------------------------------------

    def list_projects(self, *, search: str | None = None) -> Iterator[Project]:
        org_id = self.load().org_id
        return self._pages(
            "/projects", {}, "projects", PROJECT_PAGE_LIMIT, Project.from_api, search=search, org_id=org_id
        )

    def get_project(self, project_id: str | None = None) -> Project:
        return self._call("GET", "", project_id, parse=_one("project", Project.from_api))

    def create_project(self, name: str | None = None, region_id: str | None = None) -> ProjectCreation:
        """Create a project (not re-sent after an unknown outcome: project names are not unique)."""
        project: dict[str, Any] = {}
        if name is not None:
            project["name"] = check_name("name", name)
        if region_id is not None:
            project["region_id"] = check_name("region_id", region_id)
        if self.load().org_id:
            project["org_id"] = self.load().org_id
        created = self.request(
            ApiRequest("POST", "/projects", json={"project": project}, parse=ProjectCreation.from_api)
        )
        _mask_secrets(created.roles, [c.uri for c in created.connection_uris])
        return created

    # --- branches ------------------------------------------------------------------------------

    def list_branches(self, project_id: str | None = None, *, search: str | None = None) -> Iterator[Branch]:
        """Every branch of the project, following ``pagination.next`` across pages."""
        path_params = {"project_id": self._pid(project_id)}
        return self._pages(
            "/projects/{project_id}/branches",
            path_params,
            "branches",
            BRANCH_PAGE_LIMIT,
            Branch.from_api,
            search=search,
        )

    def get_branch(self, branch_id: str, *, project_id: str | None = None) -> Branch:
        return self._call(
            "GET", "/branches/{branch_id}", project_id, {"branch_id": branch_id}, parse=_with_annotation
        )

    def find_branch_by_name(self, name: str, *, project_id: str | None = None) -> Branch | None:
        """The branch named exactly ``name`` (the API's ``search`` is partial; we match exactly)."""
        check_name("name", name)
        return next((b for b in self.list_branches(project_id, search=name) if b.name == name), None)

    def resolve_branch(self, name_or_id: str, *, project_id: str | None = None) -> Branch:
        """A branch by id (``br-...``) or exact name; :class:`JamboBranchNotFound` when neither
        matches (the provider's lookup, not a 404)."""
        check_name("name_or_id", name_or_id)
        pid = self._pid(project_id)
        if name_or_id.startswith("br-") and ID_PATTERN.match(name_or_id):
            try:
                return self.get_branch(name_or_id, project_id=pid)
            except JamboNotFoundError:
                pass  # a branch may be *named* like an id; fall back to the name
        branch = self.find_branch_by_name(name_or_id, project_id=pid)
        if branch is None:
            raise _branch_not_found(name_or_id, pid)
        return branch

    def resolve_branch_with_children(
        self, name_or_id: str, *, project_id: str | None = None
    ) -> tuple[Branch, list[Branch]]:
        """:meth:`resolve_branch` and the branch's children, both from one listing of the project
        (what a delete needs to know before it is sent)."""
        check_name("name_or_id", name_or_id)
        pid = self._pid(project_id)
        branches = list(self.list_branches(pid))
        # An id wins over a name, as in resolve_branch.
        branch = next((b for b in branches if b.id == name_or_id), None) or next(
            (b for b in branches if b.name == name_or_id), None
        )
        if branch is None:
            raise _branch_not_found(name_or_id, pid)
        return branch, [b for b in branches if b.parent_id == branch.id]

    def get_default_branch(self, project_id: str | None = None) -> Branch:
        pid = self._pid(project_id)
        branch = next((b for b in self.list_branches(pid) if b.default), None)
        if branch is None:
            raise JamboLookupError(f"project {pid} has no default branch among its branches")
        return branch

    def create_branch(
        self,
        project_id: str | None = None,
        *,
        name: str | None = None,
        parent_id: str | None = None,
        parent_lsn: str | None = None,
        parent_timestamp: datetime | str | None = None,
        init_source: str | None = None,
        protected: bool | None = None,
        expires_at: datetime | str | None = None,
        endpoints: Sequence[Mapping[str, Any]] | None = None,
        annotations: Mapping[str, str] | None = None,
    ) -> BranchCreation:
        """Create a branch, at most once even when a response is lost (:meth:`_create_branch_once`)."""
        pid = self._pid(project_id)
        body = branch_create_body(
            name,
            parent_id,
            parent_lsn,
            parent_timestamp,
            init_source,
            protected,
            expires_at,
            endpoints,
            annotations,
        )
        req = ApiRequest(
            "POST",
            "/projects/{project_id}/branches",
            {"project_id": pid},
            json=body,
            parse=BranchCreation.from_api,
        )
        return self._create_branch_once(req, name=name, parent_id=parent_id, init_source=init_source, pid=pid)

    def _create_branch_once(
        self,
        req: ApiRequest[BranchCreation],
        *,
        name: str | None,
        parent_id: str | None,
        init_source: str | None,
        pid: str,
    ) -> BranchCreation:
        """Send a branch create (plain or anonymized) so that it makes at most one branch.

        If the response is lost (timeout, dropped connection, 5xx), the branch is looked up by name
        and adopted when it exists with the requested parent; only when it is not there is the
        create sent again. A 409 after such a re-send is our earlier attempt applied late: adopted.
        """
        policy = self.retry_policy
        resends = 0
        while True:
            try:
                created = self.request(req)
                break
            except JamboConflictError:
                # Names are unique per project, so a re-sent create cannot make a second branch: a
                # 409 here means an earlier attempt of ours was applied after all (late). Adopt it.
                existing = self.find_branch_by_name(name, project_id=pid) if resends and name else None
                if existing is None:
                    raise
            except (JamboTransportError, JamboServerError) as err:
                if not outcome_unknown(err):
                    raise
                if name is None:
                    self.log.error("%s; the branch has no name to look it up by, so it is not re-sent", err)
                    raise
                self.log.warning("%s: outcome unknown; looking branch %r up before any re-send", err, name)
                existing = self.find_branch_by_name(name, project_id=pid)
                if existing is None:
                    resends += 1
                    if resends >= policy.max_attempts:
                        raise
                    wait = policy.backoff(resends)
                    self.log.warning("Branch %r does not exist: re-sending the create in %.2f s", name, wait)
                    self.sleep(wait)
                    continue
            self._check_parent(existing, parent_id, init_source, pid)
            self.log.info(
                "Branch %r (%s) was created by a request whose answer was lost: adopting it",
                name,
                existing.id,
            )
            return self._adopted(existing, pid, created=True)
        _mask_secrets(created.roles, [c.uri for c in created.connection_uris])
        return created

    def get_or_create_branch(
        self,
        name: str,
        *,
        project_id: str | None = None,
        parent_id: str | None = None,
        look_first: bool = True,
        **kwargs: Any,
    ) -> BranchCreation:
        """The branch named ``name`` (``created=False``) or a new one; an existing branch must have
        the requested parent (or the default branch when none is given) or, for
        ``init_source="schema-only"``, be a schema-only root; else JamboBranchConflict.

        ``look_first=False`` sends the create first and looks the name up only on a 409 (names are
        unique in a project): one request instead of two where the name is most likely free (an
        operator's first try). A retry looks first: an earlier try's branch may still have
        operations in flight, and a create sent then would only meet the project's lock.
        """
        # Every argument is checked before the create, so bad input sends nothing at all.
        branch_create_body(
            check_name("name", name),
            parent_id,
            kwargs.get("parent_lsn"),
            kwargs.get("parent_timestamp"),
            kwargs.get("init_source"),
            kwargs.get("protected"),
            kwargs.get("expires_at"),
            kwargs.get("endpoints"),
            kwargs.get("annotations"),
        )
        pid = self._pid(project_id)
        existing = self.find_branch_by_name(name, project_id=pid) if look_first else None
        if existing is None:
            try:
                return self.create_branch(pid, name=name, parent_id=parent_id, **kwargs)
            except JamboConflictError:
                # Taken meanwhile (another task, a retry of ours) or, unlooked, before: adopt it.
                existing = self.find_branch_by_name(name, project_id=pid)
                if existing is None:
                    raise
        self._check_parent(existing, parent_id, kwargs.get("init_source"), pid)
        return self._adopted(existing, pid, created=False)

    def _check_parent(self, branch: Branch, parent_id: str | None, init_source: str | None, pid: str) -> None:
        """An existing branch may be adopted only if it is what the create asked for.

        A schema-only branch is a new root (the service records no parent), so it is matched by
        being such a root; any other branch by its parent (the default branch when none is given).
        The error names both parents and says what to do, for whoever shows it (the operator
        raises it unchanged).
        """
        if init_source == SCHEMA_ONLY:
            if branch.is_schema_only_root:
                return
            requested = "a schema-only root (no parent)"
        else:
            expected = parent_id or self.get_default_branch(pid).id
            if branch.parent_id == expected:
                return
            requested = f"parent {self._branch_label(expected, pid)}"
        if branch.parent_id is not None:
            actual = f"with parent {self._branch_label(branch.parent_id, pid)}"
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

    def _branch_label(self, branch_id: str, pid: str) -> str:
        """``'main' (br-…)`` for an error message; the bare id when the branch is gone."""
        try:
            branch = self.get_branch(branch_id, project_id=pid)
        except JamboNotFoundError:
            return f"{branch_id} (deleted)"
        return f"{branch.name!r} ({branch.id})"

    def _adopted(self, branch: Branch, pid: str, *, created: bool) -> BranchCreation:
        """An existing branch as a creation result: its endpoints and its operations still in flight."""
        endpoints = self.list_endpoints(pid, branch_id=branch.id)
        in_flight = self._unfinished_branch_operations(pid, branch.id)
        return BranchCreation(branch=branch, endpoints=endpoints, operations=in_flight, created=created)

    def _unfinished_branch_operations(self, pid: str, branch_id: str) -> list[Operation]:
        """The branch's pending operations on the newest page (``Operation.is_pending``)."""
        ops = parse_operations(self.request(list_operations_request(pid, limit=OPERATION_PAGE_LIMIT)))
        return [op for op in ops if op.branch_id == branch_id and op.is_pending]

    def update_branch(
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
            raise JamboConfigError("update_branch needs at least one of name, protected, expires_at")
        return self._call(
            "PATCH",
            "/branches/{branch_id}",
            project_id,
            {"branch_id": branch_id},
            json={"branch": branch},
            parse=_mutation("branch", Branch.from_api),
        )

    def delete_branch(self, branch_id: str, *, project_id: str | None = None) -> list[Operation]:
        """Delete a branch; its deletion's operations, ``[]`` when it was gone long ago.

        The API answers 204 for a branch that is already gone. That is also what a DELETE re-sent
        after a lost response gets, while the first attempt's ``suspend_compute``/``delete_timeline``
        still run: so on 204 the branch's unfinished operations are returned, for callers to wait on.
        """
        pid = self._pid(project_id)
        ops: list[Operation] = self._call(
            "DELETE", "/branches/{branch_id}", pid, {"branch_id": branch_id}, parse=_ops_or_empty
        )
        return ops or self._unfinished_branch_operations(pid, branch_id)

    def restore_branch(
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
            parse=_mutation("branch", Branch.from_api),
        )

    def set_default_branch(self, branch_id: str, *, project_id: str | None = None) -> Mutation[Branch]:
        return self._call(
            "POST",
            "/branches/{branch_id}/set_as_default",
            project_id,
            {"branch_id": branch_id},
            # Setting the same default twice changes nothing: safe to re-send.
            idempotent=True,
            parse=_mutation("branch", Branch.from_api),
        )

    def get_branch_schema(
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

    def compare_branch_schema(
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

    # --- endpoints (computes) ------------------------------------------------------------------

    def list_endpoints(
        self, project_id: str | None = None, *, branch_id: str | None = None
    ) -> list[Endpoint]:
        """The project's endpoints, or only those of ``branch_id``."""
        parse = _many("endpoints", Endpoint.from_api)
        if branch_id is None:
            return self._call("GET", "/endpoints", project_id, parse=parse)
        return self._call(
            "GET", "/branches/{branch_id}/endpoints", project_id, {"branch_id": branch_id}, parse=parse
        )

    def get_endpoint(self, endpoint_id: str, *, project_id: str | None = None) -> Endpoint:
        return self._call(
            "GET",
            _ENDPOINT,
            project_id,
            {"endpoint_id": endpoint_id},
            parse=_one("endpoint", Endpoint.from_api),
        )

    def create_endpoint(
        self,
        branch_id: str,
        *,
        project_id: str | None = None,
        type: str = "read_write",
        min_cu: float | None = None,
        max_cu: float | None = None,
        suspend_timeout_seconds: int | None = None,
    ) -> Mutation[Endpoint]:
        endpoint = {
            "branch_id": check_id("branch_id", branch_id),
            "type": check_choice("type", type, ENDPOINT_TYPES),
            **endpoint_settings(min_cu, max_cu, suspend_timeout_seconds),
        }
        return self._call(
            "POST",
            "/endpoints",
            project_id,
            json={"endpoint": endpoint},
            parse=_mutation("endpoint", Endpoint.from_api),
        )

    def update_endpoint(
        self,
        endpoint_id: str,
        *,
        project_id: str | None = None,
        min_cu: float | None = None,
        max_cu: float | None = None,
        suspend_timeout_seconds: int | None = None,
    ) -> Mutation[Endpoint]:
        endpoint = endpoint_settings(min_cu, max_cu, suspend_timeout_seconds)
        if not endpoint:
            raise JamboConfigError(
                "update_endpoint needs at least one of min_cu, max_cu, suspend_timeout_seconds"
            )
        return self._call(
            "PATCH",
            _ENDPOINT,
            project_id,
            {"endpoint_id": endpoint_id},
            json={"endpoint": endpoint},
            # Setting the same limits again gives the same state.
            idempotent=True,
            parse=_mutation("endpoint", Endpoint.from_api),
        )

    def delete_endpoint(self, endpoint_id: str, *, project_id: str | None = None) -> list[Operation]:
        """Delete a compute; ``[]`` when it is already gone."""
        return self._call("DELETE", _ENDPOINT, project_id, {"endpoint_id": endpoint_id}, parse=_ops_or_empty)

    def _endpoint_action(self, action: str, endpoint_id: str, project_id: str | None) -> Mutation[Endpoint]:
        return self._call(
            "POST",
            f"{_ENDPOINT}/{action}",
            project_id,
            {"endpoint_id": endpoint_id},
            parse=_mutation("endpoint", Endpoint.from_api),
        )

    def start_endpoint(self, endpoint_id: str, *, project_id: str | None = None) -> Mutation[Endpoint]:
        return self._endpoint_action("start", endpoint_id, project_id)

    def suspend_endpoint(self, endpoint_id: str, *, project_id: str | None = None) -> Mutation[Endpoint]:
        return self._endpoint_action("suspend", endpoint_id, project_id)

    def restart_endpoint(self, endpoint_id: str, *, project_id: str | None = None) -> Mutation[Endpoint]:
        return self._endpoint_action("restart", endpoint_id, project_id)

    # --- databases and roles of a branch -------------------------------------------------------

    def list_databases(self, branch_id: str, *, project_id: str | None = None) -> list[Database]:
        return self._call(
            "GET",
            "/branches/{branch_id}/databases",
            project_id,
            {"branch_id": branch_id},
            parse=_many("databases", Database.from_api),
        )

    def get_database(self, branch_id: str, name: str, *, project_id: str | None = None) -> Database:
        return self._call(
            "GET",
            _DATABASE,
            project_id,
            _database_ids(branch_id, name),
            parse=_one("database", Database.from_api),
        )

    def create_database(
        self, branch_id: str, name: str, *, owner_name: str, project_id: str | None = None
    ) -> Mutation[Database]:
        body = {
            "database": {
                "name": check_name("name", name),
                "owner_name": check_name("owner_name", owner_name),
            }
        }
        return self._call(
            "POST",
            "/branches/{branch_id}/databases",
            project_id,
            {"branch_id": branch_id},
            json=body,
            parse=_mutation("database", Database.from_api),
        )

    def delete_database(self, branch_id: str, name: str, *, project_id: str | None = None) -> list[Operation]:
        return self._call(
            "DELETE", _DATABASE, project_id, _database_ids(branch_id, name), parse=_ops_or_empty
        )

    def list_roles(self, branch_id: str, *, project_id: str | None = None) -> list[Role]:
        return self._call(
            "GET",
            "/branches/{branch_id}/roles",
            project_id,
            {"branch_id": branch_id},
            parse=_many("roles", Role.from_api),
        )

    def get_role(self, branch_id: str, name: str, *, project_id: str | None = None) -> Role:
        return self._call(
            "GET", _ROLE, project_id, _role_ids(branch_id, name), parse=_one("role", Role.from_api)
        )

    def create_role(
        self, branch_id: str, name: str, *, no_login: bool = False, project_id: str | None = None
    ) -> Mutation[Role]:
        """Create a role; its password (when returned) is registered with the secrets masker."""
        body: dict[str, Any] = {"role": {"name": check_name("name", name, ROLE_NAME_MAX)}}
        if no_login:
            body["role"]["no_login"] = True
        result = self._call(
            "POST",
            "/branches/{branch_id}/roles",
            project_id,
            {"branch_id": branch_id},
            json=body,
            parse=_mutation("role", Role.from_api),
        )
        _mask_secrets([result.resource])
        return result

    def delete_role(self, branch_id: str, name: str, *, project_id: str | None = None) -> list[Operation]:
        return self._call("DELETE", _ROLE, project_id, _role_ids(branch_id, name), parse=_ops_or_empty)

    def reveal_role_password(self, branch_id: str, role: str, *, project_id: str | None = None) -> str:
        """The role's password, registered with the secrets masker before it is returned."""
        password: str = self._call(
            "GET",
            f"{_ROLE}/reveal_password",
            project_id,
            _role_ids(branch_id, role),
            parse=lambda body: str(body["password"]),
        )
        mask_secret(password)
        return password

    def reset_role_password(
        self, branch_id: str, role: str, *, project_id: str | None = None
    ) -> Mutation[Role]:
        """Give the role a new password (in ``resource.password``, masked). Not re-sent on an unknown
        outcome: a second reset would invalidate the password the first one returned."""
        result = self._call(
            "POST",
            f"{_ROLE}/reset_password",
            project_id,
            _role_ids(branch_id, role),
            parse=_mutation("role", Role.from_api),
        )
        _mask_secrets([result.resource])
        return result

    # --- operations ----------------------------------------------------------------------------

    def get_operation(self, operation_id: str, *, project_id: str | None = None) -> Operation:
        return self._call(
            "GET",
            "/operations/{operation_id}",
            project_id,
            {"operation_id": operation_id},
            parse=_one("operation", Operation.from_api),
        )

    def get_operations(
        self, operation_ids: Sequence[str], *, project_id: str | None = None
    ) -> list[Operation]:
        """The current state of several operations of one project, in the order given, read the
        way waiting polls them: one list call serves two or more, those not on its page are read
        by id (``waiting.read_steps``, one round of a wait)."""
        pid = self._pid(project_id)
        ids = list(dict.fromkeys(check_id("operation_id", op_id) for op_id in operation_ids))
        found = run_sync(read_steps(pid, ids), self.request)
        missing = [op_id for op_id in ids if op_id not in found]
        if missing:
            raise JamboNotFoundError(
                404, f"operations {missing} not found", method="GET", path=f"/projects/{pid}/operations"
            )
        return [found[op_id] for op_id in ids]

    def list_operations(self, project_id: str | None = None) -> Iterator[Operation]:
        """The project's operations, newest first, across all pages (stop iterating when done)."""
        path_params = {"project_id": self._pid(project_id)}
        return self._pages(
            "/projects/{project_id}/operations",
            path_params,
            "operations",
            OPERATION_PAGE_LIMIT,
            Operation.from_api,
        )

    def _wait_terms(
        self, timeout: float | None, deadline: datetime | float | None, poll_interval: float | None
    ) -> tuple[float | None, PollPolicy]:
        """A wait's absolute deadline and polling pace, from the caller's (checked) values."""
        if timeout is not None:
            check_timeout("timeout", timeout)
        if poll_interval is None:
            poll = PollPolicy()
        else:
            interval = check_poll_interval("poll_interval", poll_interval)
            # The caller's interval is the cap; polling still starts short so quick operations return fast.
            poll = PollPolicy(initial_interval=min(0.5, interval), max_interval=interval)
        return resolve_deadline(timeout, deadline, self.clock()), poll

    def wait_for_operations(
        self,
        operation_ids: Sequence[str | Operation],
        *,
        project_id: str | None = None,
        timeout: float | None = None,
        deadline: datetime | float | None = None,
        poll_interval: float | None = None,
    ) -> WaitResult:
        """Poll until every operation succeeded, one failed, or the timeout/deadline passed.

        ``deadline`` is absolute (aware datetime or epoch seconds); ``timeout`` is relative. The
        result is returned, not raised: call ``.raise_for_status()`` to fail on it. The rules are
        the shared poller's (``hooks/waiting.py``), driven here in the calling thread.
        ``operation_ids`` may hold the :class:`Operation` objects a call returned: what they say
        (their actions) lets the first look wait until they are expected to be done.
        """
        resolved, poll = self._wait_terms(timeout, deadline, poll_interval)
        known, ids = _known_and_ids(operation_ids)
        steps = wait_steps(
            self._pid(project_id), ids, deadline=resolved, clock=self.clock, poll=poll, known=known
        )
        return run_sync(steps, self.request, self.sleep)

    def _sibling(self) -> JamboHook:
        """A hook on the same connection, policy and seams (the shared poller's own)."""
        hook = JamboHook(
            self.jambo_conn_id, retry_policy=self._retry_policy_override, timeout=self._timeout_override
        )
        hook._settings = self._settings
        hook.sleep, hook.asleep, hook.clock = self.sleep, self.asleep, self.clock
        return hook

    async def await_operations(
        self,
        operation_ids: Sequence[str | Operation],
        *,
        project_id: str | None = None,
        timeout: float | None = None,
        deadline: datetime | float | None = None,
        poll_interval: float | None = None,
    ) -> WaitResult:
        """:meth:`wait_for_operations` without blocking the loop: the wait registers with the
        process's shared poller of this connection and project (``hooks/poller.py``), which polls
        once per tick for every waiter. As there, ``Operation`` objects tell when to look first."""
        pid = (
            check_id("project_id", project_id)
            if project_id is not None
            else self._default_project(await self.aload())
        )
        resolved, poll = self._wait_terms(timeout, deadline, poll_interval)
        known, ids = _known_and_ids(operation_ids)
        if not ids:
            return WaitResult("success", [], "no operations to wait for")
        poller = shared_poller((self.jambo_conn_id, pid), self._sibling, poll)
        return await poller.wait(ids, deadline=resolved, cap=poll.max_interval, known=known)

    # --- connection URI ------------------------------------------------------------------------

    def get_connection_uri(
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
        _mask_secrets(uris=[uri])
        return uri

    # --- connection test -----------------------------------------------------------------------

    def test_connection(self) -> tuple[bool, str]:
        """One cheap read (``GET /projects?limit=1``) with at most one quick retry."""
        try:
            settings = self.load()
            self.request(
                ApiRequest("GET", "/projects", query={"limit": 1, "org_id": settings.org_id}),
                retry_policy=RetryPolicy(max_attempts=2, max_elapsed=10.0, max_wait=2.0),
            )
        except JamboError as err:
            return False, str(err)
        finally:
            self.close()
        where = "" if settings.base_url == DEFAULT_BASE_URL else f" at {settings.base_url}"
        return True, f"Connected to the Jambo API{where}"


class QueueingHook(JamboHook):
    """The operators' hook: a change refused with 423 is raised at once (never re-sent blindly),
    because the operator waits for the project's operations in flight itself
    (:meth:`~airflow_provider_jambo.operators.base.JamboBaseOperator.send`). Reads keep the hook's
    usual retries."""

    def request(self, req: ApiRequest[T], *, retry_policy: RetryPolicy | None = None) -> T:
        if retry_policy is None and req.method != "GET":
            retry_policy = replace(self.retry_policy, locked_max_elapsed=0.0)
        return super().request(req, retry_policy=retry_policy)


class AnonymizingHook(QueueingHook):
    """The anonymized-branch operator's hook: its branch creates (get-or-create's too) are
    anonymized creates with ``rules``."""

    def __init__(self, jambo_conn_id: str, *, rules: Sequence[MaskingRule]) -> None:
        super().__init__(jambo_conn_id)
        self.rules = list(rules)

    def create_branch(self, project_id: str | None = None, **kwargs: Any) -> BranchCreation:
        return self.create_anonymized_branch(
            project_id, masking_rules=self.rules, start_anonymization=True, **kwargs
        )
