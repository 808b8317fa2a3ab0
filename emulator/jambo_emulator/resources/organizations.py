"""Organizations and API keys: the emulator's user belongs to every organization (as admin);
keys are personal, an organization's, or an organization key limited to one project.

Who may see what with a key is ``resources/access.py`` (the context's lookups use it).
"""

from __future__ import annotations

import uuid

from jambo_emulator.resources.context import EmulatorContext
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
