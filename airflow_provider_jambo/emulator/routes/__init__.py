"""The ``/api/v2`` routes, one module per resource (each router's routes pass the gate).

Order matters for speed: routing tries routes in order, so the ones pollers hit go first.
"""

from __future__ import annotations

from fastapi import APIRouter

from airflow_provider_jambo.emulator.routes import (
    account,
    anonymized,
    api_keys,
    branches,
    connection,
    databases,
    endpoints,
    operations,
    projects,
    roles,
    schema,
)

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
)
api_router = APIRouter()
for _module in API_MODULES:
    api_router.include_router(_module.router)
