"""The account: users/me, the key's identity (/auth) and the list of regions."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query, Request
from starlette.responses import Response

from jambo_emulator.api.gate import api_router
from jambo_emulator.api.routes.helpers import ctx_of, key_of, respond
from jambo_emulator.resources.organizations import USER_EMAIL
from jambo_emulator.resources.projects import REGIONS
from jambo_emulator.state.clock import iso
from jambo_emulator.state.ids import ID_PATTERN

router = api_router()


@router.get("/users/me")
async def current_user(request: Request) -> Response:
    ctx = ctx_of(request)
    return respond(
        {
            "active_seconds_limit": 360000,
            "auth_accounts": [
                {
                    "email": USER_EMAIL,
                    "image": "",
                    "login": "emulator",
                    "name": "Jambo Emulator",
                    "provider": "keycloak",
                }
            ],
            "email": USER_EMAIL,
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
            # Optional in the spec, always sent by the service (the Python SDK's model needs it).
            "billing_account": {
                "state": "active",
                "payment_source": {"type": "none"},
                "subscription_type": "launch",
                "payment_method": "none",
                "quota_reset_at_last": iso(ctx.started_at),
                "name": "Jambo Emulator",
                "email": USER_EMAIL,
                "address_city": "",
                "address_country": "",
                "address_line1": "",
                "address_line2": "",
                "address_postal_code": "",
                "address_state": "",
            },
        }
    )


@router.get("/auth")
async def auth_details(request: Request) -> Response:
    """Who the key is: the user (personal key) or an organization (org and project-scoped keys)."""
    ctx, key = ctx_of(request), key_of(request)
    if key.org_id is None:
        return respond({"account_id": ctx.owner_id, "auth_method": "api_key_user"})
    return respond({"account_id": key.org_id, "auth_method": "api_key_org"})


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
