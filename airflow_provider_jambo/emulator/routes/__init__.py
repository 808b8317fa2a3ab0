"""The ``/api/v2`` routes, one module per resource (each router's routes pass the gate)."""

from __future__ import annotations

from fastapi import APIRouter

from airflow_provider_jambo.emulator.routes import (
    account,
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

api_router = APIRouter()
for _module in (
    account,
    api_keys,
    projects,
    operations,
    branches,
    endpoints,
    databases,
    roles,
    connection,
    schema,
):
    api_router.include_router(_module.router)
