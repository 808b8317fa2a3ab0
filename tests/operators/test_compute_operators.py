"""Compute operators against the in-process emulator, sync and deferrable."""

from __future__ import annotations

import pytest
from jambo_support import JamboProject, make_context
from operators.deferral import defer, resume, roundtrip

from airflow_provider_jambo.exceptions import JamboConfigError, JamboOperationTimeoutError, JamboRefusedError
from airflow_provider_jambo.operators.branch_operators import JamboCreateBranchOperator
from airflow_provider_jambo.operators.compute_operators import (
    JamboCreateComputeOperator,
    JamboDeleteComputeOperator,
    JamboStartComputeOperator,
    JamboSuspendComputeOperator,
)


def bare_branch(name: str = "bare") -> dict:
    op = JamboCreateBranchOperator(task_id="b", branch_name=name, compute_type=None, deferrable=False)
    return op.execute(make_context())


def create_compute(branch: str = "main", **kwargs: object) -> JamboCreateComputeOperator:
    kwargs.setdefault("deferrable", False)
    kwargs.setdefault("defer_grace_seconds", 0)
    kwargs.setdefault("poll_interval", 0.05)
    return JamboCreateComputeOperator(task_id="create_compute", branch=branch, **kwargs)  # type: ignore[arg-type]


def endpoints_of(project: JamboProject, branch_id: str) -> list:
    with project.hook() as hook:
        return hook.computes.list(branch_id=branch_id)


def test_create_read_only_compute_on_existing_branch(jambo_project: JamboProject) -> None:
    ctx = make_context()
    result = create_compute(
        compute_type="read_only", min_cu=0.5, max_cu=2, suspend_timeout_seconds=300
    ).execute(ctx)
    assert result["branch_id"] == jambo_project.default_branch_id
    assert result["type"] == "read_only"
    assert result["created"] is True
    assert result["host"].startswith(result["endpoint_id"])
    assert result["pooler_host"].startswith(result["endpoint_id"] + "-pooler")
    eps = {ep.id: ep for ep in endpoints_of(jambo_project, jambo_project.default_branch_id)}
    ep = eps[result["endpoint_id"]]
    assert (ep.type, ep.min_cu, ep.max_cu, ep.suspend_timeout_seconds) == ("read_only", 0.5, 2, 300)
    assert ep.current_state == "active"  # waited for start_compute
    assert ctx["ti"].pushed["return_value"] == result


def test_read_write_compute_is_created_once_and_then_adopted(jambo_project: JamboProject) -> None:
    branch = bare_branch()
    first = create_compute("bare").execute(make_context())
    again = create_compute(branch["branch_id"]).execute(make_context(try_number=2))
    assert first["created"] is True
    assert again["created"] is False
    assert again["endpoint_id"] == first["endpoint_id"]
    assert len(endpoints_of(jambo_project, branch["branch_id"])) == 1
    with pytest.raises(JamboRefusedError, match="already has read_write compute"):
        create_compute("bare", if_exists="fail").execute(make_context())


def test_compute_arguments_checked_at_parse_time() -> None:
    with pytest.raises(JamboConfigError, match=r"max_cu must be a number from 0\.25 to 16"):
        create_compute(max_cu=32)
    with pytest.raises(JamboConfigError, match="compute_type must be one of read_write, read_only"):
        create_compute(compute_type="gpu")
    with pytest.raises(JamboConfigError, match="branch must be a non-empty string"):
        create_compute("")


def test_suspend_start_delete_and_delete_again(jambo_project: JamboProject) -> None:
    created = create_compute(compute_type="read_only").execute(make_context())
    ep_id = created["endpoint_id"]

    suspended = JamboSuspendComputeOperator(
        task_id="s", endpoint_id=ep_id, deferrable=False, poll_interval=0.05
    ).execute(make_context())
    assert suspended["endpoint_id"] == ep_id
    with jambo_project.hook() as hook:
        assert hook.computes.get(ep_id).current_state == "idle"

    started = JamboStartComputeOperator(task_id="st", endpoint_id=ep_id, deferrable=False).execute(
        make_context()
    )
    assert started["branch_id"] == jambo_project.default_branch_id
    with jambo_project.hook() as hook:
        assert hook.computes.get(ep_id).current_state == "active"

    delete = JamboDeleteComputeOperator(task_id="d", endpoint_id=ep_id, deferrable=False)
    assert delete.execute(make_context())["deleted"] is True
    assert ep_id not in {ep.id for ep in endpoints_of(jambo_project, jambo_project.default_branch_id)}
    # Idempotent: a compute that is already gone is success.
    assert delete.execute(make_context())["deleted"] is False


def test_create_compute_deferrable(jambo_project: JamboProject) -> None:
    jambo_project.emu.set_operation_durations(default=0.2)
    ctx = make_context()
    op = create_compute(compute_type="read_only", deferrable=True)
    deferred = defer(op, ctx)
    jambo_project.emu.advance(1)
    result = resume(op, ctx, deferred)
    assert result == ctx["ti"].pushed["return_value"]
    with jambo_project.hook() as hook:
        assert hook.computes.get(result["endpoint_id"]).current_state == "active"


@pytest.mark.parametrize("operator", [JamboSuspendComputeOperator, JamboStartComputeOperator])
def test_start_suspend_deferrable(jambo_project: JamboProject, operator: type) -> None:
    created = create_compute(compute_type="read_only").execute(make_context())
    ctx = make_context()
    op = operator(
        task_id="x",
        endpoint_id=created["endpoint_id"],
        deferrable=True,
        defer_grace_seconds=0,
        poll_interval=0.05,
    )
    if operator is JamboStartComputeOperator:
        JamboSuspendComputeOperator(
            task_id="s", endpoint_id=created["endpoint_id"], deferrable=False
        ).execute(ctx)
    deferred = defer(op, ctx)
    roundtrip(deferred.trigger)
    assert resume(op, ctx, deferred)["endpoint_id"] == created["endpoint_id"]


def test_delete_compute_deferrable(jambo_project: JamboProject) -> None:
    created = create_compute(compute_type="read_only").execute(make_context())
    ctx = make_context()
    op = JamboDeleteComputeOperator(
        task_id="d",
        endpoint_id=created["endpoint_id"],
        deferrable=True,
        defer_grace_seconds=0,
        poll_interval=0.05,
    )
    deferred = defer(op, ctx)
    assert resume(op, ctx, deferred)["deleted"] is True


def test_compute_wait_timeout_names_the_compute(jambo_project: JamboProject) -> None:
    jambo_project.emu.set_operation_durations(default=3600)
    ctx = make_context()
    with pytest.raises(JamboOperationTimeoutError, match="compute ep-"):
        create_compute(compute_type="read_only", timeout=0.3).execute(ctx)
    assert ctx["ti"].pushed["return_value"]["endpoint_id"].startswith("ep-")


def test_upstream_results_are_accepted_as_references(jambo_project: JamboProject) -> None:
    """``branch=create_branch.output`` / ``endpoint_id=create_compute.output`` (rendered dicts)."""
    branch = bare_branch()
    created = create_compute(branch, compute_type="read_only").execute(make_context())  # type: ignore[arg-type]
    assert created["branch_id"] == branch["branch_id"]
    suspended = JamboSuspendComputeOperator(task_id="s", endpoint_id=created, deferrable=False).execute(
        make_context()
    )
    assert suspended["endpoint_id"] == created["endpoint_id"]
    deleted = JamboDeleteComputeOperator(task_id="d", endpoint_id=created, deferrable=False).execute(
        make_context()
    )
    assert deleted["deleted"] is True
    with pytest.raises(JamboConfigError, match="dict without a 'endpoint_id'"):
        JamboDeleteComputeOperator(task_id="d", endpoint_id={"branch_id": "br-x-1"}).execute(make_context())
