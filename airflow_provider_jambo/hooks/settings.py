"""JamboSettings: what a ``jambo`` connection says, validated (host, key, extras).

Read by :meth:`JamboHook.load`/``aload``; nothing here looks a connection up or sends anything.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_jambo.exceptions import ApiTarget, JamboConfigError
from airflow_provider_jambo.hooks.budget import (
    DEFAULT_REQUESTS_PER_MINUTE,
    RequestBudget,
    budget_for,
    check_requests_per_minute,
)
from airflow_provider_jambo.hooks.client import check_api_key, normalize_base_url
from airflow_provider_jambo.hooks.retry import RetryPolicy
from airflow_provider_jambo.rules import check_id, seconds

#: The Airflow connection type of the Jambo API (its password is the API key).
CONN_TYPE = "jambo"
DEFAULT_TIMEOUT = 30.0
MAX_CONNECT_TIMEOUT = 10.0


@dataclass(frozen=True)
class JamboSettings:
    """What the connection says, validated. The key is hidden from repr."""

    conn_id: str
    base_url: str
    api_key: str = field(repr=False)
    project_id: str | None = None
    org_id: str | None = None
    timeout: float = DEFAULT_TIMEOUT
    retry_policy: RetryPolicy = field(default_factory=RetryPolicy)
    requests_per_minute: float = DEFAULT_REQUESTS_PER_MINUTE
    #: The connection has no host, so ``base_url`` is the service's public URL.
    default_url: bool = False

    @property
    def target(self) -> ApiTarget:
        """Where this connection's requests go, as errors name it."""
        return ApiTarget(self.conn_id, self.base_url, self.default_url)

    @property
    def budget(self) -> RequestBudget:
        """The process's request budget for this account (shared by every hook on it)."""
        return budget_for(self.base_url, self.api_key, self.requests_per_minute)

    @classmethod
    def from_connection(cls, conn: Any, extras: Mapping[str, Any], conn_id: str = "") -> JamboSettings:
        conn_id = conn_id or str(getattr(conn, "conn_id", "") or "")
        # Before anything else: another type's password must never travel as a bearer token.
        conn_type = getattr(conn, "conn_type", None)
        if conn_type != CONN_TYPE:
            raise JamboConfigError(
                f"connection {conn_id!r} has conn_type {conn_type!r}; the Jambo hook needs a connection "
                f"of type {CONN_TYPE!r} (its password is sent as the API key)"
            )
        # A key pasted with a trailing newline is still the key.
        api_key = (conn.password or "").strip()
        if not api_key:
            raise JamboConfigError(
                f"connection {conn_id!r} has no API key: put the Jambo API key in its password field "
                "('API key' in the connection form)"
            )
        check_api_key(api_key, conn_id=conn_id)
        base_url = normalize_base_url(conn.host, port=conn.port, schema=conn.schema, conn_id=conn_id)
        project_id = extras.get("project_id") or None
        if project_id is not None:
            try:
                check_id("project_id", project_id)
            except JamboConfigError as err:
                raise JamboConfigError(f"connection {conn_id!r}: extra {err}") from None
        timeout = DEFAULT_TIMEOUT
        if extras.get("timeout") not in (None, ""):
            try:
                timeout = seconds("extra timeout", extras["timeout"], allow_text=True)
            except JamboConfigError as err:
                raise JamboConfigError(f"connection {conn_id!r}: {err}") from None
        requests_per_minute = DEFAULT_REQUESTS_PER_MINUTE
        if extras.get("requests_per_minute") not in (None, ""):
            requests_per_minute = check_requests_per_minute(extras["requests_per_minute"], conn_id=conn_id)
        return cls(
            requests_per_minute=requests_per_minute,
            conn_id=conn_id,
            base_url=base_url,
            default_url=not (conn.host or "").strip(),
            api_key=api_key,
            project_id=project_id,
            org_id=extras.get("org_id") or None,
            timeout=timeout,
            retry_policy=RetryPolicy.from_connection_extras(extras, conn_id),
        )


def connection_extras(conn: Any, conn_id: str) -> Mapping[str, Any]:
    """The connection's extras; refused when they are not a JSON object (Airflow would log a
    traceback, ignore them and let the call go out without them)."""
    text = getattr(conn, "extra", None)
    if not text:
        return {}
    try:
        extras = json.loads(text)
    except ValueError:
        extras = None
    if not isinstance(extras, Mapping):
        raise JamboConfigError(
            f"connection {conn_id!r}: extra must be a JSON object such as "
            '{"project_id": "old-violet-32930710"}; it is not (its text is not shown, it may hold secrets)'
        )
    return extras
