"""Snapshots and backup schedules: create (of a branch), list, update, delete, restore, finalize a
restore, get/set a branch's schedule. The rules are in ``resources/snapshots.py``."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Request
from starlette.responses import Response

from jambo_emulator.api import serialize
from jambo_emulator.api.bodies import (
    BackupScheduleBody,
    FinalizeRestoreBody,
    SnapshotQuery,
    SnapshotRestoreBody,
    SnapshotUpdateBody,
)
from jambo_emulator.api.gate import api_router
from jambo_emulator.api.routes.helpers import BranchId, ProjectId, ctx_of, key_of, respond
from jambo_emulator.resources import snapshots
from jambo_emulator.state.ids import ID_PATTERN

router = api_router()
SnapshotId = Annotated[str, Path(pattern=ID_PATTERN)]
BRANCH = "/projects/{project_id}/branches/{branch_id}"
SNAPSHOT = "/projects/{project_id}/snapshots/{snapshot_id}"


@router.post(f"{BRANCH}/snapshot")
async def create_snapshot(
    request: Request,
    project_id: ProjectId,
    branch_id: BranchId,
    lsn: str | None = None,
    timestamp: str | None = None,
    name: str | None = None,
    expires_at: str | None = None,
) -> Response:
    given = {"lsn": lsn, "timestamp": timestamp, "name": name, "expires_at": expires_at}
    spec = SnapshotQuery(**{k: v for k, v in given.items() if v is not None}).to_spec()
    ctx = ctx_of(request)
    with ctx.store.lock:
        project, branch = ctx.project_branch(key_of(request), project_id, branch_id)
        snapshot, ops = snapshots.create_snapshot(ctx, project, branch, spec)
        return respond(
            {
                "snapshot": serialize.snapshot(snapshot),
                "operations": serialize.operations(ops, ctx.clock.now()),
            }
        )


@router.get("/projects/{project_id}/snapshots")
async def list_snapshots(request: Request, project_id: ProjectId) -> Response:
    ctx = ctx_of(request)
    with ctx.store.lock:
        project = ctx.project_for(key_of(request), project_id)
        return respond({"snapshots": [serialize.snapshot(s) for s in snapshots.list_snapshots(project)]})


@router.patch(SNAPSHOT)
async def update_snapshot(
    request: Request, project_id: ProjectId, snapshot_id: SnapshotId, body: SnapshotUpdateBody
) -> Response:
    change = body.to_change()
    ctx = ctx_of(request)
    with ctx.store.lock:
        project = ctx.project_for(key_of(request), project_id)
        snapshot = snapshots.find(project, snapshot_id)
        snapshots.update_snapshot(ctx, snapshot, change)
        return respond({"snapshot": serialize.snapshot(snapshot)})


@router.delete(SNAPSHOT)
async def delete_snapshot(request: Request, project_id: ProjectId, snapshot_id: SnapshotId) -> Response:
    ctx = ctx_of(request)
    with ctx.store.lock:
        project = ctx.project_for(key_of(request), project_id)
        ops = snapshots.delete_snapshot(ctx, project, snapshots.find(project, snapshot_id))
        return respond({"operations": serialize.operations(ops, ctx.clock.now())}, 202)


@router.post(f"{SNAPSHOT}/restore")
async def restore_snapshot(
    request: Request,
    project_id: ProjectId,
    snapshot_id: SnapshotId,
    name: str | None = None,
    body: SnapshotRestoreBody | None = None,
) -> Response:
    spec = (body or SnapshotRestoreBody()).to_spec(deprecated_name=name)
    ctx = ctx_of(request)
    with ctx.store.lock:
        project = ctx.project_for(key_of(request), project_id)
        restored = snapshots.restore_snapshot(ctx, project, snapshots.find(project, snapshot_id), spec)
        return respond(
            {
                "branch": serialize.branch(restored.branch),
                "endpoints": [serialize.endpoint(e) for e in restored.endpoints],
                "operations": serialize.operations(restored.operations, ctx.clock.now()),
            }
        )


@router.post(f"{BRANCH}/finalize_restore")
async def finalize_restore(
    request: Request, project_id: ProjectId, branch_id: BranchId, body: FinalizeRestoreBody | None = None
) -> Response:
    old_name = (body or FinalizeRestoreBody()).name
    ctx = ctx_of(request)
    with ctx.store.lock:
        project, branch = ctx.project_branch(key_of(request), project_id, branch_id)
        ops = snapshots.finalize_restore(ctx, project, branch, old_name)
        return respond({"operations": serialize.operations(ops, ctx.clock.now())})


@router.get(f"{BRANCH}/backup_schedule")
async def get_backup_schedule(request: Request, project_id: ProjectId, branch_id: BranchId) -> Response:
    ctx = ctx_of(request)
    with ctx.store.lock:
        project, branch = ctx.project_branch(key_of(request), project_id, branch_id)
        items = snapshots.get_schedule(project, branch)
        return respond({"schedule": [serialize.schedule_item(item) for item in items]})


@router.put(f"{BRANCH}/backup_schedule")
async def set_backup_schedule(
    request: Request, project_id: ProjectId, branch_id: BranchId, body: BackupScheduleBody
) -> Response:
    items = body.to_spec()
    ctx = ctx_of(request)
    with ctx.store.lock:
        project, branch = ctx.project_branch(key_of(request), project_id, branch_id)
        snapshots.set_schedule(ctx, project, branch, items)
        return respond({})
