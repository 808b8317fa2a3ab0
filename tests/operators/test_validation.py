"""Argument rules checked before any API call (pure functions)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from airflow_provider_jambo.exceptions import JamboConfigError
from airflow_provider_jambo.operators.validation import (
    check_choice,
    check_compute,
    check_expiry,
    check_point_in_time,
    is_templated,
)

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=timezone.utc)


def test_ttl_gives_absolute_expiry() -> None:
    assert check_expiry(expires_at=None, ttl=3600, protected=False, now=NOW) == NOW + timedelta(hours=1)
    assert check_expiry(expires_at=None, ttl=timedelta(days=30), protected=False, now=NOW) == NOW + timedelta(
        days=30
    )
    assert check_expiry(expires_at=None, ttl=None, protected=True, now=NOW) is None


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"expires_at": None, "ttl": timedelta(days=30, seconds=1)}, "at most 30 days"),
        ({"expires_at": None, "ttl": 0}, "positive"),
        ({"expires_at": None, "ttl": "1h"}, "ttl must be a timedelta or a number"),
        ({"expires_at": "2026-05-31T00:00:00Z", "ttl": None}, "in the future"),
        ({"expires_at": "2026-07-02T00:00:00Z", "ttl": None}, "at most 30 days"),
        ({"expires_at": "2026-06-02T00:00:00", "ttl": None}, "no time zone"),
        ({"expires_at": "tomorrow", "ttl": None}, "RFC 3339"),
        ({"expires_at": "2026-06-02T00:00:00Z", "ttl": 60}, "not both"),
    ],
)
def test_expiry_errors_name_the_rule(kwargs: dict, fragment: str) -> None:
    with pytest.raises(JamboConfigError, match=fragment):
        check_expiry(protected=False, now=NOW, **kwargs)


def test_expiry_refused_on_protected_branch() -> None:
    with pytest.raises(JamboConfigError, match="protected"):
        check_expiry(expires_at=None, ttl=60, protected=True, now=NOW)


def test_expires_at_parsed_to_utc() -> None:
    got = check_expiry(expires_at="2026-06-02T14:00:00+02:00", ttl=None, protected=False, now=NOW)
    assert got == datetime(2026, 6, 2, 12, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"compute_type": "big"}, "compute_type must be one of read_write, read_only"),
        ({"compute_type": "read_write", "min_cu": 0.1}, "min_cu must be a number from 0.25 to 16"),
        ({"compute_type": "read_write", "max_cu": 17}, "max_cu must be a number from 0.25 to 16"),
        ({"compute_type": "read_write", "min_cu": 0.25, "max_cu": 9}, "at most 8"),
        ({"compute_type": "read_write", "min_cu": 4, "max_cu": 2}, "must not be below"),
        ({"compute_type": "read_write", "suspend_timeout_seconds": 604801}, "suspend_timeout_seconds"),
        ({"compute_type": None, "min_cu": 1}, "need a compute"),
    ],
)
def test_compute_errors(kwargs: dict, fragment: str) -> None:
    full = {"compute_type": None, "min_cu": None, "max_cu": None, "suspend_timeout_seconds": None, **kwargs}
    with pytest.raises(JamboConfigError, match=fragment):
        check_compute(**full)


def test_compute_limits_accepted() -> None:
    check_compute(compute_type="read_only", min_cu=8, max_cu=16, suspend_timeout_seconds=-1)
    check_compute(compute_type="read_write", min_cu=0.25, max_cu=8.25, suspend_timeout_seconds=0)
    check_compute(compute_type=None, min_cu=None, max_cu=None, suspend_timeout_seconds=None)


def test_choice_and_point_in_time() -> None:
    with pytest.raises(JamboConfigError, match="if_exists must be one of reuse, fail, got 'replace'"):
        check_choice("if_exists", "replace", ("reuse", "fail"))
    with pytest.raises(JamboConfigError, match="not both"):
        check_point_in_time("parent", "2026-06-01T00:00:00Z", "0/16B3748")
    with pytest.raises(JamboConfigError, match="LSN"):
        check_point_in_time("parent", None, "16B3748")
    assert check_point_in_time("parent", "2026-06-01T02:00:00.123+02:00", None) == "2026-06-01T00:00:00Z"


def test_is_templated() -> None:
    assert is_templated("br-{{ ds }}")
    assert is_templated({"k": "{{ ti.task_id }}"})
    assert is_templated(["a", "{% if x %}b{% endif %}"])
    assert not is_templated("plain-name")
    assert not is_templated(None)
