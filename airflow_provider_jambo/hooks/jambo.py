"""JamboHook: the one way the provider talks to the Jambo API.

The hook itself is small: the connection (``load``/``aload``, :class:`JamboSettings` of
``hooks/settings.py``), one ``httpx.Client``/``httpx.AsyncClient`` kept for keep-alive, and the one
sending path each, :meth:`JamboHook.request` and :meth:`JamboHook.arequest`, with the retry rules
of ``retry.py``. What the API offers is grouped by resource, one module each under
``hooks/resources/`` (``hook.branches``, ``hook.computes``, ``hook.databases``, ``hook.roles``,
``hook.operations``, ``hook.projects``, ``hook.anonymization``): each group holds the hook and sends
through it.

Construction is free (no connection lookup, no I/O), so operators may build hooks anywhere and DAG
parsing never touches the metadata database or the network. The API key is registered with the
secrets masker when the connection is read.
"""

from __future__ import annotations

import asyncio
import platform
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import httpx
from airflow.providers.common.compat.sdk import AirflowNotFoundException, BaseHook

from airflow_provider_jambo import __version__
from airflow_provider_jambo.api_models import Project
from airflow_provider_jambo.exceptions import (
    JamboAuthError,
    JamboConfigError,
    JamboError,
    JamboNotFoundError,
    JamboTransportError,
)
from airflow_provider_jambo.get_provider_info import get_provider_info
from airflow_provider_jambo.hooks import secret_masking
from airflow_provider_jambo.hooks.client import (
    ApiRequest,
    client_kwargs,
    send_async,
    send_sync,
)
from airflow_provider_jambo.hooks.project_lock import OnLocked
from airflow_provider_jambo.hooks.resources.anonymization import AnonymizationApi
from airflow_provider_jambo.hooks.resources.branches import BranchesApi
from airflow_provider_jambo.hooks.resources.computes import ComputesApi
from airflow_provider_jambo.hooks.resources.databases import DatabasesApi
from airflow_provider_jambo.hooks.resources.operations import OperationsApi
from airflow_provider_jambo.hooks.resources.projects import ProjectsApi
from airflow_provider_jambo.hooks.resources.resource_group import one
from airflow_provider_jambo.hooks.resources.roles import RolesApi
from airflow_provider_jambo.hooks.resources.snapshots import SnapshotsApi
from airflow_provider_jambo.hooks.retry import RetryPolicy, acall_with_retries, call_with_retries
from airflow_provider_jambo.hooks.round_trips import round_trips_for
from airflow_provider_jambo.hooks.settings import (
    CONN_TYPE,
    MAX_CONNECT_TIMEOUT,
    JamboSettings,
    connection_extras,
)
from airflow_provider_jambo.rules import DEFAULT_CONN_ID, check_id

T = TypeVar("T")


def _user_agent() -> str:
    try:
        from airflow import __version__ as airflow_version
    except ImportError:  # pragma: no cover - Airflow is a dependency
        airflow_version = "unknown"
    return (
        f"airflow-provider-jambo/{__version__} apache-airflow/{airflow_version} "
        f"python/{platform.python_version()} httpx/{httpx.__version__}"
    )


class JamboHook(BaseHook):
    """Interact with the Jambo serverless-Postgres API.

    The API's resources are groups on the hook: ``hook.branches``, ``hook.computes``,
    ``hook.databases``, ``hook.roles``, ``hook.operations``, ``hook.projects``,
    ``hook.anonymization`` (``hooks/resources/``).

    :param jambo_conn_id: connection of type ``jambo`` (password: API key; host: API base URL,
        empty for the public one; extras ``project_id``, ``org_id``, ``timeout``, ``max_retries``,
        ``retry_max_wait``, ``requests_per_minute`` (this process's budget for the account,
        default 560 of the service's 700; see ``hooks/budget.py``)).
    :param retry_policy: overrides the connection's retry settings (triggers carry one).
    :param timeout: overrides the connection's read timeout in seconds.
    :param on_locked: ``raise`` makes a change refused with 423 raise at once, for a caller that
        waits for the project itself (the operators); ``retry`` (default) re-sends it with backoff.
        ``hooks/project_lock.py`` decides what each means.
    """

    conn_name_attr = "jambo_conn_id"
    default_conn_name = DEFAULT_CONN_ID
    conn_type = CONN_TYPE
    hook_name = "Jambo"

    def __init__(
        self,
        jambo_conn_id: str = default_conn_name,
        *,
        retry_policy: RetryPolicy | None = None,
        timeout: float | None = None,
        on_locked: OnLocked | str = OnLocked.RETRY,
    ) -> None:
        super().__init__()
        self.jambo_conn_id = jambo_conn_id
        self.on_locked = OnLocked(on_locked)
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
        # The resource groups: plain objects holding this hook (nothing is read or sent here).
        self.projects = ProjectsApi(self)
        self.branches = BranchesApi(self)
        self.computes = ComputesApi(self)
        self.databases = DatabasesApi(self)
        self.roles = RolesApi(self)
        self.operations = OperationsApi(self)
        self.anonymization = AnonymizationApi(self)
        self.snapshots = SnapshotsApi(self)

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
        secret_masking.mask_api_key(settings.api_key)
        if settings.default_url:
            # Silently targeting the public service is the surprise of a connection meant for an
            # emulator; said once, when the connection is read.
            self.log.info(
                "Connection %r has no host: using the service's default URL %s "
                "(set the connection's host for another API, e.g. http://127.0.0.1:PORT for an emulator)",
                self.jambo_conn_id,
                settings.base_url,
            )
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
            self._adopt_settings(conn, connection_extras(conn, self.jambo_conn_id))
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
            connection_extras(conn, self.jambo_conn_id)  # refuses extras that are not a JSON object
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

    def resolve_project_id(self, project_id: str | None) -> str:
        """``project_id`` checked, or the connection's default project when it is None."""
        return check_id("project_id", project_id) if project_id is not None else self.project_id

    async def aresolve_project_id(self, project_id: str | None) -> str:
        """:meth:`resolve_project_id` without blocking the loop (reads the connection with ``aload``)."""
        if project_id is not None:
            return check_id("project_id", project_id)
        return self._default_project(await self.aload())

    def _default_project(self, settings: JamboSettings) -> str:
        if not settings.project_id:
            raise JamboConfigError(
                f"no project_id given and connection {self.jambo_conn_id!r} has no 'project_id' extra"
            )
        return settings.project_id

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
            lambda: send_sync(
                client, req, secrets=secrets, ticket=ticket, sleep=self.sleep, target=settings.target
            ),
            sleep=self.sleep,
            logger=self.log,
            on_locked=self.on_locked,
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
            lambda: send_async(
                client, req, secrets=secrets, ticket=ticket, sleep=self.asleep, target=settings.target
            ),
            sleep=self.asleep,
            logger=self.log,
            on_locked=self.on_locked,
        )

    def round_trip(self) -> float:
        """How long this hook's API typically takes to answer, seconds (``hooks/round_trips.py``;
        0 before the connection is read): a wait sends its looks half of it early."""
        return round_trips_for(self._settings.base_url).typical() if self._settings else 0.0

    def sibling(self) -> JamboHook:
        """A hook on the same connection, policy and seams (the shared poller's own)."""
        hook = JamboHook(
            self.jambo_conn_id,
            retry_policy=self._retry_policy_override,
            timeout=self._timeout_override,
            on_locked=self.on_locked,
        )
        hook._settings = self._settings
        hook.sleep, hook.asleep, hook.clock = self.sleep, self.asleep, self.clock
        return hook

    # --- connection test -----------------------------------------------------------------------

    def test_connection(self) -> tuple[bool, str]:
        """Check the whole connection (``airflow connections test``, the UI's Test button).

        In order, each failure saying which part is wrong: the settings themselves; the host and
        the key (``GET /projects?limit=1``: no answer names the URL, a 401 the key); the
        ``org_id`` extra (``GET /organizations/{org_id}``); the ``project_id`` extra
        (``GET /projects/{project_id}``, and that it belongs to ``org_id`` when both are set).
        Reads only, each with at most one quick retry.
        """
        try:
            settings = self.load()
            return self._check_connection(settings)
        except JamboError as err:
            return False, str(err)
        finally:
            self.close()

    def _check_connection(self, settings: JamboSettings) -> tuple[bool, str]:
        quick = RetryPolicy(max_attempts=2, max_elapsed=10.0, max_wait=2.0)
        try:
            self.request(
                ApiRequest("GET", "/projects", query={"limit": 1, "org_id": settings.org_id}),
                retry_policy=quick,
            )
        except JamboAuthError as err:
            return False, f"the API key was refused: {err}"
        except JamboTransportError as err:
            return False, f"the API did not answer: {err}"
        checks = ["the API key is accepted"]
        org_unreadable: JamboAuthError | None = None
        if settings.org_id:
            try:
                org: Any = self.request(
                    ApiRequest("GET", "/organizations/{org_id}", {"org_id": settings.org_id}),
                    retry_policy=quick,
                )
            except JamboNotFoundError as err:
                return False, (
                    f"extra org_id {settings.org_id!r} is not an organization this key can see: {err}"
                )
            except JamboAuthError as err:
                # A project-scoped key may not read its organization; its project can still show
                # that it belongs to it (below).
                org_unreadable = err
            else:
                name = org.get("name") if isinstance(org, Mapping) else None
                checks.append(f"organization {settings.org_id!r} ({name or 'unnamed'}) is visible")
        if settings.project_id:
            try:
                project = self.request(
                    ApiRequest(
                        "GET",
                        "/projects/{project_id}",
                        {"project_id": settings.project_id},
                        parse=one("project", Project.from_api),
                    ),
                    retry_policy=quick,
                )
            except (JamboNotFoundError, JamboAuthError) as err:
                return False, (
                    f"extra project_id {settings.project_id!r} is not a project this key can see: {err}"
                )
            if settings.org_id and project.org_id and project.org_id != settings.org_id:
                return False, (
                    f"extra project_id {settings.project_id!r} belongs to organization "
                    f"{project.org_id!r}, not to the connection's org_id {settings.org_id!r}"
                )
            if org_unreadable is not None and project.org_id == settings.org_id:
                checks.append(f"organization {settings.org_id!r} holds the project")
                org_unreadable = None
            checks.append(f"project {settings.project_id!r} ({project.name}) is visible")
        if org_unreadable is not None:
            return False, f"extra org_id {settings.org_id!r} cannot be read with this key: {org_unreadable}"
        return True, f"Connected to the Jambo API ({settings.target.describe()}): {'; '.join(checks)}"
