"""The hook's pure argument checks: a point in time for branch create and restore."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from airflow_provider_jambo.exceptions import JamboConfigError
from airflow_provider_jambo.hooks.validation import point_in_time


@pytest.mark.parametrize("prefix", ["parent", "source"])
def test_point_in_time_is_an_lsn_or_a_timestamp_never_both(prefix: str) -> None:
    assert point_in_time(prefix, None, None) == {}
    assert point_in_time(prefix, "0/16B3748", None) == {f"{prefix}_lsn": "0/16B3748"}
    when = datetime(2026, 1, 31, 12, 0, 0, 500, tzinfo=timezone.utc)
    assert point_in_time(prefix, None, when) == {f"{prefix}_timestamp": "2026-01-31T12:00:00Z"}
    with pytest.raises(JamboConfigError, match=f"give {prefix}_lsn or {prefix}_timestamp, not both"):
        point_in_time(prefix, "0/1", when)
    with pytest.raises(JamboConfigError, match=f"{prefix}_timestamp must be an RFC 3339 timestamp"):
        point_in_time(prefix, None, "yesterday")
    with pytest.raises(JamboConfigError, match=f"{prefix}_lsn must be a non-empty string"):
        point_in_time(prefix, "", None)
