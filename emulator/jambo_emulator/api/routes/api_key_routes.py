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
from jambo_emulator.state.errors import not_found

router = api_router()


@router.get("/api_keys")
async def list_api_keys(request: Request) -> Response:
    ctx = ctx_of(request)
    require_personal(key_of(request), "manage API keys")
    with ctx.store.lock:
        keys = [k for k in ctx.store.api_keys.values() if not k.revoked and k.personal]
        return respond([serialize.api_key_item(k) for k in keys])


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
        record = ctx.store.api_keys_by_id.get(key_id)
        if record is None or record.revoked or not record.personal:
            raise not_found("API key")
        record.revoked = True
        return respond(serialize.api_key_revoked(record))
