"""``hook.snapshots`` against the emulator: the eight operations, typed answers, operations waited
on like every change, and inputs refused by the rules before anything is sent."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from airflow_provider_jambo.api_models import BackupSchedule, BackupScheduleItem, Snapshot
from airflow_provider_jambo.exceptions import JamboConfigError, JamboLookupError, JamboNotFoundError
from airflow_provider_jambo.hooks.jambo import JamboHook

SNAPSHOT_ROUTES = ("/projects/{project_id}/branches/{branch_id}/snapshot",)


@pytest.fixture
def project(jambo_emulator: Any) -> dict[str, Any]:
    created: dict[str, Any] = jambo_emulator.create_project(name="snapshots")
    jambo_emulator.advance(0)
    return created


@pytest.fixture
def hook(
    jambo_emulator: Any, project: dict[str, Any], set_connection: Callable[..., str]
) -> Iterator[JamboHook]:
    conn_id = set_connection(
        "jambo_snap",
        host=jambo_emulator.base_url,
        password=jambo_emulator.api_key,
        project_id=project["project"]["id"],
    )
    hook = JamboHook(conn_id)
    yield hook
    hook.close()


def _in(days: float) -> datetime:
    return datetime.now(UTC) + timedelta(days=days)


def test_snapshot_lifecycle_through_the_hook(hook: JamboHook, project: dict[str, Any]) -> None:
    main = project["branch"]["id"]
    taken = hook.snapshots.create(main, name="nightly", expires_at=_in(7))
    assert isinstance(taken.resource, Snapshot)
    assert (taken.resource.name, taken.resource.source_branch_id, taken.resource.manual) == (
        "nightly",
        main,
        True,
    )
    assert taken.resource.expires_at is not None
    hook.operations.wait(taken.operations, timeout=30).raise_for_status()

    again = hook.snapshots.get_or_create(main, name="nightly")
    assert (again.created, again.snapshot.id) == (False, taken.resource.id)
    assert hook.snapshots.latest(main) == taken.resource
    assert hook.snapshots.resolve("nightly").id == taken.resource.id
    assert hook.snapshots.resolve(taken.resource.id).name == "nightly"
    with pytest.raises(JamboLookupError, match="snapshot 'other' not found"):
        hook.snapshots.resolve("other")

    renamed = hook.snapshots.update(taken.resource.id, name="kept", expires_at=None)
    assert (renamed.name, renamed.expires_at) == ("kept", None)

    restored = hook.snapshots.restore(taken.resource.id, name="preview")
    assert restored.branch.restored_from == taken.resource.id
    assert restored.branch.restored_as == main
    assert restored.branch.restore_status == "restored"
    hook.operations.wait(restored.operations, timeout=30).raise_for_status()
    moved = hook.snapshots.finalize_restore(restored.branch.id, name="main-before")
    assert {op.action for op in moved} == {"suspend_compute", "start_compute"}
    hook.operations.wait(moved, timeout=30).raise_for_status()
    assert hook.branches.get(restored.branch.id).name == project["branch"]["name"]
    assert hook.branches.get(main).name == "main-before"

    schedule = [
        BackupScheduleItem("daily", hour=2, retention_seconds=7 * 86400),
        {"frequency": "weekly", "day": 7},
    ]
    set_to = hook.snapshots.set_schedule(restored.branch.id, schedule)
    assert hook.snapshots.get_schedule(restored.branch.id) == set_to
    assert set_to == BackupSchedule(
        (
            BackupScheduleItem("daily", hour=2, retention_seconds=7 * 86400),
            BackupScheduleItem("weekly", hour=0, day=7),
        )
    )

    deleted = hook.snapshots.delete(taken.resource.id)
    hook.operations.wait(deleted, timeout=30).raise_for_status()
    assert hook.snapshots.list() == []
    with pytest.raises(JamboNotFoundError):
        hook.snapshots.delete(taken.resource.id)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"lsn": "0/16B3748", "timestamp": "2026-01-01T00:00:00Z"}, "either lsn or timestamp"),
        ({"lsn": "16B3748"}, "lsn must be an LSN"),
        ({"timestamp": "2026-01-01T00:00:00"}, "timestamp must be .* with a zone"),
        ({"timestamp": _in(1)}, "timestamp must not be in the future"),
        ({"timestamp": _in(-2)}, r"inside the project's history window \(history_retention_seconds=86400"),
        ({"expires_at": _in(-1)}, "expires_at must be in the future"),
        ({"name": "bad\nname"}, "name must be"),
    ],
)
def test_bad_snapshot_inputs_are_refused_before_sending(
    hook: JamboHook, project: dict[str, Any], jambo_emulator: Any, kwargs: dict[str, Any], message: str
) -> None:
    jambo_emulator.clear_requests()
    with pytest.raises(JamboConfigError, match=message):
        hook.snapshots.create(project["branch"]["id"], **kwargs)
    assert [r for r in jambo_emulator.requests() if r["route"] in SNAPSHOT_ROUTES] == []


@pytest.mark.parametrize(
    ("schedule", "message"),
    [
        ([{"frequency": "hourly"}], r"schedule\[0\].frequency must be one of daily, weekly, monthly"),
        ([{"frequency": "daily", "hour": 24}], r"schedule\[0\].hour must be a whole number from 0 to 23"),
        ([{"frequency": "weekly"}], r"schedule\[0\].day \(1 = Monday\) must be"),
        (
            [{"frequency": "daily", "retention_seconds": 60}],
            "retention_seconds must be a whole number from 3600",
        ),
        ([{"frequency": "daily"}, {"frequency": "daily"}], "at most one item per frequency"),
        ("daily", "schedule must be a list"),
    ],
)
def test_bad_schedules_are_refused_before_sending(
    hook: JamboHook, project: dict[str, Any], jambo_emulator: Any, schedule: Any, message: str
) -> None:
    jambo_emulator.clear_requests()
    with pytest.raises(JamboConfigError, match=message):
        hook.snapshots.set_schedule(project["branch"]["id"], schedule)
    assert [r for r in jambo_emulator.requests() if r["method"] == "PUT"] == []
