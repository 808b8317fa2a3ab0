"""Endpoints (computes): their limits, state machine (init -> active <-> idle), the operations
each change schedules and the data-plane calls behind them, and the inactivity suspend.

Handlers look things up and call these with the store lock held; data-plane calls are only ever
attached to operations (run on the data-plane worker), never made here directly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from jambo_emulator.dataplane.base import DataPlaneError
from jambo_emulator.resources.context import EmulatorContext
from jambo_emulator.state.dataplane_runner import log_failure
from jambo_emulator.state.errors import ApiError, bad_request, not_found
from jambo_emulator.state.ids import endpoint_host, unique
from jambo_emulator.state.records import Branch, Endpoint, Operation, Project, Role


@dataclass
class EndpointSpec:
    """A new compute as a request describes it (names as in the API; ``None``: not given, so the
    project's ``default_endpoint_settings`` or the service default apply)."""

    type: str
    autoscaling_limit_min_cu: float | None = None
    autoscaling_limit_max_cu: float | None = None
    suspend_timeout_seconds: int | None = None
    provisioner: str | None = None
    settings: dict[str, Any] | None = None
    name: str | None = None
    disabled: bool = False
    pooler_enabled: bool = False
    passwordless_access: bool = False
    #: A standalone create names its branch (and may name the project's region); a branch create's
    #: computes belong to the new branch.
    branch_id: str | None = None
    region_id: str | None = None


@dataclass
class EndpointUpdate:
    """What a PATCH names (``None``: not given; these fields reject an explicit null)."""

    autoscaling_limit_min_cu: float | None = None
    autoscaling_limit_max_cu: float | None = None
    suspend_timeout_seconds: int | None = None
    provisioner: str | None = None
    settings: dict[str, Any] | None = None
    name: str | None = None
    disabled: bool | None = None
    pooler_enabled: bool | None = None
    passwordless_access: bool | None = None
    #: The deprecated move of a compute to another branch.
    branch_id: str | None = None


#: Update fields stored as given (when not null) under the same name on the endpoint.
COPIED_ON_UPDATE = (
    "suspend_timeout_seconds",
    "provisioner",
    "disabled",
    "pooler_enabled",
    "passwordless_access",
    "name",
)

MAX_CU = 16.0


MAX_CU_SPREAD = 8.0


def check_compute_units(min_cu: float, max_cu: float) -> None:
    if max_cu > MAX_CU:
        raise bad_request(f"autoscaling_limit_max_cu must be at most {MAX_CU:g}, got {max_cu:g}")
    if min_cu > max_cu:
        raise bad_request(
            f"autoscaling_limit_min_cu ({min_cu:g}) must not exceed autoscaling_limit_max_cu ({max_cu:g})"
        )
    if max_cu - min_cu > MAX_CU_SPREAD:
        raise bad_request(
            f"autoscaling_limit_max_cu - autoscaling_limit_min_cu must be at most {MAX_CU_SPREAD:g}, "
            f"got {max_cu - min_cu:g}"
        )


def add_endpoint(
    ctx: EmulatorContext,
    project: Project,
    branch: Branch,
    type_: str,
    *,
    after: Operation | None,
    min_cu: float = 0.25,
    max_cu: float = 0.25,
    suspend_timeout_seconds: int = 0,
    provisioner: str | None = None,
    settings: dict[str, Any] | None = None,
    name: str | None = None,
    disabled: bool = False,
) -> tuple[Endpoint, Operation]:
    if type_ == "read_write" and any(e.type == "read_write" for e in project.branch_endpoints(branch.id)):
        raise ApiError(409, "read-write endpoint already exists")
    now = ctx.clock.now()
    endpoint = Endpoint(
        id=unique(ctx.ids.endpoint_id, _endpoint_ids(project)),
        project_id=project.id,
        branch_id=branch.id,
        region_id=project.region_id,
        type=type_,
        created_at=now,
        updated_at=now,
        current_state="init",
        pending_state="active",
        min_cu=min_cu,
        max_cu=max_cu,
        suspend_timeout_seconds=suspend_timeout_seconds,
        provisioner=provisioner or project.provisioner,
        settings=settings if settings is not None else {"pg_settings": {}},
        name=name,
        disabled=disabled,
    )
    project.endpoints[endpoint.id] = endpoint
    _reserve_address(ctx, endpoint)
    return endpoint, start_op(ctx, project, endpoint, after=after)


def create_endpoint(ctx: EmulatorContext, project: Project, spec: EndpointSpec) -> tuple[Endpoint, Operation]:
    """``POST /projects/{id}/endpoints``: a compute on an existing branch, in the project's region,
    sized by the request or else the project's defaults; one read_write per branch."""
    branch = project.branches.get(spec.branch_id or "")
    if branch is None:
        raise ApiError(404, "branch not found")
    if spec.region_id is not None and spec.region_id != project.region_id:
        raise bad_request(
            f"invalid endpoint.region_id {spec.region_id!r}: only the project's region "
            f"{project.region_id!r} is permitted"
        )
    defaults = project.default_endpoint_settings
    min_cu = spec.autoscaling_limit_min_cu
    if min_cu is None:
        min_cu = float(defaults.get("autoscaling_limit_min_cu", 0.25))
    max_cu = spec.autoscaling_limit_max_cu
    if max_cu is None:
        max_cu = max(float(defaults.get("autoscaling_limit_max_cu", 0.25)), min_cu)
    check_compute_units(min_cu, max_cu)
    if spec.type == "read_write" and any(e.type == "read_write" for e in project.branch_endpoints(branch.id)):
        raise ApiError(409, "read-write endpoint already exists")
    ctx.check_lock(project)
    suspend = spec.suspend_timeout_seconds
    endpoint, op = add_endpoint(
        ctx,
        project,
        branch,
        spec.type,
        after=None,
        min_cu=min_cu,
        max_cu=max_cu,
        suspend_timeout_seconds=int(defaults.get("suspend_timeout_seconds", 0))
        if suspend is None
        else suspend,
        provisioner=spec.provisioner,
        settings=spec.settings,
        name=spec.name,
        disabled=spec.disabled,
    )
    endpoint.pooler_enabled = spec.pooler_enabled
    endpoint.passwordless_access = spec.passwordless_access
    return endpoint, op


def branch_compute(project: Project, spec: EndpointSpec) -> tuple[float, float, int]:
    """(min CU, max CU, suspend timeout) of a compute made with a new branch: what the request
    gave, else the project's ``default_endpoint_settings``, else the service defaults."""
    given_min, given_max = spec.autoscaling_limit_min_cu, spec.autoscaling_limit_max_cu
    min_cu = given_min if given_min is not None else 0.25
    max_cu = given_max if given_max is not None else max(given_min or 0.25, 0.25)
    suspend = spec.suspend_timeout_seconds or 0
    defaults = project.default_endpoint_settings
    if given_min is None and "autoscaling_limit_min_cu" in defaults:
        min_cu = float(defaults["autoscaling_limit_min_cu"])
    if given_max is None and "autoscaling_limit_max_cu" in defaults:
        max_cu = max(float(defaults["autoscaling_limit_max_cu"]), min_cu)
    if spec.suspend_timeout_seconds is None and "suspend_timeout_seconds" in defaults:
        suspend = int(defaults["suspend_timeout_seconds"])
    return min_cu, max_cu, suspend


def update_endpoint(
    ctx: EmulatorContext, project: Project, endpoint: Endpoint, change: EndpointUpdate
) -> list[Operation]:
    """Resize, reconfigure, rename, (dis)able or move a compute. A running one applies new
    sizes or settings with an ``apply_config``; disabling a running one suspends it."""
    min_cu = endpoint.min_cu if change.autoscaling_limit_min_cu is None else change.autoscaling_limit_min_cu
    max_cu = endpoint.max_cu if change.autoscaling_limit_max_cu is None else change.autoscaling_limit_max_cu
    check_compute_units(min_cu, max_cu)
    moved = change.branch_id is not None and change.branch_id != endpoint.branch_id
    if change.branch_id is not None and moved:
        if change.branch_id not in project.branches:
            raise ApiError(404, "branch not found")
        if endpoint.type == "read_write" and any(
            e.type == "read_write" for e in project.branch_endpoints(change.branch_id)
        ):
            raise ApiError(409, "read-write endpoint already exists")
    ops: list[Operation] = []
    newly_disabled = change.disabled is True and not endpoint.disabled
    if change.branch_id is not None and moved:
        ops = move_endpoint(ctx, project, endpoint, change.branch_id)
    elif newly_disabled and endpoint.current_state == "active":
        ctx.check_lock(project)
        ops = suspend_endpoint(ctx, project, endpoint)
    elif endpoint.current_state == "active" and (
        change.autoscaling_limit_min_cu is not None
        or change.autoscaling_limit_max_cu is not None
        or change.settings is not None
    ):
        ctx.check_lock(project)
        ops = [
            ctx.engine.create(project, "apply_config", branch_id=endpoint.branch_id, endpoint_id=endpoint.id)
        ]
    endpoint.min_cu, endpoint.max_cu = min_cu, max_cu
    if change.settings is not None:
        endpoint.settings = change.settings
    for name in COPIED_ON_UPDATE:
        value = getattr(change, name)
        if value is not None:
            setattr(endpoint, name, value)
    endpoint.updated_at = ctx.clock.now()
    return ops


def delete_endpoint_if_present(
    ctx: EmulatorContext, project: Project, endpoint_id: str
) -> tuple[Endpoint, list[Operation]] | None:
    """``None``: no such endpoint (the service answers 204)."""
    endpoint = project.endpoints.get(endpoint_id)
    if endpoint is None:
        return None
    return endpoint, delete_endpoint(ctx, project, endpoint)


def _endpoint_ids(project: Project) -> set[str]:
    """Ids in use, the computes of deleted branches included (they come back on recovery)."""
    ids = set(project.endpoints)
    for branch in project.deleted_branches.values():
        if branch.deleted is not None:
            ids.update(e.id for e in branch.deleted.endpoints)
    return ids


def _reserve_address(ctx: EmulatorContext, endpoint: Endpoint) -> None:
    """Fix the compute's real address now: the create response's connection URIs then connect
    once ``start_compute`` finishes, as the service's do (until then connections are refused)."""
    try:
        endpoint.address = ctx.data_plane.reserve_endpoint(
            endpoint.project_id,
            endpoint.branch_id,
            endpoint.id,
            host=endpoint_host(endpoint.id, endpoint.region_id),
            read_only=endpoint.type == "read_only",
        )
    except DataPlaneError as exc:  # no free port: the start will pick one and set the address then
        log_failure("reserve_endpoint", exc, endpoint.id)


def start_op(
    ctx: EmulatorContext, project: Project, endpoint: Endpoint, *, after: Operation | None
) -> Operation:
    dp, pid, bid, eid = ctx.data_plane, project.id, endpoint.branch_id, endpoint.id
    # The real-shaped host stays in the URIs; a read-only compute refuses writes for real.
    host, read_only = endpoint_host(eid, endpoint.region_id), endpoint.type == "read_only"

    def started(op: Operation) -> None:
        endpoint.current_state, endpoint.pending_state = "active", None
        endpoint.started_at = endpoint.last_active = endpoint.updated_at = op.updated_at
        if op.effect_result is not None:
            endpoint.address = op.effect_result

    def settled(op: Operation) -> None:
        endpoint.pending_state = None

    return ctx.engine.create(
        project,
        "start_compute",
        branch_id=bid,
        endpoint_id=eid,
        after=after,
        on_finish=started,
        on_fail=settled,
        effect=lambda: dp.start_endpoint(pid, bid, eid, host=host, read_only=read_only),
        effect_name=f"start endpoint {eid}",
    )


def suspend_op(
    ctx: EmulatorContext, project: Project, endpoint: Endpoint, *, after: Operation | None, real: bool = True
) -> Operation:
    """``real`` False: the compute only restarts to apply config; the data plane keeps serving."""
    dp, pid, bid, eid = ctx.data_plane, project.id, endpoint.branch_id, endpoint.id

    def suspended(op: Operation) -> None:
        endpoint.current_state, endpoint.pending_state = "idle", None
        endpoint.suspended_at = endpoint.updated_at = op.updated_at

    def settled(op: Operation) -> None:
        endpoint.pending_state = None

    endpoint.pending_state = "idle"
    return ctx.engine.create(
        project,
        "suspend_compute",
        branch_id=bid,
        endpoint_id=eid,
        after=after,
        on_finish=suspended,
        on_fail=settled,
        effect=(lambda: dp.suspend_endpoint(pid, bid, eid)) if real else None,
        effect_name=f"suspend endpoint {eid}",
    )


def start_endpoint(ctx: EmulatorContext, project: Project, endpoint: Endpoint) -> list[Operation]:
    if endpoint.disabled:
        raise bad_request("endpoint is disabled: enable it (disabled: false) before starting it")
    ctx.check_lock(project)
    endpoint.pending_state = "active"
    return [start_op(ctx, project, endpoint, after=None)]


def suspend_endpoint(ctx: EmulatorContext, project: Project, endpoint: Endpoint) -> list[Operation]:
    if endpoint.pending_state is not None:
        raise ApiError(423, "endpoint is in some transitive state, could not suspend")
    ctx.check_lock(project)
    return [suspend_op(ctx, project, endpoint, after=None)]


def restart_endpoint(ctx: EmulatorContext, project: Project, endpoint: Endpoint) -> list[Operation]:
    if endpoint.disabled:
        raise bad_request("endpoint is disabled: enable it (disabled: false) before restarting it")
    ctx.check_lock(project)
    suspend = suspend_op(ctx, project, endpoint, after=None)
    endpoint.pending_state = "active"
    return [suspend, start_op(ctx, project, endpoint, after=suspend)]


def move_endpoint(
    ctx: EmulatorContext, project: Project, endpoint: Endpoint, branch_id: str
) -> list[Operation]:
    """The deprecated ``branch_id`` update: the compute stops serving the old branch and, if it
    was running, starts again on the new one."""
    ctx.check_lock(project)
    return reassign_endpoint(ctx, project, endpoint, branch_id, after=None)


def reassign_endpoint(
    ctx: EmulatorContext, project: Project, endpoint: Endpoint, branch_id: str, *, after: Operation | None
) -> list[Operation]:
    """The compute serves ``branch_id`` from now on (a stop, then a start if it was running),
    after ``after``; the caller has checked the lock (a restore's finalize moves several)."""
    dp, pid, old_bid, eid = ctx.data_plane, project.id, endpoint.branch_id, endpoint.id
    was_active = endpoint.current_state == "active"

    def stopped(op: Operation) -> None:
        if not was_active:
            endpoint.current_state, endpoint.pending_state = "idle", None

    stop = ctx.engine.create(
        project,
        "suspend_compute",
        branch_id=old_bid,
        endpoint_id=eid,
        after=after,
        on_finish=stopped,
        effect=lambda: dp.delete_endpoint(pid, old_bid, eid),
        effect_name=f"detach endpoint {eid}",
    )
    endpoint.branch_id, endpoint.address = branch_id, None
    if not was_active:
        return [stop]
    endpoint.pending_state = "active"
    return [stop, start_op(ctx, project, endpoint, after=stop)]


def delete_endpoint(ctx: EmulatorContext, project: Project, endpoint: Endpoint) -> list[Operation]:
    ctx.check_lock(project)
    dp, pid, bid, eid = ctx.data_plane, project.id, endpoint.branch_id, endpoint.id
    del project.endpoints[endpoint.id]
    return [
        ctx.engine.create(
            project,
            "suspend_compute",
            branch_id=bid,
            endpoint_id=eid,
            effect=lambda: dp.delete_endpoint(pid, bid, eid),
            effect_name=f"delete endpoint {eid}",
        )
    ]


#: ``suspend_timeout_seconds: 0`` means the service default.
DEFAULT_SUSPEND_TIMEOUT = 300


def suspend_inactive_endpoints(ctx: EmulatorContext) -> int:
    """Active computes idle for ``suspend_timeout_seconds`` are suspended (``-1``: never).

    Activity is not observed here (connections go to the data plane), so a compute counts as idle
    from its last start. Only its state changes: a real compute wakes up on the next connection,
    so the data plane keeps serving.
    """
    now, count = ctx.clock.now(), 0
    with ctx.store.lock:
        for project in ctx.store.projects.values():
            for endpoint in project.endpoints.values():
                timeout = endpoint.suspend_timeout_seconds or DEFAULT_SUSPEND_TIMEOUT
                if (
                    timeout < 0
                    or endpoint.current_state != "active"
                    or endpoint.pending_state is not None
                    or endpoint.last_active is None
                    or now < endpoint.last_active + timeout
                ):
                    continue
                op = suspend_op(ctx, project, endpoint, after=None, real=False)
                op.duration = 0.0
                count += 1
    return count


def connection_target(
    ctx: EmulatorContext,
    project: Project,
    *,
    branch_id: str | None,
    endpoint_id: str | None,
    database_name: str,
    role_name: str,
) -> tuple[Endpoint, Role]:
    """What ``GET .../connection_uri`` connects through: the named compute (of the branch), else
    the branch's read_write one (default: the default branch); 404s for a missing database, role."""
    branch = ctx.branch_in(project, branch_id) if branch_id else project.default_branch()
    endpoint: Endpoint | None
    if endpoint_id:
        endpoint = ctx.endpoint_in(project, endpoint_id)
        if endpoint.branch_id != branch.id:
            raise ApiError(400, f"endpoint {endpoint_id} does not belong to branch {branch.id}")
    else:
        endpoint = next((e for e in project.branch_endpoints(branch.id) if e.type == "read_write"), None)
        if endpoint is None:
            raise ApiError(404, "read-write endpoint not found for this branch")
    if database_name not in branch.databases:
        raise not_found("database")
    role = branch.roles.get(role_name)
    if role is None:
        raise not_found("role")
    return endpoint, role
