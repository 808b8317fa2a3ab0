"""The ``/api/v2`` routes, one module per resource (each router's routes pass the gate), plus a
501 route for every spec operation none of them serves (``not_emulated``).

Routing tries routes in order and takes the first full match, so of two templates that can match
the same path, the one with a literal where the other has a parameter goes first
(``/projects/shared`` before ``/projects/{project_id}``). Everything else keeps the module order,
pollers first: a request pays for every route tried before its own (with all 163 operations
routed, sorting by specificity alone put the operation poll 67th, half of a GET's time).
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.routing import APIRoute

from jambo_emulator.api.routes import (
    account_routes,
    anonymized_routes,
    api_key_routes,
    branch_routes,
    branch_service_routes,
    bucket_routes,
    connection_routes,
    database_routes,
    endpoint_routes,
    operation_routes,
    organization_routes,
    project_routes,
    role_routes,
    schema_routes,
    snapshot_routes,
)
from jambo_emulator.api.routes.not_emulated_routes import route_key, router_for_the_rest

# The routes pollers hit come first: routing tries routes in order.
API_MODULES = (
    operation_routes,
    branch_routes,
    endpoint_routes,
    project_routes,
    database_routes,
    role_routes,
    connection_routes,
    schema_routes,
    account_routes,
    api_key_routes,
    anonymized_routes,
    organization_routes,
    bucket_routes,
    branch_service_routes,
    snapshot_routes,
)


def specificity(path: str) -> tuple[bool, ...]:
    """Sort key: per segment, False for a literal, True for a parameter."""
    return tuple(segment.startswith("{") for segment in path.strip("/").split("/"))


def _segments(path: str) -> list[str]:
    return path.strip("/").split("/")


def overlap(a: str, b: str) -> bool:
    """Whether some path matches both templates (a parameter matches any one segment)."""
    sa, sb = _segments(a), _segments(b)
    return len(sa) == len(sb) and all(
        x == y or x.startswith("{") or y.startswith("{") for x, y in zip(sa, sb, strict=True)
    )


def route_order(paths: list[str]) -> list[int]:
    """Indexes of ``paths`` in routing order: the given order, except that of two overlapping
    templates the more specific one comes first (a topological sort, smallest index first)."""
    before: dict[int, set[int]] = {i: set() for i in range(len(paths))}
    by_length: dict[int, list[int]] = {}
    for i, path in enumerate(paths):
        by_length.setdefault(len(_segments(path)), []).append(i)
    for group in by_length.values():
        for i in group:
            for j in group:
                more_specific = specificity(paths[i]) < specificity(paths[j])
                if paths[i] != paths[j] and more_specific and overlap(paths[i], paths[j]):
                    before[j].add(i)
    order: list[int] = []
    placed: set[int] = set()
    while len(order) < len(paths):
        nxt = next(i for i in range(len(paths)) if i not in placed and before[i] <= placed)
        order.append(nxt)
        placed.add(nxt)
    return order


def _build() -> tuple[APIRouter, APIRouter]:
    combined = APIRouter()
    for module in API_MODULES:
        combined.include_router(module.router)
    implemented = [
        route_key(method, route.path)
        for route in combined.routes
        if isinstance(route, APIRoute)
        for method in route.methods
    ]
    rest = router_for_the_rest(implemented)
    combined.include_router(rest)
    routes = list(combined.routes)
    combined.routes[:] = [routes[i] for i in route_order([getattr(r, "path", "") for r in routes])]
    return combined, rest


api_router, not_emulated_router = _build()
