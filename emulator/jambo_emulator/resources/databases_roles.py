"""Databases and roles of a branch: what creating, changing or deleting one does (an
``apply_config`` operation, then a restart of a running compute) and the data-plane calls.
"""

from __future__ import annotations

from typing import Any

from jambo_emulator.resources.context import EmulatorContext
from jambo_emulator.resources.endpoints import suspend_op
from jambo_emulator.state.errors import ApiError, bad_request, found
from jambo_emulator.state.records import Branch, Database, Operation, Project, Role


def config_ops(
    ctx: EmulatorContext, project: Project, branch: Branch, effect: Any, effect_name: str
) -> list[Operation]:
    """Role/database changes: ``apply_config`` then, for a running compute, ``suspend_compute``."""
    ctx.check_lock(project)
    endpoints = project.branch_endpoints(branch.id)
    target = next((e for e in endpoints if e.type == "read_write"), endpoints[0] if endpoints else None)
    apply = ctx.engine.create(
        project,
        "apply_config",
        branch_id=branch.id,
        endpoint_id=target.id if target else None,
        effect=effect,
        effect_name=effect_name,
    )
    ops = [apply]
    if target is not None and target.current_state == "active" and target.pending_state is None:
        ops.append(suspend_op(ctx, project, target, after=apply, real=False))
    return ops


# -- databases -------------------------------------------------------------------------------------
def create_database(
    ctx: EmulatorContext, project: Project, branch: Branch, name: str, owner: str
) -> tuple[Database, list[Operation]]:
    """A new database owned by one of the branch's roles (409 for a taken name)."""
    if name in branch.databases:
        raise ApiError(409, "database already exists")
    _check_owner(branch, owner)
    dp, pid, bid = ctx.data_plane, project.id, branch.id
    ops = config_ops(
        ctx, project, branch, lambda: dp.create_database(pid, bid, name, owner), f"create database {name}"
    )
    now = ctx.clock.now()
    database = Database(ctx.ids.integer(), branch.id, name, owner, now, now)
    branch.databases[name] = database
    return database, ops


def update_database(
    ctx: EmulatorContext,
    project: Project,
    branch: Branch,
    database_name: str,
    *,
    name: str | None,
    owner: str | None,
) -> tuple[Database, list[Operation]]:
    """Rename and/or hand to another role of the branch."""
    database = found(branch.databases, database_name, "database")
    if name is not None and name != database_name and name in branch.databases:
        raise ApiError(409, "database already exists")
    if owner is not None:
        _check_owner(branch, owner)
    new_name = name if name not in (None, database_name) else None
    new_owner = owner if owner not in (None, database.owner_name) else None
    dp, pid, bid = ctx.data_plane, project.id, branch.id
    # The real database is renamed (its sessions end, as the compute's restart ends them) and
    # handed to the new owner; the URIs the API builds from the new name then reach it.
    ops = config_ops(
        ctx,
        project,
        branch,
        (lambda: dp.update_database(pid, bid, database_name, new_name=new_name, owner=new_owner))
        if new_name is not None or new_owner is not None
        else None,
        f"update database {database_name}",
    )
    if name is not None and name != database_name:
        del branch.databases[database_name]
        database.name = name
        branch.databases[name] = database
    if owner is not None:
        database.owner_name = owner
    database.updated_at = ctx.clock.now()
    return database, ops


def delete_database(
    ctx: EmulatorContext, project: Project, branch: Branch, database_name: str
) -> tuple[Database, list[Operation]] | None:
    """``None``: no such database (the service answers 204)."""
    database = branch.databases.get(database_name)
    if database is None:
        return None
    dp, pid, bid = ctx.data_plane, project.id, branch.id
    ops = config_ops(
        ctx,
        project,
        branch,
        lambda: dp.delete_database(pid, bid, database_name),
        f"delete database {database_name}",
    )
    del branch.databases[database_name]
    return database, ops


def _check_owner(branch: Branch, owner: str) -> None:
    if owner not in branch.roles:
        raise bad_request(f"invalid database.owner_name: role {owner!r} does not exist on this branch")


# -- roles -----------------------------------------------------------------------------------------
def create_role(
    ctx: EmulatorContext, project: Project, branch: Branch, name: str, *, no_login: bool = False
) -> tuple[Role, list[Operation]]:
    """A new role with a generated password (409 for a taken name)."""
    if name in branch.roles:
        raise ApiError(409, "role already exists")
    now = ctx.clock.now()
    role = Role(branch.id, name, ctx.ids.password(), now, now, no_login=no_login)
    dp, pid, bid, password = ctx.data_plane, project.id, branch.id, role.password
    ops = config_ops(
        ctx, project, branch, lambda: dp.create_role(pid, bid, name, password), f"create role {name}"
    )
    branch.roles[name] = role
    return role, ops


def delete_role(
    ctx: EmulatorContext, project: Project, branch: Branch, role_name: str
) -> tuple[Role, list[Operation]] | None:
    """``None``: no such role (204). A role that owns databases stays (400)."""
    role = branch.roles.get(role_name)
    if role is None:
        return None
    owned = [d.name for d in branch.databases.values() if d.owner_name == role_name]
    if owned:
        raise bad_request(f"role {role_name!r} owns database(s) {', '.join(owned)}: delete them first")
    dp, pid, bid = ctx.data_plane, project.id, branch.id
    ops = config_ops(
        ctx, project, branch, lambda: dp.delete_role(pid, bid, role_name), f"delete role {role_name}"
    )
    del branch.roles[role_name]
    return role, ops


def reveal_password(project: Project, branch: Branch, role_name: str) -> str:
    """412 when the project does not store passwords."""
    role = found(branch.roles, role_name, "role")
    if not project.store_passwords:
        raise ApiError(412, "storing passwords is disabled for this project")
    return role.password


def reset_password(
    ctx: EmulatorContext, project: Project, branch: Branch, role_name: str
) -> tuple[Role, list[Operation]]:
    """A new generated password, set in the data plane by the ``apply_config`` operation."""
    role = found(branch.roles, role_name, "role")
    password = ctx.ids.password()
    dp, pid, bid = ctx.data_plane, project.id, branch.id
    ops = config_ops(
        ctx,
        project,
        branch,
        lambda: dp.set_role_password(pid, bid, role_name, password),
        f"reset password of role {role_name}",
    )
    role.password, role.updated_at = password, ctx.clock.now()
    return role, ops
