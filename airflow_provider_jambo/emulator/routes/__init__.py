"""The ``/api/v2`` routes, one module per resource (each router's routes pass the gate), plus a
501 route for every spec operation none of them serves (``not_emulated``).

Routing tries routes in order and takes the first full match, so the routes are sorted: at the
first segment where two templates differ, a literal goes before a parameter
(``/projects/shared`` before ``/projects/{project_id}``). The sort is stable, so among routes
that can never match the same path the module order (pollers first, for speed) is kept.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.routing import APIRoute

from airflow_provider_jambo.emulator.routes import (
    account,
    anonymized,
    api_keys,
    branches,
    connection,
    databases,
    endpoints,
    operations,
    organizations,
    projects,
    roles,
    schema,
)
from airflow_provider_jambo.emulator.routes.not_emulated import route_key, router_for_the_rest

# The routes pollers hit come first: routing tries routes in order.
API_MODULES = (
    operations,
    branches,
    endpoints,
    projects,
    databases,
    roles,
    connection,
    schema,
    account,
    api_keys,
    anonymized,
    organizations,
)


def specificity(path: str) -> tuple[bool, ...]:
    """Sort key: per segment, False for a literal, True for a parameter."""
    return tuple(segment.startswith("{") for segment in path.strip("/").split("/"))


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
    combined.routes.sort(key=lambda route: specificity(getattr(route, "path", "")))
    return combined, rest


api_router, not_emulated_router = _build()
