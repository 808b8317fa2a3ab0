"""Soft deletes and recovery of projects and branches: every rule of the recovery window here.

The spec: a deleted project (``DELETE /projects/{id}``) or branch (``DELETE .../branches/{id}``
without ``hard_delete``, or by its TTL) "can be recovered within 7 days" (``POST .../recover``);
``GET /projects?recoverable=true`` and ``GET .../branches?include_deleted=true`` list them.
Recovery restores "branches, endpoints, settings, and connection strings"; a recovered branch's
endpoints are idle and "TTL branches become non-TTL branches after recovery".

While deleted, a resource is gone from every other operation (404, and a DELETE answers 204), its
real data is detached in the data plane (kept, unreachable) and dropped once the window ends on the
emulator's clock (``purge_expired``, from the background tick) or on reset.
"""

from __future__ import annotations

from jambo_emulator.resources.access import can_see
from jambo_emulator.resources.context import EmulatorContext
from jambo_emulator.state.errors import ApiError, bad_request, not_found
from jambo_emulator.state.ids import endpoint_host
from jambo_emulator.state.records import ApiKey, Branch, Deletion, Endpoint, Project

#: "within the 7-day deletion recovery period" (recoverProject, recoverProjectBranch).
RECOVERY_WINDOW_SECONDS = 7 * 86400


def _deletion(
    ctx: EmulatorContext, method: str = "user", endpoints: list[Endpoint] | None = None
) -> Deletion:
    now = ctx.clock.now()
    return Deletion(now, now + RECOVERY_WINDOW_SECONDS, method, list(endpoints or []))


def recoverable(deleted: Deletion | None, now: float) -> bool:
    return deleted is not None and now < deleted.until


# -- branches ------------------------------------------------------------------------------------
def keep_deleted_branch(
    ctx: EmulatorContext, project: Project, branch: Branch, endpoints: list[Endpoint], *, by_ttl: bool
) -> None:
    """The API side of a soft delete (the caller schedules the data plane's ``detach_branch``)."""
    branch.deleted = _deletion(ctx, "ttl" if by_ttl else "user", endpoints)
    project.deleted_branches[branch.id] = branch


def recover_branch(ctx: EmulatorContext, project: Project, branch_id: str) -> Branch:
    """Back as it was deleted, except: no TTL, its computes idle. Caller holds the store lock."""
    now = ctx.clock.now()
    if branch_id in project.branches:
        raise bad_request(f"branch {branch_id} is not deleted: there is nothing to recover")
    branch = project.deleted_branches.get(branch_id)
    if branch is None or not recoverable(branch.deleted, now):
        raise not_found("branch")  # never deleted, hard-deleted, or past its recovery window
    if branch.parent_id is not None and branch.parent_id not in project.branches:
        if branch.parent_id in project.deleted_branches:
            raise bad_request(
                f"the parent branch {branch.parent_id} of branch {branch_id} is deleted: recover it first"
            )
        raise bad_request(f"the parent branch {branch.parent_id} of branch {branch_id} no longer exists")
    if project.branch_by_name(branch.name) is not None:
        raise ApiError(
            409,
            f"branch already exists: another branch is now named {branch.name!r}; rename it, then recover",
        )
    ctx.check_lock(project)
    assert branch.deleted is not None
    endpoints = branch.deleted.endpoints
    del project.deleted_branches[branch_id]
    branch.deleted = None
    branch.expires_at = branch.ttl_interval_seconds = None
    branch.updated_at = now
    project.branches[branch_id] = branch
    for endpoint in endpoints:
        _idle(endpoint, now)
        project.endpoints[endpoint.id] = endpoint
    _reattach(ctx, project.id, [branch_id], endpoints)
    return branch


def purge_branch(ctx: EmulatorContext, project: Project, branch_id: str) -> None:
    """Gone for good (window over, or a hard delete of a deleted branch)."""
    if project.deleted_branches.pop(branch_id, None) is not None:
        dp, pid = ctx.data_plane, project.id
        ctx.engine.run_detached(lambda: dp.delete_branch(pid, branch_id), f"purge branch {branch_id}")


def _idle(endpoint: Endpoint, now: float) -> None:
    endpoint.current_state, endpoint.pending_state = "idle", None
    endpoint.suspended_at = endpoint.updated_at = now


def _reattach(
    ctx: EmulatorContext, project_id: str, branch_ids: list[str], endpoints: list[Endpoint]
) -> None:
    """Queue the data-plane side of a recovery: the kept data is the branches' again and their
    computes accept connections. Their API state stays ``idle``: "connection strings remain valid
    after recovery", and a real idle compute wakes on the first connection (the emulator has no
    wake-up, so it serves, as it does for a compute suspended by inactivity). FIFO on the worker:
    after the delete's own detach, before any later operation's call."""
    dp = ctx.data_plane
    computes = [
        (e.branch_id, e.id, endpoint_host(e.id, e.region_id), e.type == "read_only")
        for e in endpoints
        if not e.disabled
    ]

    def reattach() -> None:
        for branch_id in branch_ids:
            dp.attach_branch(project_id, branch_id)
        for branch_id, endpoint_id, host, read_only in computes:
            dp.start_endpoint(project_id, branch_id, endpoint_id, host=host, read_only=read_only)

    ctx.engine.run_detached(reattach, f"recover {project_id} {' '.join(branch_ids)}")


# -- projects ------------------------------------------------------------------------------------
def delete_project(ctx: EmulatorContext, project: Project) -> None:
    """Gone from the API at once; its data detached (kept) until the window ends. Its operations
    still in flight carry on (a recovered project has them finished). Caller holds the lock."""
    store = ctx.store
    store.projects.pop(project.id, None)
    project.deleted = _deletion(ctx)
    store.deleted_projects[project.id] = project
    dp, pid, branch_ids = ctx.data_plane, project.id, list(project.branches)

    def detach() -> None:
        for branch_id in branch_ids:
            dp.detach_branch(pid, branch_id)

    ctx.engine.run_detached(detach, f"delete project {pid}")


def deleted_project_for(ctx: EmulatorContext, key: ApiKey, project_id: str) -> Project:
    """A recoverable deleted project the key may see; 404 (as for any unknown project) otherwise,
    400 for a project that is not deleted. Caller holds the store lock."""
    live = ctx.store.projects.get(project_id)
    if live is not None and can_see(key, live):
        raise bad_request(f"project {project_id} is not deleted: there is nothing to recover")
    project = ctx.store.deleted_projects.get(project_id)
    if project is None or not can_see(key, project) or not recoverable(project.deleted, ctx.clock.now()):
        raise not_found("project")
    return project


def check_not_deleted(ctx: EmulatorContext, key: ApiKey, project_id: str) -> None:
    """410 for a deleted (still recoverable) project the key may see, for the operations whose
    spec lists "410: The project has been deleted"; the others answer 404 as for any unknown
    project. Caller holds the store lock."""
    project = ctx.store.deleted_projects.get(project_id)
    if project is not None and can_see(key, project) and recoverable(project.deleted, ctx.clock.now()):
        raise ApiError(
            410, f"project {project_id} has been deleted (POST /projects/{project_id}/recover brings it back)"
        )


def recover_project(ctx: EmulatorContext, project: Project) -> None:
    """Back with its branches, endpoints (idle), settings and connection strings; the branches
    deleted before it stay deleted (and recoverable). Caller holds the store lock."""
    now = ctx.clock.now()
    store = ctx.store
    del store.deleted_projects[project.id]
    project.deleted = None
    project.updated_at = now
    store.projects[project.id] = project
    # Back in creation order: the project list pages by it.
    store.projects = dict(sorted(store.projects.items(), key=lambda item: item[1].seq))
    endpoints = list(project.endpoints.values())
    for endpoint in endpoints:
        _idle(endpoint, now)
    _reattach(ctx, project.id, list(project.branches), endpoints)


def deleted_projects(ctx: EmulatorContext) -> list[Project]:
    """The recoverable ones, in creation order (the list's cursor order)."""
    now = ctx.clock.now()
    found = [p for p in ctx.store.deleted_projects.values() if recoverable(p.deleted, now)]
    return sorted(found, key=lambda p: p.seq)


def _drop_project_data(ctx: EmulatorContext, project_id: str) -> None:
    dp = ctx.data_plane
    ctx.engine.run_detached(lambda: dp.delete_project(project_id), f"purge project {project_id}")


# -- the end of the window -----------------------------------------------------------------------
def purge_expired(ctx: EmulatorContext) -> int:
    """The background job: what was deleted longer ago than the window goes for good."""
    now, count = ctx.clock.now(), 0
    with ctx.store.lock:
        for project in list(ctx.store.deleted_projects.values()):
            if not recoverable(project.deleted, now):
                del ctx.store.deleted_projects[project.id]
                ctx.engine.forget_project(project.id)
                _drop_project_data(ctx, project.id)
                count += 1
        for project in (*ctx.store.projects.values(), *ctx.store.deleted_projects.values()):
            for branch in list(project.deleted_branches.values()):
                if not recoverable(branch.deleted, now):
                    purge_branch(ctx, project, branch.id)
                    count += 1
    return count
