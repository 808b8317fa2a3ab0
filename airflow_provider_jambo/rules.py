"""Every service limit and input rule of the provider, each written once.

The hook checks its arguments with these before it sends anything; operators and the sensor check
literal arguments while the DAG is parsed and templated ones first thing in ``execute``. Every check
is a pure function (no I/O, no Airflow state) that returns the accepted value (normalised where the
API wants a particular spelling) or raises :class:`JamboConfigError` whose message names the
*user-facing* parameter (passed in by the caller, e.g. ``branch_name`` for the operator, ``name``
for the hook) and the values it allows.

The limits come from the spec (``jambo-api-v2.openapi.yaml``) and the behaviour notes
(``jambo-api-behaviour.md``).
"""

from __future__ import annotations

import ast
import math
import re
import unicodedata
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.providers.common.compat.sdk import XComArg

from airflow_provider_jambo.exceptions import JamboConfigError

#: The Airflow connection every Jambo hook, operator and sensor uses unless told otherwise.
DEFAULT_CONN_ID = "jambo_default"

# --- ids and names -------------------------------------------------------------------------------

#: Every id of the service (projects, branches, endpoints, operations) matches this.
ID_PATTERN = re.compile(r"^[a-z0-9-]{1,60}$")
ID_RULE = "a Jambo id matching ^[a-z0-9-]{1,60}$ (lowercase letters, digits, '-')"
#: Branch, project, database names: at most 256 characters (the service's limit).
NAME_MAX = 256
#: Postgres identifiers (role names) are at most 63 bytes.
ROLE_NAME_MAX = 63


def check_id(param: str, value: object) -> str:
    """A resource id, before it goes into a URL or a body."""
    if not isinstance(value, str) or not ID_PATTERN.match(value):
        raise JamboConfigError(f"{param} must be {ID_RULE}, got {value!r}")
    return value


def _has_control_character(text: str) -> bool:
    return any(unicodedata.category(ch) == "Cc" for ch in text)


def check_name(param: str, value: object, max_len: int = NAME_MAX) -> str:
    """A name: a non-blank string of at most ``max_len`` characters without control characters."""
    rule = f"a non-empty string of at most {max_len} characters without control characters"
    if not isinstance(value, str) or not value.strip():
        raise JamboConfigError(f"{param} must be {rule}, got {value!r}")
    if len(value) > max_len:
        raise JamboConfigError(f"{param} must be {rule}, got {len(value)} characters")
    if _has_control_character(value):
        raise JamboConfigError(f"{param} must be {rule} (newline, tab, NUL, ...), got {value!r}")
    return value


def check_ref(param: str, value: object) -> str:
    """A branch (or compute) given by id or exact name: the name rule covers both spellings."""
    return check_name(param, value)


def check_choice(param: str, value: object, allowed: Sequence[str]) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise JamboConfigError(f"{param} must be one of {', '.join(allowed)}, got {value!r}")
    return value


def check_annotations(param: str, value: object) -> dict[str, str]:
    """String tags (branch ``annotation_value``, janitor filters): a mapping of strings to strings."""
    if not isinstance(value, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        shown = type(value).__name__ if not isinstance(value, Mapping) else repr(dict(value))
        raise JamboConfigError(f"{param} must be a dict mapping strings to strings, got {shown}")
    return dict(value)


def check_bool(param: str, value: object) -> bool:
    """A flag given as a bool, or as rendered text ``true``/``false`` (also ``1``/``0``, ``yes``/``no``)."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower() if isinstance(value, (str, int)) else None
    if text in ("true", "1", "yes"):
        return True
    if text in ("false", "0", "no"):
        return False
    raise JamboConfigError(f"{param} must be true or false, got {value!r}")


# --- numbers and durations -----------------------------------------------------------------------


def _is_number(value: object) -> bool:
    # bool is an int subclass, but True is not a number of seconds or compute units.
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def seconds(param: str, value: object, *, allow_zero: bool = False, allow_text: bool = False) -> float:
    """A duration in seconds from a timedelta or a finite number (or numeric text when rendered).

    Positive, or non-negative with ``allow_zero``.
    """
    allowed = "a non-negative" if allow_zero else "a positive"
    rule = f"{param} must be {allowed} number of seconds or a timedelta"
    if isinstance(value, timedelta):
        result = value.total_seconds()
    elif _is_number(value):
        result = float(value)  # type: ignore[arg-type]
    elif allow_text and isinstance(value, str):
        try:
            result = float(value.strip())
        except ValueError:
            raise JamboConfigError(f"{rule}, got {value!r}") from None
    else:
        raise JamboConfigError(f"{rule}, got {type(value).__name__} {value!r}")
    if not math.isfinite(result) or result < 0 or (result == 0 and not allow_zero):
        raise JamboConfigError(f"{rule}, got {value!r}")
    return result


def check_timeout(param: str, value: object) -> float:
    """How long to wait (operators' ``timeout``, janitor's ``operation_timeout``): positive seconds."""
    return seconds(param, value)


def check_poll_interval(param: str, value: object) -> float:
    """Time between status checks (``poll_interval``, ``poke_interval``): positive seconds."""
    return seconds(param, value)


def check_whole_number(param: str, value: object, *, minimum: int = 0) -> int:
    """A whole number ``>= minimum``, given as an int or as integer text (connection extras)."""
    rule = f"{param} must be a whole number >= {minimum}"
    number: object = value
    if isinstance(value, str):
        try:
            number = int(value.strip())
        except ValueError:
            raise JamboConfigError(f"{rule}, got {value!r}") from None
    if isinstance(number, bool) or not isinstance(number, int) or number < minimum:
        raise JamboConfigError(f"{rule}, got {value!r}")
    return number


# --- compute units and suspend timeout -----------------------------------------------------------

ENDPOINT_TYPES = ("read_write", "read_only")
MIN_CU, MAX_CU, MAX_CU_SPREAD = 0.25, 16.0, 8.0
#: ``suspend_timeout_seconds``: -1 never suspends, 0 is the service default (300 s), else 60..604800.
SUSPEND_NEVER, SUSPEND_DEFAULT = -1, 0
SUSPEND_MIN, SUSPEND_MAX = 60, 604800
SUSPEND_RULE = (
    f"an integer: {SUSPEND_NEVER} (never), {SUSPEND_DEFAULT} (service default), "
    f"or {SUSPEND_MIN}..{SUSPEND_MAX}"
)


def check_cu(param: str, value: object) -> float:
    if not _is_number(value) or not math.isfinite(value) or not MIN_CU <= value <= MAX_CU:  # type: ignore[arg-type,operator]
        raise JamboConfigError(
            f"{param} must be a number from {MIN_CU} to {MAX_CU:g} compute units, got {value!r}"
        )
    return float(value)  # type: ignore[arg-type]


def check_suspend_timeout(param: str, value: object) -> int:
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or not (value in (SUSPEND_NEVER, SUSPEND_DEFAULT) or SUSPEND_MIN <= value <= SUSPEND_MAX)
    ):
        raise JamboConfigError(f"{param} must be {SUSPEND_RULE}, got {value!r}")
    return value


def check_compute_limits(
    min_cu: object = None,
    max_cu: object = None,
    suspend_timeout_seconds: object = None,
    *,
    names: tuple[str, str, str] = ("min_cu", "max_cu", "suspend_timeout_seconds"),
) -> None:
    """Autoscaling limits and suspend timeout of one compute (``None``: not given)."""
    min_name, max_name, suspend_name = names
    if min_cu is not None:
        check_cu(min_name, min_cu)
    if max_cu is not None:
        check_cu(max_name, max_cu)
    if min_cu is not None and max_cu is not None:
        low, high = float(min_cu), float(max_cu)  # type: ignore[arg-type]
        if high < low:
            raise JamboConfigError(f"{max_name} ({high:g}) must not be below {min_name} ({low:g})")
        if high - low > MAX_CU_SPREAD:
            raise JamboConfigError(
                f"{max_name} - {min_name} must be at most {MAX_CU_SPREAD:g} compute units, "
                f"got {high:g} - {low:g}"
            )
    if suspend_timeout_seconds is not None:
        check_suspend_timeout(suspend_name, suspend_timeout_seconds)


def endpoint_settings(
    min_cu: float | None, max_cu: float | None, suspend_timeout_seconds: int | None
) -> dict[str, Any]:
    """The checked limits as the API spells them in an endpoint body (given ones only)."""
    check_compute_limits(min_cu, max_cu, suspend_timeout_seconds)
    body: dict[str, Any] = {}
    if min_cu is not None:
        body["autoscaling_limit_min_cu"] = min_cu
    if max_cu is not None:
        body["autoscaling_limit_max_cu"] = max_cu
    if suspend_timeout_seconds is not None:
        body["suspend_timeout_seconds"] = suspend_timeout_seconds
    return body


def check_operator_compute(
    compute_type: object, min_cu: object, max_cu: object, suspend_timeout_seconds: object
) -> None:
    """An operator's compute settings; ``compute_type=None`` means "no compute" (no limits then)."""
    if compute_type is None:
        if min_cu is not None or max_cu is not None or suspend_timeout_seconds is not None:
            raise JamboConfigError(
                "min_cu/max_cu/suspend_timeout_seconds need a compute: set compute_type to "
                f"one of {', '.join(ENDPOINT_TYPES)}"
            )
        return
    check_choice("compute_type", compute_type, ENDPOINT_TYPES)
    check_compute_limits(min_cu, max_cu, suspend_timeout_seconds)


# --- timestamps, expiry and points in time -------------------------------------------------------

#: The service refuses an ``expires_at`` further ahead than this.
MAX_EXPIRY = timedelta(days=30)
TIMESTAMP_EXAMPLE = "2026-01-31T12:00:00Z"


def parse_rfc3339(text: str) -> datetime | None:
    """RFC 3339 text → datetime (naive when the text has no zone); ``None`` when unparsable.

    The service sends ``Z`` and fractions of any length; ``fromisoformat`` wants 6 digits on older
    Pythons, so normalise first. Used for user input (strictly) and API answers (tolerantly).
    """
    text = text.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    date_part, sep, time_part = text.partition("T")
    if not sep:
        date_part, sep, time_part = text.partition(" ")
    if sep and "." in time_part:
        head, _, rest = time_part.partition(".")
        digits = ""
        for ch in rest:
            if not ch.isdigit():
                break
            digits += ch
        tail = rest[len(digits) :]
        text = f"{date_part}{sep}{head}.{(digits + '000000')[:6]}{tail}"
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def parse_datetime(value: Any) -> datetime | None:
    """An API timestamp → aware datetime; ``None`` for missing or unparsable values (never raises).

    The service's timestamps are UTC; one without a zone is read as UTC.
    """
    if not isinstance(value, str) or not value:
        return None
    parsed = parse_rfc3339(value)
    if parsed is not None and parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


def parse_timestamp(param: str, value: object) -> datetime:
    """An aware datetime (UTC) from a datetime or an RFC 3339 string; values without a zone are refused."""
    rule = (
        f"{param} must be a timezone-aware datetime or an RFC 3339 timestamp with a zone "
        f"(e.g. {TIMESTAMP_EXAMPLE})"
    )
    if isinstance(value, str):
        parsed = parse_rfc3339(value)
        if parsed is None:
            raise JamboConfigError(f"{rule}, got {value!r}")
    elif isinstance(value, datetime):
        parsed = value
    else:
        raise JamboConfigError(f"{rule}, got {type(value).__name__} {value!r}")
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise JamboConfigError(f"{rule}; {value!r} has no time zone (add Z for UTC)")
    return parsed.astimezone(UTC)


def format_timestamp(value: datetime) -> str:
    """RFC 3339 in UTC with second precision, as the service wants (``2026-06-09T18:02:16Z``)."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _now(now: datetime | None) -> datetime:
    return now if now is not None else datetime.now(UTC)


def check_expires_at(param: str, value: object, *, now: datetime | None = None) -> datetime:
    """An absolute expiry: in the future, at most 30 days ahead."""
    when = parse_timestamp(param, value)
    current = _now(now)
    if when <= current:
        raise JamboConfigError(
            f"{param} must be in the future and at most 30 days ahead, got {format_timestamp(when)} "
            f"(now is {format_timestamp(current)})"
        )
    if when - current > MAX_EXPIRY:
        raise JamboConfigError(
            f"{param} must be at most 30 days ahead (the service's limit), got {format_timestamp(when)}"
        )
    return when


def check_ttl(param: str, value: object) -> timedelta:
    """A relative expiry: a positive duration of at most 30 days."""
    try:
        secs = seconds(param, value)
    except JamboConfigError:
        raise JamboConfigError(
            f"{param} must be a positive duration of at most 30 days (seconds or a timedelta), got {value!r}"
        ) from None
    if secs > MAX_EXPIRY.total_seconds():
        raise JamboConfigError(
            f"{param} must be at most 30 days ({MAX_EXPIRY.total_seconds():.0f} s, the service's limit), "
            f"got {value!r}"
        )
    return value if isinstance(value, timedelta) else timedelta(seconds=secs)


def check_expiry(
    *,
    expires_at: object = None,
    ttl: object = None,
    protected: object = None,
    now: datetime | None = None,
) -> datetime | None:
    """``expires_at`` (absolute) or ``ttl`` (relative) → the absolute expiry; ``None``: never expires.

    They exclude each other, and neither is allowed on a protected branch.
    """
    if expires_at is None and ttl is None:
        return None
    if expires_at is not None and ttl is not None:
        raise JamboConfigError("give either expires_at (absolute) or ttl (relative), not both")
    if protected:
        raise JamboConfigError(
            "expires_at/ttl cannot be set on a protected branch (protected=True); the service refuses it"
        )
    if ttl is not None:
        return _now(now) + check_ttl("ttl", ttl)
    return check_expires_at("expires_at", expires_at, now=now)


#: A Postgres LSN as the service spells it: two hex numbers of up to 8 digits, ``0/1F2A3B8``.
LSN_PATTERN = re.compile(r"^[0-9A-Fa-f]{1,8}/[0-9A-Fa-f]{1,8}$")


def check_lsn(param: str, value: object) -> str:
    if not isinstance(value, str) or not LSN_PATTERN.match(value):
        raise JamboConfigError(f"{param} must be an LSN of two hex numbers like '0/1F2A3B8', got {value!r}")
    return value


def check_past_timestamp(param: str, value: object, *, now: datetime | None = None) -> datetime:
    """A point in a branch's history: zoned, and not in the future."""
    when = parse_timestamp(param, value)
    if when > _now(now):
        raise JamboConfigError(f"{param} must not be in the future, got {format_timestamp(when)}")
    return when


def point_in_time(
    prefix: str, lsn: object = None, timestamp: object = None, *, now: datetime | None = None
) -> dict[str, str]:
    """``{prefix}_lsn`` or ``{prefix}_timestamp`` (never both) of a branch create or restore, as sent."""
    if lsn is not None and timestamp is not None:
        raise JamboConfigError(f"give either {prefix}_lsn or {prefix}_timestamp, not both")
    if lsn is not None:
        return {f"{prefix}_lsn": check_lsn(f"{prefix}_lsn", lsn)}
    if timestamp is not None:
        when = check_past_timestamp(f"{prefix}_timestamp", timestamp, now=now)
        return {f"{prefix}_timestamp": format_timestamp(when)}
    return {}


# --- branches ------------------------------------------------------------------------------------

#: ``init_source`` of a branch that copies only the parent's schema (and becomes a new root).
SCHEMA_ONLY = "schema-only"
INIT_SOURCES = ("parent-data", SCHEMA_ONLY)
#: What an operator does when the branch or compute it creates already exists.
IF_EXISTS_POLICIES = ("reuse", "fail")


def check_branch_endpoints(param: str, endpoints: object) -> list[dict[str, Any]]:
    """The computes of a branch create, in the API's spelling: dicts with a ``type`` and valid
    limits, at most one ``read_write``."""
    if not isinstance(endpoints, Sequence) or isinstance(endpoints, (str, bytes)):
        raise JamboConfigError(
            f"{param} must be a list of dicts with a type in {ENDPOINT_TYPES}, got {endpoints!r}"
        )
    eps: list[dict[str, Any]] = []
    for ep in endpoints:
        if not isinstance(ep, Mapping):
            raise JamboConfigError(f"{param} must be dicts with a type in {ENDPOINT_TYPES}, got {ep!r}")
        check_choice(f"{param}[].type", ep.get("type"), ENDPOINT_TYPES)
        check_compute_limits(
            ep.get("autoscaling_limit_min_cu"),
            ep.get("autoscaling_limit_max_cu"),
            ep.get("suspend_timeout_seconds"),
            names=(
                f"{param}[].autoscaling_limit_min_cu",
                f"{param}[].autoscaling_limit_max_cu",
                f"{param}[].suspend_timeout_seconds",
            ),
        )
        eps.append(dict(ep))
    if sum(1 for ep in eps if ep["type"] == "read_write") > 1:
        raise JamboConfigError(f"{param}: a branch can have only one read_write endpoint")
    return eps


def check_unprotected_expiry(expires_at: object, protected: object) -> datetime:
    """A create's ``expires_at``: a valid expiry on a branch that is not protected."""
    if protected:
        raise JamboConfigError("expires_at is not allowed on a protected branch (protected=True)")
    return check_expires_at("expires_at", expires_at)


# --- snapshots and backup schedules --------------------------------------------------------------

#: Frequencies the service accepts in practice (the spec also names hourly and yearly).
BACKUP_FREQUENCIES = ("daily", "weekly", "monthly")
#: The shortest retention a schedule item may have (the spec's minimum).
MIN_RETENTION_SECONDS = 3600


def snapshot_point(
    lsn: object = None,
    timestamp: object = None,
    *,
    history_retention_seconds: int | None = None,
    now: datetime | None = None,
) -> dict[str, str]:
    """A snapshot's point as sent (``lsn`` or ``timestamp``, never both; none: now). A timestamp
    is zoned, not in the future and, when the project's history window is known, inside it."""
    if lsn is not None and timestamp is not None:
        raise JamboConfigError("give either lsn or timestamp for a snapshot, not both")
    if lsn is not None:
        return {"lsn": check_lsn("lsn", lsn)}
    if timestamp is None:
        return {}
    when = check_past_timestamp("timestamp", timestamp, now=now)
    if history_retention_seconds is not None:
        start = _now(now) - timedelta(seconds=history_retention_seconds)
        if when < start:
            raise JamboConfigError(
                f"timestamp must be inside the project's history window "
                f"(history_retention_seconds={history_retention_seconds}: {format_timestamp(start)} "
                f"or later), got {format_timestamp(when)}"
            )
    return {"timestamp": format_timestamp(when)}


def check_snapshot_expiry(param: str, value: object, *, now: datetime | None = None) -> datetime:
    """A snapshot's ``expires_at``: zoned and in the future (the service deletes it then)."""
    when = parse_timestamp(param, value)
    current = _now(now)
    if when <= current:
        raise JamboConfigError(
            f"{param} must be in the future, got {format_timestamp(when)} "
            f"(now is {format_timestamp(current)})"
        )
    return when


def check_snapshot_ttl(param: str, value: object) -> timedelta:
    """A snapshot's relative expiry: a positive duration (seconds, numeric text or a timedelta)."""
    secs = seconds(param, value, allow_text=True)
    return value if isinstance(value, timedelta) else timedelta(seconds=secs)


def _schedule_int(param: str, value: object, low: int, high: int | None) -> int:
    allowed = f"a whole number from {low}" + (f" to {high}" if high is not None else "")
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or value < low
        or (high is not None and value > high)
    ):
        raise JamboConfigError(f"{param} must be {allowed}, got {value!r}")
    return value


def check_backup_schedule(param: str, value: object) -> list[dict[str, int | str]]:
    """A backup schedule as sent: a list of ``{frequency, hour, day, month, retention_seconds}``
    dicts, one per frequency (daily, weekly, monthly); ``hour`` 0-23 (UTC, default 0); weekly
    ``day`` 1 (Monday) to 7, monthly ``day`` 1-31; ``retention_seconds`` at least 3600 (none: kept
    until deleted). An empty list removes the schedule."""
    if not isinstance(value, Sequence) or isinstance(value, (str, bytes)):
        raise JamboConfigError(
            f"{param} must be a list of dicts with a frequency in {', '.join(BACKUP_FREQUENCIES)}, "
            f"got {value!r}"
        )
    items: list[dict[str, int | str]] = []
    for index, raw in enumerate(value):
        where = f"{param}[{index}]"
        if not isinstance(raw, Mapping):
            raise JamboConfigError(f"{where} must be a dict with a frequency, got {raw!r}")
        unknown = sorted(set(raw) - {"frequency", "hour", "day", "month", "retention_seconds"})
        if unknown:
            raise JamboConfigError(
                f"{where} has unknown keys {unknown}: allowed are frequency, hour, day, month, "
                "retention_seconds"
            )
        frequency = check_choice(f"{where}.frequency", raw.get("frequency"), BACKUP_FREQUENCIES)
        item: dict[str, int | str] = {"frequency": frequency}
        item["hour"] = _schedule_int(f"{where}.hour", raw.get("hour", 0), 0, 23)
        if frequency == "weekly":
            item["day"] = _schedule_int(f"{where}.day (1 = Monday)", raw.get("day"), 1, 7)
        elif frequency == "monthly":
            item["day"] = _schedule_int(f"{where}.day", raw.get("day"), 1, 31)
        elif raw.get("day") is not None:
            raise JamboConfigError(f"{where}.day applies only to weekly and monthly schedules")
        if raw.get("month") is not None:
            item["month"] = _schedule_int(f"{where}.month", raw.get("month"), 1, 12)
        if raw.get("retention_seconds") is not None:
            item["retention_seconds"] = _schedule_int(
                f"{where}.retention_seconds", raw.get("retention_seconds"), MIN_RETENTION_SECONDS, None
            )
        items.append(item)
    frequencies = [item["frequency"] for item in items]
    if len(set(frequencies)) != len(frequencies):
        raise JamboConfigError(f"{param} may have at most one item per frequency, got {frequencies}")
    return items


# --- operation ids -------------------------------------------------------------------------------


def check_operation_ids(param: str, value: object) -> list[str]:
    """A non-empty list of operation ids, from a list or a (rendered) string, duplicates dropped.

    A string may be ids separated by commas/whitespace, or a rendered list such as ``"['a', 'b']"``.
    """
    rule = f"{param} must be a non-empty list of operation ids ({ID_RULE})"
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                value = ast.literal_eval(text)
            except (ValueError, SyntaxError):
                raise JamboConfigError(f"{rule}, got {text!r}") from None
        else:
            value = [part for part in re.split(r"[\s,]+", text) if part]
    if not isinstance(value, (list, tuple)):
        raise JamboConfigError(f"{rule}, got {type(value).__name__} {value!r}")
    if not value:
        raise JamboConfigError(f"{rule}, got an empty list (to wait for nothing, leave the sensor out)")
    bad = [v for v in value if not isinstance(v, str) or not ID_PATTERN.match(v.strip())]
    if bad:
        raise JamboConfigError(f"{rule}; not ids: {bad!r}")
    return list(dict.fromkeys(v.strip() for v in value))


# --- templates -----------------------------------------------------------------------------------


def is_templated(value: object) -> bool:
    """True when ``value`` is only known at run time: a Jinja template, or an XComArg, anywhere in it."""
    if isinstance(value, str):
        return "{{" in value or "{%" in value
    if isinstance(value, Mapping):
        return any(is_templated(k) or is_templated(v) for k, v in value.items())
    if isinstance(value, (list, tuple, set)):
        return any(is_templated(v) for v in value)
    # An XComArg (``task.output[...]``) is only known at run time.
    return isinstance(value, XComArg)


def is_known(*values: object) -> bool:
    """True when none of ``values`` still waits for rendering, so they can be checked now."""
    return not any(is_templated(v) for v in values)
