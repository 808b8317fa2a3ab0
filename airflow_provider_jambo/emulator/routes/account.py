"""The account: users/me and the list of regions."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query, Request
from starlette.responses import Response

from airflow_provider_jambo.emulator.gate import api_router
from airflow_provider_jambo.emulator.routes.common import ctx_of, respond
from airflow_provider_jambo.emulator.schemas import ID_PATTERN
from airflow_provider_jambo.emulator.service import REGIONS

router = api_router()


@router.get("/users/me")
async def current_user(request: Request) -> Response:
    ctx = ctx_of(request)
    return respond(
        {
            "active_seconds_limit": 360000,
            "auth_accounts": [
                {
                    "email": "emulator@example.com",
                    "image": "",
                    "login": "emulator",
                    "name": "Jambo Emulator",
                    "provider": "keycloak",
                }
            ],
            "email": "emulator@example.com",
            "id": ctx.owner_id,
            "image": "",
            "login": "emulator",
            "name": "Jambo",
            "last_name": "Emulator",
            "projects_limit": 100,
            "branches_limit": 5000,
            "max_autoscaling_limit": 16,
            "compute_seconds_limit": 360000,
            "plan": "launch",
        }
    )


@router.get("/regions")
async def regions(
    request: Request, org_id: Annotated[str | None, Query(pattern=ID_PATTERN)] = None
) -> Response:
    default = ctx_of(request).config.region_id
    return respond(
        {
            "regions": [
                {"region_id": rid, "name": name, "default": rid == default, "geo_lat": lat, "geo_long": long}
                for rid, name, lat, long in REGIONS
            ]
        }
    )
