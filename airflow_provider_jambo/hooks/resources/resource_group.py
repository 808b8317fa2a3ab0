"""What every resource group shares: the hook it talks through, and reading the API's answers.

A resource group (``hook.branches``, ``hook.computes``, ...) is a small class holding the hook,
the way Airflow's Task SDK client groups its calls (``client.task_instances.start(...)``). It
sends only through the hook's one path (``request``/``arequest``) and knows the hook only as
:class:`HookCore`, so these modules never import ``hooks/jambo.py`` (which imports them).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator, Mapping
from typing import Any, Protocol, TypeVar

from airflow_provider_jambo.api_models import Mutation, Operation, parse_operations
from airflow_provider_jambo.hooks.client import ApiRequest, page_of
from airflow_provider_jambo.hooks.retry import RetryPolicy
from airflow_provider_jambo.hooks.settings import JamboSettings

T = TypeVar("T")


class HookCore(Protocol):
    """What a resource group uses of ``JamboHook``."""

    jambo_conn_id: str
    clock: Callable[[], float]
    sleep: Callable[[float], None]
    asleep: Callable[[float], Awaitable[Any]]

    @property
    def log(self) -> Any: ...  # Airflow's logger (its type differs between Airflow versions)

    @property
    def retry_policy(self) -> RetryPolicy: ...

    def load(self) -> JamboSettings: ...

    def resolve_project_id(self, project_id: str | None) -> str: ...

    async def aresolve_project_id(self, project_id: str | None) -> str: ...

    def request(self, req: ApiRequest[T], *, retry_policy: RetryPolicy | None = None) -> T: ...

    async def arequest(self, req: ApiRequest[T], *, retry_policy: RetryPolicy | None = None) -> T: ...

    def round_trip(self) -> float: ...

    def sibling(self) -> HookCore: ...

    async def aclose(self) -> None: ...


class ResourceGroup:
    """Base of the resource groups: ``_call`` below ``/projects/{project_id}``, ``_pages``."""

    def __init__(self, hook: HookCore) -> None:
        self._hook = hook

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
        path_params = {"project_id": self._hook.resolve_project_id(project_id), **(ids or {})}
        return self._hook.request(
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
            items, cursor = page_of(self._hook.request(req), key, limit)
            yield from (parse(item) for item in items)
            if cursor is None or cursor in seen:
                return
            seen.add(cursor)


# --- reading answers: the resource under its key, a list of them, or it plus its operations ----


def one(key: str, parse: Callable[[Mapping[str, Any]], T]) -> Callable[[Any], T]:
    return lambda body: parse(body[key])


def many(key: str, parse: Callable[[Mapping[str, Any]], T]) -> Callable[[Any], list[T]]:
    return lambda body: [parse(item) for item in body.get(key) or []]


def mutation(key: str, parse: Callable[[Mapping[str, Any]], T]) -> Callable[[Any], Mutation[T]]:
    return lambda body: Mutation(parse(body[key]), parse_operations(body))


def ops_or_empty(body: Any) -> list[Operation]:
    """DELETE answers 200 with operations, or 204 (empty) when the resource is already gone."""
    return parse_operations(body) if body else []
