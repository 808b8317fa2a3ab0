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
from jambo_emulator.resources.access import require_org_access
from jambo_emulator.resources.context import EmulatorContext
from jambo_emulator.state.errors import ApiError, found, not_found
from jambo_emulator.state.records import ApiKey, Organization

router = api_router()


def _org(request: Request, what: str) -> tuple[EmulatorContext, Organization]:
    """The path's organization, which the key may act on (hold no lock: dict reads only)."""
    ctx, key = ctx_of(request), key_of(request)
    org_id = path_id(request, "org_id")
    org = found(ctx.store.organizations, org_id, "organization")
    require_org_access(key, org.id, what)
    return ctx, org


@router.get("/users/me/organizations")
async def current_user_organizations(request: Request) -> Response:
    ctx, key = ctx_of(request), key_of(request)
    with ctx.store.lock:
        orgs = [o for o in ctx.store.organizations.values() if key.org_id in (None, o.id)]
        return respond({"organizations": [serialize.organization(o) for o in orgs]})


@router.get("/organizations/{org_id}")
async def get_organization(request: Request) -> Response:
    _, org = _org(request, "read this organization")
    return respond(serialize.organization(org))


def _org_keys(ctx: EmulatorContext, org_id: str) -> list[ApiKey]:
    return [k for k in ctx.store.api_keys.values() if k.org_id == org_id and not k.revoked]


@router.get("/organizations/{org_id}/api_keys")
async def list_org_api_keys(request: Request) -> Response:
    ctx, org = _org(request, "manage organization API keys")
    with ctx.store.lock:
        return respond([serialize.api_key_item(k) for k in _org_keys(ctx, org.id)])


@router.post("/organizations/{org_id}/api_keys")
async def create_org_api_key(request: Request, body: OrgApiKeyCreateBody) -> Response:
    ctx, org = _org(request, "manage organization API keys")
    with ctx.store.lock:
        if body.project_id is not None:
            project = ctx.store.projects.get(body.project_id)
            if project is None:
                raise not_found("project")
            if project.org_id != org.id:
                raise ApiError(400, f"project {project.id} does not belong to organization {org.id}")
        record = organizations.add_api_key(
            ctx, ctx.ids.api_key(), name=body.key_name, org_id=org.id, project_id=body.project_id
        )
        return respond(serialize.api_key_created(record))


@router.delete("/organizations/{org_id}/api_keys/{key_id}")
async def revoke_org_api_key(request: Request, key_id: int) -> Response:
    ctx, org = _org(request, "manage organization API keys")
    with ctx.store.lock:
        record = ctx.store.api_keys_by_id.get(key_id)
        if record is None or record.revoked or record.org_id != org.id:
            raise not_found("API key")
        record.revoked = True
        return respond(serialize.api_key_revoked(record))


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
    if request.path_params["member_id"] != org.member_id:
        raise not_found("member")
    return respond(serialize.member(org, ctx.owner_id))
