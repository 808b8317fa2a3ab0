"""Projects: regions, what a create makes (default branch, its read_write endpoint, database and
owner role, and the data-plane bootstrap), and delete (a soft delete: ``resources/recovery.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from jambo_emulator.resources import recovery
from jambo_emulator.resources.branches import Created, branch_ready, branch_settled, new_branch_record
from jambo_emulator.resources.context import EmulatorContext
from jambo_emulator.resources.endpoints import add_endpoint
from jambo_emulator.state.errors import ApiError, bad_request, not_found
from jambo_emulator.state.ids import unique
from jambo_emulator.state.records import Database, Project, Role

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
    """Gone from the API at once, recoverable for the window (recovery.py)."""
    with ctx.store.lock:
        recovery.delete_project(ctx, project)
