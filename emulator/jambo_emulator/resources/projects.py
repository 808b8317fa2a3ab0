"""Projects: regions, what a create makes (default branch, its read_write endpoint, database and
owner role, and the data-plane bootstrap), and delete (a soft delete: ``resources/recovery.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from jambo_emulator.resources import recovery
from jambo_emulator.resources.access import can_see
from jambo_emulator.resources.branches import Created, branch_ready, branch_settled, new_branch_record
from jambo_emulator.resources.context import EmulatorContext
from jambo_emulator.resources.endpoints import add_endpoint, check_compute_units
from jambo_emulator.resources.organizations import USER_EMAIL
from jambo_emulator.state.errors import ApiError, bad_request, not_found
from jambo_emulator.state.ids import unique
from jambo_emulator.state.records import ApiKey, Database, Permission, Project, Role

REGIONS = (
    ("aws-us-east-1", "AWS US East 1 (N. Virginia)", "38.9", "-77.4"),
    ("aws-us-east-2", "AWS US East 2 (Ohio)", "40.4", "-82.9"),
    ("aws-us-west-2", "AWS US West 2 (Oregon)", "45.5", "-122.6"),
    ("aws-eu-central-1", "AWS Europe Central 1 (Frankfurt)", "50.1", "8.7"),
    ("aws-eu-west-2", "AWS Europe West 2 (London)", "51.5", "-0.1"),
    ("aws-ap-southeast-1", "AWS Asia Pacific 1 (Singapore)", "1.3", "103.8"),
    ("aws-ap-southeast-2", "AWS Asia Pacific 2 (Sydney)", "-33.9", "151.2"),
    ("azure-eastus2", "Azure East US 2 (Virginia)", "36.7", "-78.4"),
)


REGION_IDS = tuple(r[0] for r in REGIONS)


@dataclass
class ProjectSpec:
    name: str | None = None
    region_id: str | None = None
    pg_version: int = 17
    branch_name: str = "main"
    role_name: str | None = None
    database_name: str = "neondb"
    org_id: str | None = None
    store_passwords: bool = True
    history_retention_seconds: int = 86400
    settings: dict[str, Any] = field(default_factory=dict)
    default_endpoint_settings: dict[str, Any] = field(default_factory=dict)
    annotations: dict[str, str] | None = None


def create_project(ctx: EmulatorContext, spec: ProjectSpec, project_id: str | None = None) -> Created:
    """A project with its default branch, one read_write endpoint, a database and its owner role."""
    store, now = ctx.store, ctx.clock.now()
    region_id = spec.region_id or ctx.config.region_id
    if region_id not in REGION_IDS:
        raise bad_request(f"invalid region_id {region_id!r}: must be one of {', '.join(REGION_IDS)}")
    org_id = spec.org_id or ctx.default_org_id
    if org_id not in store.organizations:
        raise not_found("organization")
    with store.lock:
        pid = project_id or unique(ctx.ids.project_id, store.project_seq)
        if pid in store.projects:
            raise ApiError(409, "project already exists")
        project = Project(
            id=pid,
            name=spec.name or pid,
            region_id=region_id,
            pg_version=spec.pg_version,
            created_at=now,
            updated_at=now,
            seq=store.next_seq(),
            owner_id=ctx.owner_id,
            org_id=org_id,
            store_passwords=spec.store_passwords,
            history_retention_seconds=spec.history_retention_seconds,
            settings=spec.settings,
            default_endpoint_settings=spec.default_endpoint_settings,
        )
        store.projects[pid] = project
        store.project_seq[pid] = project.seq
        branch = new_branch_record(ctx, project, spec.branch_name, parent=None, now=now)
        branch.default = True
        if spec.annotations:
            branch.annotation, branch.annotation_created_at = dict(spec.annotations), now
        role_name = spec.role_name or f"{spec.database_name}_owner"
        role = Role(branch.id, role_name, ctx.ids.password(), now, now)
        branch.roles[role.name] = role
        db = Database(ctx.ids.integer(), branch.id, spec.database_name, role.name, now, now)
        branch.databases[db.name] = db
        dp = ctx.data_plane

        def bootstrap_data() -> None:
            dp.create_branch(pid, branch.id, None)
            dp.create_role(pid, branch.id, role.name, role.password)
            dp.create_database(pid, branch.id, db.name, role.name)

        timeline = ctx.engine.create(
            project,
            "create_timeline",
            branch_id=branch.id,
            on_finish=branch_ready(project, branch),
            on_fail=branch_settled(branch),
            effect=bootstrap_data,
            effect_name="create project data",
        )
        defaults = spec.default_endpoint_settings
        endpoint, start = add_endpoint(
            ctx,
            project,
            branch,
            "read_write",
            after=timeline,
            min_cu=float(defaults.get("autoscaling_limit_min_cu", 0.25)),
            max_cu=float(defaults.get("autoscaling_limit_max_cu", 0.25)),
            suspend_timeout_seconds=int(defaults.get("suspend_timeout_seconds", 0)),
        )
        return Created(project, branch, [endpoint], [timeline, start])


def delete_project(ctx: EmulatorContext, project: Project) -> None:
    """Gone from the API at once, recoverable for the window (``resources/recovery.py``)."""
    with ctx.store.lock:
        recovery.delete_project(ctx, project)


def create_project_for(ctx: EmulatorContext, key: ApiKey, spec: ProjectSpec) -> Created:
    """``POST /projects``: who may create where, the compute defaults the new project's computes
    get (checked as any compute's sizes), then ``create_project``."""
    if key.project_id is not None:
        raise ApiError(403, "a project-scoped API key cannot create projects")
    if key.org_id is not None and spec.org_id not in (None, key.org_id):
        raise ApiError(403, "an organization API key creates projects in its own organization only")
    spec.org_id = spec.org_id or key.org_id
    defaults = spec.default_endpoint_settings
    min_cu = float(defaults.get("autoscaling_limit_min_cu", 0.25))
    max_cu = float(defaults.get("autoscaling_limit_max_cu", max(min_cu, 0.25)))
    check_compute_units(min_cu, max_cu)
    defaults["autoscaling_limit_min_cu"], defaults["autoscaling_limit_max_cu"] = min_cu, max_cu
    if spec.role_name is None and len(f"{spec.database_name}_owner") > 63:
        raise bad_request("invalid project.branch.role_name: the default role name would exceed 63 bytes")
    with ctx.store.lock:
        return create_project(ctx, spec)


@dataclass
class ProjectUpdate:
    """What a PATCH names (``None``: not given)."""

    name: str | None = None
    settings: dict[str, Any] | None = None
    #: Merged into the current defaults.
    default_endpoint_settings: dict[str, Any] | None = None
    history_retention_seconds: int | None = None


def update_project(ctx: EmulatorContext, project: Project, change: ProjectUpdate) -> None:
    if change.name is not None:
        project.name = change.name
    if change.settings is not None:
        project.settings = change.settings
    if change.default_endpoint_settings is not None:
        merged = {**project.default_endpoint_settings, **change.default_endpoint_settings}
        check_compute_units(
            float(merged.get("autoscaling_limit_min_cu", 0.25)),
            float(merged.get("autoscaling_limit_max_cu", 0.25)),
        )
        project.default_endpoint_settings = merged
    if change.history_retention_seconds is not None:
        project.history_retention_seconds = change.history_retention_seconds
    project.updated_at = ctx.clock.now()


def list_projects(
    ctx: EmulatorContext,
    key: ApiKey,
    *,
    cursor: str | None,
    limit: int,
    search: str | None,
    keep: Callable[[Project], bool],
    deleted: bool = False,
) -> list[Project]:
    """Oldest first, after the project named by ``cursor`` (the last item's id of the previous
    page, valid even once that project is gone). ``deleted``: the recoverable deleted projects
    instead of the live ones."""
    after = 0
    if cursor:
        if cursor not in ctx.store.project_seq:
            raise bad_request("invalid cursor: pass pagination.cursor from a previous response unchanged")
        after = ctx.store.project_seq[cursor]
    needle = search.lower() if search else None
    items: list[Project] = []
    candidates = recovery.deleted_projects(ctx) if deleted else ctx.store.projects.values()
    for project in candidates:  # in creation order
        if project.seq <= after or not can_see(key, project) or not keep(project):
            continue
        if needle and needle not in project.name.lower() and needle not in project.id:
            continue
        items.append(project)
        if len(items) == limit:
            break
    return items


def shared_with_user(project: Project) -> bool:
    """Shared with the emulator's user: a live permission for its email."""
    return any(p.email.lower() == USER_EMAIL and p.revoked_at is None for p in project.permissions.values())


# -- permissions ---------------------------------------------------------------------------------
def live_permissions(project: Project) -> list[Permission]:
    return [p for p in project.permissions.values() if p.revoked_at is None]


def grant_permission(ctx: EmulatorContext, project: Project, email: str) -> Permission:
    """Granting twice changes nothing (the existing grant is returned)."""
    email = email.lower()
    for existing in live_permissions(project):
        if existing.email == email:
            return existing
    permission = Permission(str(ctx.ids.operation_id()), email, ctx.clock.now())
    project.permissions[permission.id] = permission
    return permission


def revoke_permission(ctx: EmulatorContext, project: Project, permission_id: str) -> Permission:
    """Kept, with the time of the revocation; 404 for an unknown or already revoked one."""
    permission = project.permissions.get(permission_id)
    if permission is None or permission.revoked_at is not None:
        raise not_found("permission")
    permission.revoked_at = ctx.clock.now()
    return permission
