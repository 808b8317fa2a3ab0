"""Argument checks shared by the operators (pure functions, no Airflow or API calls).

Each check runs in the operator's ``__init__`` when the value is known at parse time, and again at the
start of ``execute`` (after templates are rendered) before any API call. Every error names the field
and the allowed values, so a DAG author sees the mistake when the DAG is parsed, not after a branch
was half-created.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

from airflow.providers.common.compat.sdk import XComArg

from airflow_provider_jambo.exceptions import JamboConfigError

# The service's limits are the hook's: one place says them, the operators check them at parse time.
from airflow_provider_jambo.hooks.validation import ENDPOINT_TYPES as COMPUTE_TYPES
from airflow_provider_jambo.hooks.validation import MAX_CU, MAX_CU_SPREAD, MIN_CU, SUSPEND_TIMEOUT_RANGE
from airflow_provider_jambo.hooks.validation import MAX_EXPIRY as MAX_TTL

IF_EXISTS_POLICIES = ("reuse", "fail")


def is_templated(value: Any) -> bool:
    """True when ``value`` still holds a Jinja template (so it can only be checked at run time)."""
    if isinstance(value, str):
        return "{{" in value or "{%" in value
    if isinstance(value, Mapping):
        return any(is_templated(k) or is_templated(v) for k, v in value.items())
    if isinstance(value, (list, tuple, set)):
        return any(is_templated(v) for v in value)
    # An XComArg (``task.output[...]``) is only known at run time.
    return isinstance(value, XComArg)


def parse_timestamp(field: str, value: datetime | str) -> datetime:
    """An aware datetime from a datetime or an RFC 3339 string; naive values are refused."""
    if isinstance(value, str):
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            raise JamboConfigError(
                f"{field}={value!r} is not an RFC 3339 timestamp (e.g. 2026-01-31T12:00:00Z)"
            ) from None
    elif isinstance(value, datetime):
        parsed = value
    else:
        raise JamboConfigError(
            f"{field} must be a datetime or an RFC 3339 string, not {type(value).__name__}"
        )
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise JamboConfigError(f"{field}={value!r} has no time zone; give one (e.g. a trailing Z for UTC)")
    return parsed.astimezone(timezone.utc)


def to_timedelta(field: str, value: timedelta | float | int) -> timedelta:
    if isinstance(value, timedelta):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return timedelta(seconds=value)
    raise JamboConfigError(f"{field} must be a timedelta or a number of seconds, not {type(value).__name__}")


def check_expiry(
    *,
    expires_at: datetime | str | None,
    ttl: timedelta | float | None,
    protected: bool | None,
    now: datetime | None = None,
) -> datetime | None:
    """Validate ``expires_at``/``ttl`` and return the absolute expiry (None: the branch never expires).

    Rules of the service: in the future, at most 30 days ahead, not on a protected branch; and
    ``expires_at`` and ``ttl`` are alternatives.
    """
    if expires_at is None and ttl is None:
        return None
    if expires_at is not None and ttl is not None:
        raise JamboConfigError("give either expires_at (absolute) or ttl (relative), not both")
    if protected:
        raise JamboConfigError(
            "expires_at/ttl cannot be set on a protected branch (protected=True); the service refuses it"
        )
    now = now or datetime.now(timezone.utc)
    if ttl is not None:
        delta = to_timedelta("ttl", ttl)
        if delta <= timedelta(0):
            raise JamboConfigError(f"ttl must be positive and at most 30 days, got {delta}")
        if delta > MAX_TTL:
            raise JamboConfigError(f"ttl must be at most 30 days (the service's limit), got {delta}")
        return now + delta
    assert expires_at is not None
    when = parse_timestamp("expires_at", expires_at)
    if when <= now:
        raise JamboConfigError(f"expires_at must be in the future, got {when.isoformat()}")
    if when - now > MAX_TTL:
        raise JamboConfigError(
            f"expires_at must be at most 30 days ahead (the service's limit), got {when.isoformat()}"
        )
    return when


def check_compute(
    *,
    compute_type: str | None,
    min_cu: float | None,
    max_cu: float | None,
    suspend_timeout_seconds: int | None,
) -> None:
    """Validate compute (endpoint) settings; ``compute_type`` None means "no compute"."""
    if compute_type is None:
        if min_cu is not None or max_cu is not None or suspend_timeout_seconds is not None:
            raise JamboConfigError(
                "min_cu/max_cu/suspend_timeout_seconds need a compute: set compute_type to "
                f"one of {', '.join(COMPUTE_TYPES)}"
            )
        return
    if compute_type not in COMPUTE_TYPES:
        raise JamboConfigError(
            f"compute_type must be one of {', '.join(COMPUTE_TYPES)} (or None for no compute), "
            f"got {compute_type!r}"
        )
    for field, cu in (("min_cu", min_cu), ("max_cu", max_cu)):
        if cu is None:
            continue
        if isinstance(cu, bool) or not isinstance(cu, (int, float)) or not MIN_CU <= cu <= MAX_CU:
            raise JamboConfigError(f"{field} must be a number from {MIN_CU} to {MAX_CU:g}, got {cu!r}")
    if min_cu is not None and max_cu is not None:
        if max_cu < min_cu:
            raise JamboConfigError(f"max_cu ({max_cu:g}) must not be below min_cu ({min_cu:g})")
        if max_cu - min_cu > MAX_CU_SPREAD:
            raise JamboConfigError(
                f"max_cu - min_cu must be at most {MAX_CU_SPREAD:g}, got {max_cu:g} - {min_cu:g}"
            )
    if suspend_timeout_seconds is not None:
        low, high = SUSPEND_TIMEOUT_RANGE
        if (
            isinstance(suspend_timeout_seconds, bool)
            or not isinstance(suspend_timeout_seconds, int)
            or not low <= suspend_timeout_seconds <= high
        ):
            raise JamboConfigError(
                f"suspend_timeout_seconds must be an integer from {low} (never) to {high}; "
                f"0 is the service default; got {suspend_timeout_seconds!r}"
            )


def check_choice(field: str, value: Any, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise JamboConfigError(f"{field} must be one of {', '.join(allowed)}, got {value!r}")


def check_point_in_time(prefix: str, timestamp: datetime | str | None, lsn: str | None) -> str | None:
    """RFC 3339 text of a point-in-time timestamp (or None); a timestamp and an LSN exclude each other."""
    if timestamp is not None and lsn is not None:
        raise JamboConfigError(f"give either {prefix}_timestamp or {prefix}_lsn, not both")
    if lsn is not None and (not isinstance(lsn, str) or "/" not in lsn):
        raise JamboConfigError(f"{prefix}_lsn must be an LSN like '0/1F2A3B8', got {lsn!r}")
    if timestamp is None:
        return None
    return format_timestamp(parse_timestamp(f"{prefix}_timestamp", timestamp))


def format_timestamp(value: datetime) -> str:
    """RFC 3339 with second precision in UTC, as the service wants (``2026-06-09T18:02:16Z``)."""
    return value.astimezone(timezone.utc).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def check_timeout(field: str, value: timedelta | float) -> float:
    seconds = to_timedelta(field, value).total_seconds()
    if seconds <= 0:
        raise JamboConfigError(f"{field} must be a positive duration, got {value!r}")
    return seconds
