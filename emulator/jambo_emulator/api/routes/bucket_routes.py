"""Buckets of a branch: create, list (own and inherited), delete. The rules are in
``resources/buckets.py``; objects are not emulated (501)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Request
from starlette.responses import Response

from jambo_emulator.api import serialize
from jambo_emulator.api.bodies import BucketCreateBody
from jambo_emulator.api.gate import api_router
from jambo_emulator.api.routes.helpers import (
    BranchId,
    ProjectId,
    ctx_of,
    key_of,
    no_content,
    respond,
)
from jambo_emulator.resources import buckets

router = api_router()
BASE = "/projects/{project_id}/branches/{branch_id}/buckets"
BucketName = Annotated[str, Path(min_length=1, max_length=255)]


@router.get(BASE)
async def list_buckets(request: Request, project_id: ProjectId, branch_id: BranchId) -> Response:
    ctx = ctx_of(request)
    with ctx.store.lock:
        found = buckets.list_for(ctx, key_of(request), project_id, branch_id)
        return respond({"buckets": [serialize.bucket(b) for b in found]})


@router.post(BASE)
async def create_bucket(
    request: Request, project_id: ProjectId, branch_id: BranchId, body: BucketCreateBody
) -> Response:
    ctx = ctx_of(request)
    with ctx.store.lock:
        bucket = buckets.create(ctx, key_of(request), project_id, branch_id, body.name, body.access_level)
        return respond({"bucket": serialize.bucket(bucket)}, 201)


@router.delete(BASE + "/{bucket_name}")
async def delete_bucket(
    request: Request, project_id: ProjectId, branch_id: BranchId, bucket_name: BucketName
) -> Response:
    ctx = ctx_of(request)
    with ctx.store.lock:
        buckets.delete(ctx, key_of(request), project_id, branch_id, bucket_name)
    return no_content()
