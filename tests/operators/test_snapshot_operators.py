"""Snapshot operators against the in-process emulator: results, re-runs that adopt, the restore's
all or nothing, the finalize guard, deferral, idempotent delete, schedules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import TaskDeferred
from jambo_support import JamboProject, make_context
from operators.deferral import defer, resume

from airflow_provider_jambo.exceptions import JamboLookupError, JamboOperationFailedError, JamboRefusedError
from airflow_provider_jambo.operators.base_operator import XCOM_REFUSES_NONE
from airflow_provider_jambo.operators.snapshot_operators import (
    JamboCreateSnapshotOperator,
    JamboDeleteSnapshotOperator,
    JamboFinalizeRestoreOperator,
    JamboRestoreSnapshotOperator,
    JamboSetBackupScheduleOperator,
)
from airflow_provider_jambo.rules import format_timestamp

BRANCH_KEYS = {
    "project_id",
    "branch_id",
    "branch_name",
    "parent_id",
    "created",
    "endpoint_id",
    "host",
    "pooler_host",
    "database",
    "role",
    "expires_at",
}
MUTATING = {"POST", "PATCH", "PUT", "DELETE"}


def snapshot_op(**kwargs: Any) -> JamboCreateSnapshotOperator:
    kwargs.setdefault("branch", "main")
    kwargs.setdefault("deferrable", False)
    return JamboCreateSnapshotOperator(task_id="snapshot", **kwargs)


def restore_op(**kwargs: Any) -> JamboRestoreSnapshotOperator:
    kwargs.setdefault("deferrable", False)
    kwargs.setdefault("defer_grace_seconds", 0)
    return JamboRestoreSnapshotOperator(task_id="restore", **kwargs)


def test_a_snapshot_at_the_data_interval_end_is_adopted_by_a_rerun(live_project: JamboProject) -> None:
    # On the wall clock (the project's history begins at its creation, a moment ago).
    jambo_project = live_project
    end = datetime.now(UTC).replace(microsecond=0)
    ctx = make_context("snapshot", data_interval_end=end)
    first = snapshot_op(point="data_interval_end", ttl=timedelta(days=7)).execute(ctx)
    assert first["created"] is True
    assert first["timestamp"] == format_timestamp(end)
    assert first["branch_id"] == jambo_project.default_branch_id
    assert first["snapshot_name"].startswith("test-dag-snapshot-")
    expires = datetime.fromisoformat(first["expires_at"].replace("Z", "+00:00"))
    assert timedelta(days=6, hours=23) < expires - datetime.now(UTC) <= timedelta(days=7)

    again = snapshot_op(point="data_interval_end", ttl=timedelta(days=7)).execute(
        make_context("snapshot", data_interval_end=end)
    )
    assert (again["created"], again["snapshot_id"]) == (False, first["snapshot_id"])
    with jambo_project.hook() as hook:
        assert len(hook.snapshots.list()) == 1


def test_restore_the_latest_snapshot_returns_the_create_coordinates_and_is_adopted(
    jambo_project: JamboProject,
) -> None:
    snapshot_op(snapshot_name="older").execute(make_context("snapshot"))
    newest = snapshot_op(snapshot_name="newest").execute(make_context("snapshot"))
    ctx = make_context("restore")
    result = restore_op(latest_of="main", branch_name="report").execute(ctx)
    # None-valued keys are left out on Airflow 3.0, which cannot store them (test_xcom_values.py).
    missing = (BRANCH_KEYS | {"snapshot_id", "restored_as"}) - set(result)
    assert set(result) <= BRANCH_KEYS | {"snapshot_id", "restored_as"}
    assert missing == ({"parent_id", "expires_at"} if XCOM_REFUSES_NONE else set())
    assert result["snapshot_id"] == newest["snapshot_id"]
    assert result["restored_as"] == jambo_project.default_branch_id
    assert (result["branch_name"], result["created"], result.get("parent_id")) == ("report", True, None)
    assert result["endpoint_id"].startswith("ep-")
    assert result["host"].startswith(result["endpoint_id"])
    assert (result["database"], result["role"]) == ("neondb", "neondb_owner")
    assert "password" not in str(result)
    with jambo_project.hook() as hook:
        endpoint = hook.computes.get(result["endpoint_id"])
        assert (endpoint.branch_id, endpoint.current_state) == (result["branch_id"], "active")

    rerun = restore_op(snapshot=newest["snapshot_name"], branch_name="report").execute(
        make_context("restore")
    )
    assert (rerun["created"], rerun["branch_id"], rerun["endpoint_id"]) == (
        False,
        result["branch_id"],
        result["endpoint_id"],
    )
    # A branch of that name made from another snapshot is not adopted.
    with pytest.raises(JamboRefusedError, match="not restored from snapshot 'older'"):
        restore_op(snapshot="older", branch_name="report").execute(make_context("restore"))


def test_a_failed_restore_deletes_the_branch_it_made(jambo_project: JamboProject) -> None:
    taken = snapshot_op().execute(make_context("snapshot"))
    jambo_project.emu.set_operation_outcome("start_compute", "failed", times=1)
    with pytest.raises(JamboOperationFailedError):
        restore_op(snapshot=taken, branch_name="doomed").execute(make_context("restore"))
    with jambo_project.hook() as hook:
        assert hook.branches.find_by_name("doomed") is None


def test_deferrable_restore_resumes_with_its_result(jambo_project: JamboProject) -> None:
    taken = snapshot_op().execute(make_context("snapshot"))
    jambo_project.emu.set_operation_durations(default=30.0)
    op = restore_op(snapshot=taken, branch_name="deferred", deferrable=True)
    ctx = make_context("restore")
    deferred = defer(op, ctx)
    # Deferred while the restore runs (the compute's create queues on the project's lock), then
    # for the compute's start: each resume is the next step.
    methods = [deferred.method_name]
    jambo_project.emu.advance(60)
    jambo_project.emu.set_operation_durations(default=0.0)
    while True:
        try:
            result = resume(op, ctx, deferred)
            break
        except TaskDeferred as again:
            deferred = again
            methods.append(again.method_name)
            jambo_project.emu.advance(60)
    assert methods[0] == "execute_unlocked"
    assert methods[-1] == "execute_complete"
    assert result["branch_name"] == "deferred"
    assert result["snapshot_id"] == taken["snapshot_id"]
    assert result["created"] is True  # made before the deferral, then adopted as this task's own


def test_finalize_refuses_the_default_branch_unless_told_and_moves_the_computes(
    jambo_project: JamboProject,
) -> None:
    taken = snapshot_op().execute(make_context("snapshot"))
    restored = restore_op(snapshot=taken, branch_name="candidate", compute_type=None).execute(
        make_context("restore")
    )
    emu = jambo_project.emu
    emu.clear_requests()
    with pytest.raises(JamboRefusedError, match="project's default branch; pass allow_protected=True"):
        JamboFinalizeRestoreOperator(task_id="finalize", branch=restored).execute(make_context("finalize"))
    assert not [r for r in emu.requests() if r["method"] in MUTATING]

    finalize = JamboFinalizeRestoreOperator(
        task_id="finalize", branch=restored, old_branch_name="main-before", allow_protected=True
    )
    result = finalize.execute(make_context("finalize"))
    assert result == {
        "project_id": jambo_project.project_id,
        "branch_id": restored["branch_id"],
        "branch_name": "main",
        "replaced_branch_id": jambo_project.default_branch_id,
        "finalized": True,
    }
    with jambo_project.hook() as hook:
        computes = hook.computes.list()
        assert [c.branch_id for c in computes] == [restored["branch_id"]]
        assert hook.branches.get_default().id == restored["branch_id"]
    # A re-run finds it finalized: nothing more is sent.
    emu.clear_requests()
    assert finalize.execute(make_context("finalize"))["finalized"] is True
    assert not [r for r in emu.requests() if r["method"] in MUTATING]


def test_delete_snapshot_is_idempotent(jambo_project: JamboProject) -> None:
    taken = snapshot_op(snapshot_name="to-delete").execute(make_context("snapshot"))
    delete = JamboDeleteSnapshotOperator(task_id="delete", snapshot="to-delete", deferrable=False)
    first = delete.execute(make_context("delete"))
    assert (first["deleted"], first["snapshot_id"]) == (True, taken["snapshot_id"])
    second = delete.execute(make_context("delete"))
    assert (second["deleted"], second.get("snapshot_id")) == (False, None)
    with pytest.raises(JamboLookupError, match="has no snapshot to restore"):
        restore_op(latest_of="main").execute(make_context("restore"))


def test_set_backup_schedule(jambo_project: JamboProject) -> None:
    schedule = [
        {"frequency": "daily", "hour": 1, "retention_seconds": 7 * 86400},
        {"frequency": "monthly", "day": 31},
    ]
    result = JamboSetBackupScheduleOperator(task_id="schedule", branch="main", schedule=schedule).execute(
        make_context("schedule")
    )
    assert result["schedule"] == [
        {"frequency": "daily", "hour": 1, "retention_seconds": 7 * 86400},
        {"frequency": "monthly", "hour": 0, "day": 31},
    ]
    with jambo_project.hook() as hook:
        items = hook.snapshots.get_schedule(jambo_project.default_branch_id).items
        assert [(i.frequency, i.hour, i.day) for i in items] == [("daily", 1, None), ("monthly", 0, 31)]
