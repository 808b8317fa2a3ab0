"""API keys: personal keys see every project of the user, organization keys the org's projects,
project-scoped keys (org keys limited to one project) that one project."""

from __future__ import annotations

from jambo_emulator.state.errors import ApiError
from jambo_emulator.state.records import ApiKey, Project
from jambo_emulator.state.store import Store

_BEARER = "bearer "


def authenticate(store: Store, authorization: str | None) -> ApiKey:
    """The key behind an ``Authorization: Bearer <key>`` header, or a 401."""
    if not authorization:
        raise ApiError(401, "authentication required: missing Authorization header (Bearer API key)")
    if authorization[:7].lower() != _BEARER:
        raise ApiError(401, "authentication failed: Authorization header must be 'Bearer <API key>'")
    key = store.api_keys.get(authorization[7:].strip())
    if key is None or key.revoked:
        raise ApiError(401, "authentication failed: unknown or revoked API key")
    return key


def can_see(key: ApiKey, project: Project) -> bool:
    if key.project_id is not None:
        return key.project_id == project.id
    return key.org_id is None or key.org_id == project.org_id


def require_personal(key: ApiKey, what: str) -> None:
    """Account-level actions need a personal key."""
    if key.project_id is not None:
        raise ApiError(403, f"a project-scoped API key cannot {what}")
    if key.org_id is not None:
        raise ApiError(403, f"an organization API key cannot {what}")


def require_org_access(key: ApiKey, org_id: str, what: str) -> None:
    """Organization actions: a personal key (the user is a member) or that org's own key."""
    if key.project_id is not None:
        raise ApiError(403, f"a project-scoped API key cannot {what}")
    if key.org_id is not None and key.org_id != org_id:
        raise ApiError(403, f"an API key of another organization cannot {what}")
