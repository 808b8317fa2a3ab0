"""Organizations and API keys: the emulator's user belongs to every organization (as admin);
keys are personal, an organization's, or an organization key limited to one project.

Who may see what with a key is ``resources/access.py`` (the context's lookups use it).
"""

from __future__ import annotations

import uuid

from jambo_emulator.resources.access import require_org_access
from jambo_emulator.resources.context import EmulatorContext
from jambo_emulator.state.errors import ApiError, found, not_found
from jambo_emulator.state.records import ApiKey, Organization

#: The email of the emulator's one user (a project shared with it is shared with this address).
USER_EMAIL = "emulator@example.com"


def add_organization(ctx: EmulatorContext, name: str, *, org_id: str | None = None) -> Organization:
    """An organization the emulator's user belongs to (as admin)."""
    store = ctx.store
    with store.lock:
        number = len(store.organizations)
        org_id = org_id or f"org-{ctx.default_org_id[4:]}-{number}"
        now = ctx.clock.now()
        member_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"jambo-emulator:{ctx.owner_id}:{org_id}"))
        org = Organization(org_id, name, now, now, member_id=member_id)
        store.organizations[org_id] = org
        return org


def add_api_key(
    ctx: EmulatorContext, key: str, *, name: str, project_id: str | None = None, org_id: str | None = None
) -> ApiKey:
    """A personal key; an org key (``org_id``); or, with ``project_id``, one limited to that
    project (an org key of the project's organization). Adding a known key returns it unchanged."""
    store = ctx.store
    with store.lock:
        existing = store.api_keys.get(key)
        if existing is not None:
            return existing
        if project_id is not None:
            org_id = store.projects[project_id].org_id
        record = ApiKey(
            id=ctx.ids.integer() + 100_000,
            key=key,
            name=name,
            created_at=ctx.clock.now(),
            created_by=ctx.owner_id,
            project_id=project_id,
            org_id=org_id,
        )
        store.api_keys[key] = record
        store.api_keys_by_id[record.id] = record
        return record


def organization_for(ctx: EmulatorContext, key: ApiKey, org_id: str, what: str) -> Organization:
    """An organization the key may act on (404 unknown, 403 not this key's)."""
    org = found(ctx.store.organizations, org_id, "organization")
    require_org_access(key, org.id, what)
    return org


def visible_organizations(ctx: EmulatorContext, key: ApiKey) -> list[Organization]:
    """All of the user's organizations for a personal key; an organization key's own one."""
    return [o for o in ctx.store.organizations.values() if key.org_id in (None, o.id)]


def check_member(org: Organization, member_id: str) -> None:
    if member_id != org.member_id:
        raise not_found("member")


# -- API keys ------------------------------------------------------------------------------------
def personal_keys(ctx: EmulatorContext) -> list[ApiKey]:
    return [k for k in ctx.store.api_keys.values() if not k.revoked and k.personal]


def org_keys(ctx: EmulatorContext, org_id: str) -> list[ApiKey]:
    return [k for k in ctx.store.api_keys.values() if k.org_id == org_id and not k.revoked]


def create_org_key(ctx: EmulatorContext, org: Organization, name: str, project_id: str | None) -> ApiKey:
    """An organization key, limited to one of the organization's projects when ``project_id``."""
    if project_id is not None:
        project = ctx.store.projects.get(project_id)
        if project is None:
            raise not_found("project")
        if project.org_id != org.id:
            raise ApiError(400, f"project {project.id} does not belong to organization {org.id}")
    return add_api_key(ctx, ctx.ids.api_key(), name=name, org_id=org.id, project_id=project_id)


def revoke_key(ctx: EmulatorContext, key_id: int, *, org_id: str | None = None) -> ApiKey:
    """Revoke a personal key, or (``org_id``) one of that organization's keys; 404 otherwise."""
    record = ctx.store.api_keys_by_id.get(key_id)
    owned = record is not None and (record.org_id == org_id if org_id is not None else record.personal)
    if record is None or record.revoked or not owned:
        raise not_found("API key")
    record.revoked = True
    return record
