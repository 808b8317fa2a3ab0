"""API keys: personal keys see every project, project-scoped keys see one."""

from __future__ import annotations

from airflow_provider_jambo.emulator.errors import ApiError
from airflow_provider_jambo.emulator.store import ApiKey, Store

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


def can_see(key: ApiKey, project_id: str) -> bool:
    return key.project_id is None or key.project_id == project_id


def require_personal(key: ApiKey, what: str) -> None:
    """Account-level actions are not available to a key limited to one project."""
    if key.project_id is not None:
        raise ApiError(403, f"a project-scoped API key cannot {what}")
