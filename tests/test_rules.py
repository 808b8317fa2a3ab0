"""The rules module's pure checks: what each accepts and how it spells the value for the API.

What each refuses (and that nothing is sent then) is the table in ``test_bad_inputs.py``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from airflow_provider_jambo.exceptions import JamboConfigError
from airflow_provider_jambo.rules import (
    check_bool,
    check_choice,
    check_compute_limits,
    check_expiry,
    check_lsn,
    check_name,
    check_operator_compute,
    check_suspend_timeout,
    endpoint_settings,
    is_templated,
    parse_rfc3339,
    point_in_time,
    seconds,
)

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def test_ttl_gives_absolute_expiry() -> None:
    assert check_expiry(ttl=3600, protected=False, now=NOW) == NOW + timedelta(hours=1)
    assert check_expiry(ttl=timedelta(days=30), protected=False, now=NOW) == NOW + timedelta(days=30)
    assert check_expiry(ttl=None, protected=True, now=NOW) is None


def test_expires_at_parsed_to_utc() -> None:
    got = check_expiry(expires_at="2026-06-02T14:00:00+02:00", protected=False, now=NOW)
    assert got == datetime(2026, 6, 2, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"ttl": timedelta(days=30, seconds=1)}, "at most 30 days"),
        ({"expires_at": "2026-05-31T00:00:00Z"}, "in the future"),
        ({"expires_at": "2026-07-02T00:00:00Z"}, "at most 30 days"),
        ({"expires_at": "2026-06-02T00:00:00"}, "no time zone"),
        ({"expires_at": "2026-06-02T00:00:00Z", "ttl": 60}, "not both"),
    ],
)
def test_expiry_errors_name_the_rule(kwargs: dict, fragment: str) -> None:
    with pytest.raises(JamboConfigError, match=fragment):
        check_expiry(protected=False, now=NOW, **kwargs)


@pytest.mark.parametrize("prefix", ["parent", "source"])
def test_point_in_time_is_an_lsn_or_a_timestamp_never_both(prefix: str) -> None:
    assert point_in_time(prefix, None, None) == {}
    assert point_in_time(prefix, "0/16B3748", None) == {f"{prefix}_lsn": "0/16B3748"}
    when = datetime(2026, 1, 31, 12, 0, 0, 500, tzinfo=UTC)
    assert point_in_time(prefix, None, when, now=NOW) == {f"{prefix}_timestamp": "2026-01-31T12:00:00Z"}
    text = "2026-06-01T02:00:00.123+02:00"
    assert point_in_time(prefix, None, text, now=NOW) == {f"{prefix}_timestamp": "2026-06-01T00:00:00Z"}
    with pytest.raises(JamboConfigError, match=f"give either {prefix}_lsn or {prefix}_timestamp, not both"):
        point_in_time(prefix, "0/1", when)


@pytest.mark.parametrize("lsn", ["0/0", "16/B374D848", "ffffffff/FFFFFFFF"])
def test_lsn_accepted(lsn: str) -> None:
    assert check_lsn("parent_lsn", lsn) == lsn


@pytest.mark.parametrize("name", ["a", "preview-pr-12", "x" * 256, "ünïcode ok", "with space"])
def test_names_accepted(name: str) -> None:
    assert check_name("branch_name", name) == name


def test_compute_limits_accepted_and_spelled_for_the_api() -> None:
    check_operator_compute("read_only", 8, 16, -1)
    check_operator_compute("read_write", 0.25, 8.25, 0)
    check_operator_compute(None, None, None, None)
    check_compute_limits(1, 1, 60)
    assert endpoint_settings(0.5, 2, 604800) == {
        "autoscaling_limit_min_cu": 0.5,
        "autoscaling_limit_max_cu": 2,
        "suspend_timeout_seconds": 604800,
    }
    assert endpoint_settings(None, None, None) == {}


@pytest.mark.parametrize("value", [-1, 0, 60, 300, 604800])
def test_suspend_timeout_accepted(value: int) -> None:
    assert check_suspend_timeout("suspend_timeout_seconds", value) == value


def test_choice_bool_and_seconds() -> None:
    assert check_choice("if_exists", "fail", ("reuse", "fail")) == "fail"
    assert check_bool("dry_run", "True") is True
    assert check_bool("dry_run", "0") is False
    assert seconds("older_than", "3600", allow_text=True) == 3600.0
    assert seconds("older_than", 0, allow_zero=True) == 0.0
    assert seconds("timeout", timedelta(minutes=2)) == 120.0


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2022-12-07T00:45:05.123456789Z", datetime(2022, 12, 7, 0, 45, 5, 123456, tzinfo=UTC)),
        ("2022-12-07 00:45:05+01:00", datetime(2022, 12, 6, 23, 45, 5, tzinfo=UTC)),
        ("2022-12-07T00:45:05", datetime(2022, 12, 7, 0, 45, 5)),
        ("yesterday", None),
    ],
)
def test_parse_rfc3339(text: str, expected: datetime | None) -> None:
    assert parse_rfc3339(text) == expected


def test_is_templated() -> None:
    assert is_templated("br-{{ ds }}")
    assert is_templated({"k": "{{ ti.task_id }}"})
    assert is_templated(["a", "{% if x %}b{% endif %}"])
    assert not is_templated("plain-name")
    assert not is_templated(None)
