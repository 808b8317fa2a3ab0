"""API keys of the account: list, create, revoke."""

from __future__ import annotations

from fastapi import Request
from starlette.responses import Response

from jambo_emulator.api import serialize
from jambo_emulator.api.bodies import ApiKeyCreateBody
from jambo_emulator.api.gate import api_router
from jambo_emulator.api.routes.helpers import ctx_of, key_of, respond
from jambo_emulator.resources import organizations
from jambo_emulator.resources.access import require_personal

router = api_router()


@router.get("/api_keys")
async def list_api_keys(request: Request) -> Response:
    ctx = ctx_of(request)
    require_personal(key_of(request), "manage API keys")
    with ctx.store.lock:
        return respond([serialize.api_key_item(k) for k in organizations.personal_keys(ctx)])


@router.post("/api_keys")
async def create_api_key(request: Request, body: ApiKeyCreateBody) -> Response:
    ctx = ctx_of(request)
    require_personal(key_of(request), "manage API keys")
    with ctx.store.lock:
        record = organizations.add_api_key(ctx, ctx.ids.api_key(), name=body.key_name)
        return respond(serialize.api_key_created(record))


@router.delete("/api_keys/{key_id}")
async def revoke_api_key(request: Request, key_id: int) -> Response:
    ctx = ctx_of(request)
    require_personal(key_of(request), "manage API keys")
    with ctx.store.lock:
        return respond(serialize.api_key_revoked(organizations.revoke_key(ctx, key_id)))
