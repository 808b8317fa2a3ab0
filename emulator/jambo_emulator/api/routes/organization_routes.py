"""Organizations: the user's organizations, one organization, its API keys and its members.

Every emulator has a default organization (``EmulatorContext.default_org_id``) that new projects
join unless they name another; more come from the control API. The emulator's one user is an
admin of each. Org keys see the org's projects; an org key created with ``project_id`` sees only
that project (the behaviour notes' project-scoped key).
"""

from __future__ import annotations

from fastapi import Request
from starlette.responses import Response

from jambo_emulator.api import serialize
from jambo_emulator.api.bodies import OrgApiKeyCreateBody
from jambo_emulator.api.gate import api_router
from jambo_emulator.api.routes.helpers import ctx_of, key_of, path_id, respond
from jambo_emulator.resources import organizations
from jambo_emulator.resources.context import EmulatorContext
from jambo_emulator.state.records import Organization

router = api_router()


def _org(request: Request, what: str) -> tuple[EmulatorContext, Organization]:
    """The path's organization, which the key may act on (hold no lock: dict reads only)."""
    ctx = ctx_of(request)
    return ctx, organizations.organization_for(ctx, key_of(request), path_id(request, "org_id"), what)


@router.get("/users/me/organizations")
async def current_user_organizations(request: Request) -> Response:
    ctx, key = ctx_of(request), key_of(request)
    with ctx.store.lock:
        orgs = organizations.visible_organizations(ctx, key)
        return respond({"organizations": [serialize.organization(o) for o in orgs]})


@router.get("/organizations/{org_id}")
async def get_organization(request: Request) -> Response:
    _, org = _org(request, "read this organization")
    return respond(serialize.organization(org))


@router.get("/organizations/{org_id}/api_keys")
async def list_org_api_keys(request: Request) -> Response:
    ctx, org = _org(request, "manage organization API keys")
    with ctx.store.lock:
        return respond([serialize.api_key_item(k) for k in organizations.org_keys(ctx, org.id)])


@router.post("/organizations/{org_id}/api_keys")
async def create_org_api_key(request: Request, body: OrgApiKeyCreateBody) -> Response:
    ctx, org = _org(request, "manage organization API keys")
    with ctx.store.lock:
        record = organizations.create_org_key(ctx, org, body.key_name, body.project_id)
        return respond(serialize.api_key_created(record))


@router.delete("/organizations/{org_id}/api_keys/{key_id}")
async def revoke_org_api_key(request: Request, key_id: int) -> Response:
    ctx, org = _org(request, "manage organization API keys")
    with ctx.store.lock:
        return respond(serialize.api_key_revoked(organizations.revoke_key(ctx, key_id, org_id=org.id)))


def _member_with_user(ctx: EmulatorContext, org: Organization) -> dict[str, object]:
    return {
        "member": serialize.member(org, ctx.owner_id),
        "user": {"email": organizations.USER_EMAIL, "has_mfa": False},
    }


@router.get("/organizations/{org_id}/members")
async def list_org_members(request: Request) -> Response:
    ctx, org = _org(request, "read organization members")
    return respond({"members": [_member_with_user(ctx, org)]})


@router.get("/organizations/{org_id}/members/{member_id}")
async def get_org_member(request: Request) -> Response:
    ctx, org = _org(request, "read organization members")
    organizations.check_member(org, request.path_params["member_id"])
    return respond(serialize.member(org, ctx.owner_id))
