"""Checks of the hook's arguments, and the request bodies built from them.

Pure functions with no I/O: every one raises :class:`JamboConfigError` naming the argument and
what it allows, so bad input fails before any request is sent. The limits are the service's
(``jambo-api-behaviour.md``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

from airflow_provider_jambo.exceptions import JamboConfigError
from airflow_provider_jambo.hooks.client import check_id
from airflow_provider_jambo.models import SCHEMA_ONLY, parse_datetime

ENDPOINT_TYPES = ("read_write", "read_only")
INIT_SOURCES = ("parent-data", SCHEMA_ONLY)
#: Postgres identifiers are at most 63 bytes.
ROLE_NAME_MAX = 63
MIN_CU, MAX_CU, MAX_CU_SPREAD = 0.25, 16.0, 8.0
SUSPEND_TIMEOUT_RANGE = (-1, 604800)
MAX_EXPIRY = timedelta(days=30)


def rfc3339(name: str, value: datetime | str) -> str:
    """RFC 3339 with a time zone, seconds precision (what the API accepts for timestamps)."""
    if isinstance(value, str):
        parsed = parse_datetime(value)
        has_zone = value.strip().endswith(("Z", "z")) or "+" in value[10:] or "-" in value[10:]
        if parsed is None or not has_zone:
            raise JamboConfigError(
                f"{name} must be an RFC 3339 timestamp with a time zone, e.g. 2025-06-09T18:02:16Z; "
                f"got {value!r}"
            )
        value = parsed
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise JamboConfigError(f"{name} must be a timezone-aware datetime or RFC 3339 string, got {value!r}")
    return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def check_expiry(value: datetime | str, now: datetime) -> str:
    text = rfc3339("expires_at", value)
    when = datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    if when <= now:
        raise JamboConfigError(f"expires_at must be in the future, got {text}")
    if when - now > MAX_EXPIRY:
        raise JamboConfigError(f"expires_at must be at most 30 days ahead, got {text}")
    return text


def check_compute(min_cu: float | None, max_cu: float | None, suspend_timeout_seconds: int | None) -> None:
    for name, value in (("min_cu", min_cu), ("max_cu", max_cu)):
        if value is not None and not MIN_CU <= value <= MAX_CU:
            raise JamboConfigError(f"{name} must be between {MIN_CU} and {MAX_CU} compute units, got {value}")
    if min_cu is not None and max_cu is not None:
        if max_cu < min_cu:
            raise JamboConfigError(f"max_cu ({max_cu}) must be >= min_cu ({min_cu})")
        if max_cu - min_cu > MAX_CU_SPREAD:
            raise JamboConfigError(f"max_cu - min_cu must be at most {MAX_CU_SPREAD}, got {max_cu - min_cu}")
    if suspend_timeout_seconds is not None:
        low, high = SUSPEND_TIMEOUT_RANGE
        if not low <= suspend_timeout_seconds <= high:
            raise JamboConfigError(
                f"suspend_timeout_seconds must be between {low} (never) and {high}, "
                f"got {suspend_timeout_seconds}"
            )


def endpoint_body(
    min_cu: float | None, max_cu: float | None, suspend_timeout_seconds: int | None
) -> dict[str, Any]:
    check_compute(min_cu, max_cu, suspend_timeout_seconds)
    body: dict[str, Any] = {}
    if min_cu is not None:
        body["autoscaling_limit_min_cu"] = min_cu
    if max_cu is not None:
        body["autoscaling_limit_max_cu"] = max_cu
    if suspend_timeout_seconds is not None:
        body["suspend_timeout_seconds"] = suspend_timeout_seconds
    return body


def check_name(kind: str, value: object, max_len: int = 256) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > max_len:
        raise JamboConfigError(
            f"{kind} must be a non-empty string of at most {max_len} characters, got {value!r}"
        )
    return value


def point_in_time(prefix: str, lsn: str | None, timestamp: datetime | str | None) -> dict[str, str]:
    """``{prefix}_lsn`` or ``{prefix}_timestamp`` (never both) of a branch create or restore."""
    if lsn is not None and timestamp is not None:
        raise JamboConfigError(f"give {prefix}_lsn or {prefix}_timestamp, not both")
    if lsn is not None:
        return {f"{prefix}_lsn": check_name(f"{prefix}_lsn", lsn)}
    if timestamp is not None:
        return {f"{prefix}_timestamp": rfc3339(f"{prefix}_timestamp", timestamp)}
    return {}


def branch_create_body(
    name: str | None,
    parent_id: str | None,
    parent_lsn: str | None,
    parent_timestamp: datetime | str | None,
    init_source: str | None,
    protected: bool | None,
    expires_at: datetime | str | None,
    endpoints: Sequence[Mapping[str, Any]] | None,
    annotations: Mapping[str, str] | None,
) -> dict[str, Any]:
    branch: dict[str, Any] = {}
    if name is not None:
        branch["name"] = check_name("branch name", name)
    if parent_id is not None:
        branch["parent_id"] = check_id("parent_id", parent_id)
    branch.update(point_in_time("parent", parent_lsn, parent_timestamp))
    if init_source is not None:
        if init_source not in INIT_SOURCES:
            raise JamboConfigError(f"init_source must be one of {INIT_SOURCES}, got {init_source!r}")
        branch["init_source"] = init_source
    if protected is not None:
        branch["protected"] = bool(protected)
    if expires_at is not None:
        if protected:
            raise JamboConfigError("expires_at is not allowed on a protected branch")
        branch["expires_at"] = check_expiry(expires_at, datetime.now(timezone.utc))
    body: dict[str, Any] = {"branch": branch}
    if endpoints:
        eps = []
        for ep in endpoints:
            if not isinstance(ep, Mapping) or ep.get("type") not in ENDPOINT_TYPES:
                raise JamboConfigError(f"each endpoint needs a type in {ENDPOINT_TYPES}, got {ep!r}")
            check_compute(
                ep.get("autoscaling_limit_min_cu"),
                ep.get("autoscaling_limit_max_cu"),
                ep.get("suspend_timeout_seconds"),
            )
            eps.append(dict(ep))
        if sum(1 for ep in eps if ep["type"] == "read_write") > 1:
            raise JamboConfigError("a branch can have only one read_write endpoint")
        body["endpoints"] = eps
    if annotations:
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in annotations.items()):
            raise JamboConfigError("annotations must map strings to strings")
        body["annotation_value"] = dict(annotations)
    return body
