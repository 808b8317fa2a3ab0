"""Branch operators against the in-process emulator: sync and deferrable, guard rails, reuse."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from jambo_support import JamboProject, make_context
from operators.deferral import defer, resume, roundtrip, run_trigger

from airflow_provider_jambo.api_models import Branch
from airflow_provider_jambo.create_branch_request import CreateBranchRequest
from airflow_provider_jambo.exceptions import (
    JamboBranchConflict,
    JamboConfigError,
    JamboConflictError,
    JamboError,
    JamboOperationFailedError,
    JamboOperationTimeoutError,
    JamboRefusedError,
)
from airflow_provider_jambo.operators.branch_operators import (
    JamboCreateBranchOperator,
    JamboDeleteBranchOperator,
    JamboResetBranchOperator,
)
from airflow_provider_jambo.triggers.operation_trigger import JamboOperationTrigger

RESULT_KEYS = {
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


def create_op(name: str = "ci-1", **kwargs: object) -> JamboCreateBranchOperator:
    kwargs.setdefault("deferrable", False)
    kwargs.setdefault("defer_grace_seconds", 0)  # defer at once (the grace has its own tests)
    return JamboCreateBranchOperator(task_id="create_branch", branch_name=name, **kwargs)  # type: ignore[arg-type]


# --- create ----------------------------------------------------------------------------------------


def test_create_branch_waits_and_returns_the_documented_xcom(jambo_project: JamboProject) -> None:
    ctx = make_context("create_branch")
    result = create_op(ttl=timedelta(hours=2), annotations={"purpose": "test"}).execute(ctx)

    assert set(result) == RESULT_KEYS
    assert result["created"] is True
    assert result["branch_name"] == "ci-1"
    assert result["parent_id"] == jambo_project.default_branch_id
    assert result["project_id"] == jambo_project.project_id
    assert result["endpoint_id"].startswith("ep-")
    assert result["host"].startswith(result["endpoint_id"])
    assert result["pooler_host"] == result["host"].replace(
        result["endpoint_id"], result["endpoint_id"] + "-pooler"
    )
    assert result["database"] == "neondb"
    assert result["role"] == "neondb_owner"
    expires = datetime.fromisoformat(result["expires_at"].replace("Z", "+00:00"))
    assert timedelta(hours=1, minutes=55) < expires - datetime.now(UTC) <= timedelta(hours=2)
    # Pushed before the wait (so a teardown finds it even if the wait fails), same value as returned.
    assert ctx["ti"].pushed["return_value"] == result
    # multiple_outputs: each key is its own XCom too (``create.output["branch_id"]``).
    assert {k: ctx["ti"].pushed[k] for k in RESULT_KEYS} == result

    with jambo_project.hook() as hook:
        branch = hook.branches.get(result["branch_id"])
        ops = [op for op in hook.operations.list() if op.branch_id == branch.id]
    # wait_for_completion: every operation the create started has finished before the task returns.
    assert ops
    assert all(op.status.value == "finished" for op in ops)
    assert branch.current_state == "ready"
    annotations = (branch.raw.get("annotation") or {}).get("value") or {}
    assert {k: annotations.get(k) for k in ("dag_id", "run_id", "task_id", "try_number", "purpose")} == {
        "dag_id": "test_dag",
        "run_id": "manual__2026-06-01T00:00:00+00:00",
        "task_id": "create_branch",
        "try_number": "1",
        "purpose": "test",
    }


def test_xcom_never_holds_a_password_or_uri(jambo_project: JamboProject) -> None:
    result = create_op().execute(make_context())
    with jambo_project.hook() as hook:
        password = hook.roles.reveal_password(result["branch_id"], "neondb_owner")
    text = json.dumps(result)
    assert password
    assert password not in text
    assert "postgres://" not in text
    assert "postgresql://" not in text
    assert jambo_project.emu.api_key not in text


def test_retried_task_adopts_its_branch(jambo_project: JamboProject) -> None:
    first = create_op().execute(make_context(try_number=1))
    second = create_op().execute(make_context(try_number=2))
    assert first["created"] is True
    assert second["created"] is False
    assert second["branch_id"] == first["branch_id"]
    assert second["endpoint_id"] == first["endpoint_id"]
    assert [b.name for b in jambo_project.branches()].count("ci-1") == 1


def _calls(project: JamboProject) -> list[str]:
    return [f"{r['method']} {r['route']}" for r in project.emu.requests()]


def test_first_try_sends_the_create_first_and_a_retry_looks_first(jambo_project: JamboProject) -> None:
    # A first try has made nothing to adopt: its create is its first request (the default parent is
    # the service's). A retry looks its name up before any create (its earlier try's branch may
    # still be busy, and a create then would meet the project's lock).
    jambo_project.emu.clear_requests()
    first = create_op().execute(make_context(try_number=1))
    assert _calls(jambo_project)[0] == "POST /projects/{project_id}/branches"
    assert first["parent_id"] == jambo_project.default_branch_id
    jambo_project.emu.clear_requests()
    second = create_op().execute(make_context(try_number=2))
    assert second["branch_id"] == first["branch_id"]
    assert "POST /projects/{project_id}/branches" not in _calls(jambo_project)
    assert _calls(jambo_project)[0] == "GET /projects/{project_id}/branches"


def test_first_try_adopts_a_branch_its_name_already_has(jambo_project: JamboProject) -> None:
    # Made by an earlier run (or by hand) with the same name and parent: the 409 leads to adoption.
    made = create_op().execute(make_context(try_number=1))
    jambo_project.emu.clear_requests()
    again = create_op().execute(make_context(try_number=1))
    assert again["created"] is False
    assert again["branch_id"] == made["branch_id"]
    calls = _calls(jambo_project)
    assert calls[:2] == ["POST /projects/{project_id}/branches", "GET /projects/{project_id}/branches"]


def test_retry_after_a_timed_out_wait_adopts_the_branch_and_waits_for_its_operations(
    jambo_project: JamboProject,
) -> None:
    emu = jambo_project.emu
    emu.set_operation_durations(default=10)  # the manual clock stands still until advanced
    first = make_context(try_number=1)
    # keep_on_failure stands in for a first try killed (SIGKILL) before it could delete its branch.
    with pytest.raises(JamboOperationTimeoutError):
        create_op(timeout=0.2, poll_interval=0.05, keep_on_failure=True).execute(first)
    branch_id = first["ti"].pushed["branch_id"]

    second = make_context(try_number=2)
    op = create_op(deferrable=True, poll_interval=0.05)
    deferred = defer(op, second)  # still in flight: the retry waits for the first try's operations
    with jambo_project.hook() as hook:
        in_flight = [op.id for op in hook.operations.list() if op.branch_id == branch_id]
    assert sorted(deferred.trigger.operation_ids) == sorted(in_flight)
    emu.advance(30)
    result = resume(op, second, deferred)
    assert result["branch_id"] == branch_id
    assert result["created"] is False
    assert [b.name for b in jambo_project.branches()].count("ci-1") == 1


def test_without_wait_for_completion_returns_at_once(jambo_project: JamboProject) -> None:
    jambo_project.emu.set_operation_durations(default=3600)
    result = create_op(wait_for_completion=False, deferrable=True).execute(make_context())
    assert result["created"] is True
    assert jambo_project.branch_named("ci-1").current_state != "ready"


def test_if_exists_fail_refuses_an_existing_branch(jambo_project: JamboProject) -> None:
    create_op().execute(make_context())
    with pytest.raises(JamboConflictError, match=r"already exists.*if_exists='fail'"):
        create_op(if_exists="fail").execute(make_context(try_number=2))
    assert [b.name for b in jambo_project.branches()].count("ci-1") == 1


def test_reused_branch_with_another_parent_is_reported(jambo_project: JamboProject) -> None:
    dev = create_op("dev").execute(make_context())
    create_op("feature").execute(make_context())  # child of the default branch
    with pytest.raises(JamboBranchConflict) as raised:
        create_op("feature", parent="dev").execute(make_context(try_number=2))
    assert jambo_project.branch_named("feature").parent_id != dev["branch_id"]
    # The operator surfaces the hook's message unchanged: both parents and what to do.
    with jambo_project.hook() as hook, pytest.raises(JamboBranchConflict) as from_hook:
        hook.branches.get_or_create(CreateBranchRequest(name="feature", parent_id=dev["branch_id"]))
    assert str(raised.value) == str(from_hook.value)
    for part in (
        "'feature'",
        "with parent 'main'",
        "requested parent 'dev'",
        "another branch name",
        "delete the existing branch",
        "if_exists='fail'",
    ):
        assert part in str(raised.value)


def test_named_parent_at_a_point_in_time(jambo_project: JamboProject) -> None:
    dev = create_op("dev").execute(make_context())
    jambo_project.emu.advance(120)
    with jambo_project.hook() as hook:
        created_at = hook.branches.get(dev["branch_id"]).created_at
    assert created_at is not None
    at = created_at + timedelta(seconds=60)
    # The emulator's clock was advanced past ``at``; a point in time must not be in this machine's
    # future either (the provider refuses that before sending), so this machine's clock follows.
    with time_machine.travel(at + timedelta(seconds=1), tick=True):
        result = create_op("dev-then", parent="dev", parent_timestamp=at, compute_type=None).execute(
            make_context()
        )
    assert result["parent_id"] == dev["branch_id"]
    assert result.get("endpoint_id") is None  # left out on Airflow 3.0 (test_xcom_values.py)
    assert result.get("host") is None
    branch = jambo_project.branch_named("dev-then")
    assert branch.raw.get("parent_timestamp", "").startswith(at.strftime("%Y-%m-%dT%H:%M"))


def test_schema_only_branch_is_a_root_and_is_adopted_on_retry(jambo_project: JamboProject) -> None:
    first = create_op("schema", schema_only=True).execute(make_context())
    assert first["created"] is True
    assert first.get("parent_id") is None  # a new root holding the parent's schema only
    again = create_op("schema", schema_only=True).execute(make_context(try_number=2))
    assert again["created"] is False
    assert again["branch_id"] == first["branch_id"]
    create_op("child").execute(make_context())
    with pytest.raises(
        JamboBranchConflict, match=r"with parent 'main' .* not the requested a schema-only root"
    ):
        create_op("child", schema_only=True).execute(make_context())


def test_parent_is_matched_by_exact_name_only(jambo_project: JamboProject) -> None:
    create_op("dev-1").execute(make_context())
    with pytest.raises(JamboError, match="'dev' not found"):
        create_op("child", parent="dev").execute(make_context())
    assert jambo_project.branch_named("child") is None


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"ttl": timedelta(days=31)}, "ttl must be at most 30 days"),
        ({"ttl": 3600, "protected": True}, "protected"),
        ({"expires_at": "2020-01-01T00:00:00Z"}, "expires_at must be in the future"),
        ({"compute_type": "huge"}, "compute_type must be one of read_write, read_only"),
        ({"min_cu": 0.25, "max_cu": 10}, "max_cu - min_cu must be at most 8"),
        ({"if_exists": "replace"}, "if_exists must be one of reuse, fail"),
        ({"parent_timestamp": "2026-01-01T00:00:00Z", "parent_lsn": "0/1"}, "not both"),
    ],
)
def test_bad_arguments_fail_when_the_dag_is_parsed(kwargs: dict, fragment: str) -> None:
    with pytest.raises(JamboConfigError, match=fragment):
        create_op(**kwargs)


def test_templated_values_are_checked_at_run_time_before_any_call(jambo_project: JamboProject) -> None:
    op = create_op(expires_at="{{ params.when }}")  # cannot be checked at parse time
    op.expires_at = (datetime.now(UTC) + timedelta(days=40)).isoformat()  # as rendered
    jambo_project.emu.clear_requests()
    with pytest.raises(JamboConfigError, match="at most 30 days"):
        op.execute(make_context())
    assert jambo_project.emu.requests() == []


def test_result_that_is_the_parent_or_default_is_refused() -> None:
    op = create_op("ci-1")
    parent = Branch(id="br-parent-1", project_id="p", name="main", default=True)
    with pytest.raises(JamboRefusedError, match="parent or the default"):
        op._check_result(Branch(id="br-parent-1", project_id="p", name="ci-1", parent_id=None), parent)
    with pytest.raises(JamboRefusedError, match="parent or the default"):
        op._check_result(Branch(id="br-x-1", project_id="p", name="ci-1", default=True), parent)
    with pytest.raises(JamboRefusedError, match="for name 'ci-1'"):
        op._check_result(Branch(id="br-x-2", project_id="p", name="ci-10", parent_id="br-parent-1"), parent)


def test_create_deferrable_round_trip(jambo_project: JamboProject) -> None:
    jambo_project.emu.set_operation_durations(default=0.3)
    ctx = make_context()
    op = create_op(deferrable=True, poll_interval=0.05)
    deferred = defer(op, ctx)
    trigger = deferred.trigger
    assert isinstance(trigger, JamboOperationTrigger)
    assert deferred.method_name == "execute_complete"
    _, kwargs = trigger.serialize()
    assert set(kwargs) == {
        "jambo_conn_id",
        "project_id",
        "operation_ids",
        "operations",
        "durations",
        "deadline",
        "poll_interval",
        "retry_policy",
        "not_before",
        "delete_on_kill",  # the created branch's id (issue 22: on_kill)
    }
    assert jambo_project.emu.api_key not in json.dumps(kwargs)
    assert ctx["ti"].pushed["return_value"]["branch_id"]  # pushed before deferring
    jambo_project.emu.advance(1)
    result = resume(op, ctx, deferred)
    assert result == ctx["ti"].pushed["return_value"]
    assert jambo_project.branch_named("ci-1").current_state == "ready"


def test_execute_complete_outcomes() -> None:
    op = create_op()
    result = {"project_id": "p", "branch_id": "br-a-1"}
    ids = ["op-1"]
    assert (
        op.execute_complete({}, {"status": "success", "operation_ids": ids, "message": "ok"}, result)
        == result
    )
    with pytest.raises(JamboOperationFailedError, match="create_branch op-1 failed"):
        op.execute_complete(
            {}, {"status": "failed", "operation_ids": ids, "message": "create_branch op-1 failed"}, result
        )
    with pytest.raises(JamboOperationTimeoutError, match="br-a-1 is deleted by this task") as info:
        op.execute_complete(
            {}, {"status": "timeout", "operation_ids": ids, "message": "still running"}, result
        )
    assert "op-1" in str(info.value)
    with pytest.raises(JamboError, match="401 bad key"):
        op.execute_complete({}, {"status": "error", "operation_ids": ids, "message": "401 bad key"}, result)


def test_sync_wait_timeout_fails_but_keeps_the_branch_id(jambo_project: JamboProject) -> None:
    jambo_project.emu.set_operation_durations(default=3600)  # manual clock never reaches it
    ctx = make_context()
    with pytest.raises(JamboOperationTimeoutError, match="not done within the timeout"):
        create_op(timeout=0.3, poll_interval=0.05, keep_on_failure=True).execute(ctx)
    assert ctx["ti"].pushed["return_value"]["branch_id"] == jambo_project.branch_named("ci-1").id


def test_failed_create_operation_fails_the_task(jambo_project: JamboProject) -> None:
    jambo_project.emu.set_operation_outcome("create_branch", "error", times=1)
    with pytest.raises(JamboOperationFailedError, match="create_branch"):
        create_op(poll_interval=0.05).execute(make_context())
    # All or nothing: the task deleted the branch it created before failing.
    assert jambo_project.branch_named("ci-1") is None


# --- delete ----------------------------------------------------------------------------------------


def delete_op(branch: str, **kwargs: object) -> JamboDeleteBranchOperator:
    kwargs.setdefault("deferrable", False)
    kwargs.setdefault("defer_grace_seconds", 0)  # defer at once (the grace has its own tests)
    return JamboDeleteBranchOperator(task_id="delete_branch", branch=branch, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("by", ["name", "id"])
def test_delete_branch(jambo_project: JamboProject, by: str) -> None:
    created = create_op().execute(make_context())
    ref = created["branch_name"] if by == "name" else created["branch_id"]
    result = delete_op(ref).execute(make_context())
    assert result == {
        "project_id": jambo_project.project_id,
        "branch_id": created["branch_id"],
        "branch_name": "ci-1",
        "deleted": True,
    }
    assert jambo_project.branch_named("ci-1") is None


def test_delete_takes_the_create_result_and_its_project(
    jambo_project: JamboProject, monkeypatch: pytest.MonkeyPatch
) -> None:
    created = create_op().execute(make_context())
    # The connection names no default project: the project comes from the upstream result.
    from jambo_support import connection_json

    conn = json.loads(connection_json(jambo_project.emu, jambo_project.project_id))
    conn["extra"].pop("project_id")
    monkeypatch.setenv("AIRFLOW_CONN_JAMBO_DEFAULT", json.dumps(conn))
    result = delete_op(created).execute(make_context())  # type: ignore[arg-type]
    assert result["branch_id"] == created["branch_id"]
    assert result["project_id"] == jambo_project.project_id
    assert jambo_project.branch_named("ci-1") is None


def test_delete_missing_branch_is_success(
    jambo_project: JamboProject, capsys: pytest.CaptureFixture[str]
) -> None:
    result = delete_op("never-existed").execute(make_context())
    assert result["deleted"] is False
    out, err = capsys.readouterr()
    assert "'never-existed' does not exist" in out + err
    assert "nothing to delete" in out + err


def test_wrong_name_never_matches_a_prefix(jambo_project: JamboProject) -> None:
    create_op("feature-1").execute(make_context())
    create_op("xfeature").execute(make_context())
    result = delete_op("feature").execute(make_context())
    assert result["deleted"] is False
    assert jambo_project.branch_named("feature-1") is not None
    assert jambo_project.branch_named("xfeature") is not None


def test_delete_refuses_default_and_protected(jambo_project: JamboProject) -> None:
    jambo_project.emu.clear_requests()
    with pytest.raises(JamboRefusedError, match="default branch"):
        delete_op("main").execute(make_context())
    with pytest.raises(JamboRefusedError, match="default branch"):
        delete_op("main", allow_protected=True).execute(make_context())
    assert not [r for r in jambo_project.emu.requests() if r["method"] == "DELETE"]

    create_op("keep", protected=True).execute(make_context())
    with pytest.raises(JamboRefusedError, match=r"protected.*allow_protected=True"):
        delete_op("keep").execute(make_context())
    assert jambo_project.branch_named("keep") is not None
    assert delete_op("keep", allow_protected=True).execute(make_context())["deleted"] is True
    assert jambo_project.branch_named("keep") is None


def test_delete_reads_the_branch_and_its_children_in_one_listing(jambo_project: JamboProject) -> None:
    created = create_op().execute(make_context())
    jambo_project.emu.clear_requests()
    delete_op(created["branch_id"]).execute(make_context())
    calls = _calls(jambo_project)
    assert calls[:2] == [
        "GET /projects/{project_id}/branches",
        "DELETE /projects/{project_id}/branches/{branch_id}",
    ]


def test_delete_branch_with_children_names_them(jambo_project: JamboProject) -> None:
    create_op("parent").execute(make_context())
    create_op("child", parent="parent").execute(make_context())
    with pytest.raises(JamboRefusedError, match="child branches 'child'"):
        delete_op("parent").execute(make_context())
    assert jambo_project.branch_named("parent") is not None


def test_delete_deferrable(jambo_project: JamboProject) -> None:
    create_op().execute(make_context())
    ctx = make_context()
    op = delete_op("ci-1", deferrable=True, poll_interval=0.05)
    deferred = defer(op, ctx)
    roundtrip(deferred.trigger)
    result = resume(op, ctx, deferred)
    assert result["deleted"] is True
    assert jambo_project.branch_named("ci-1") is None


def test_resume_without_result_kwarg_uses_the_xcom_pushed_before_deferring(
    jambo_project: JamboProject,
) -> None:
    """`airflow dags test` drops next_kwargs when it runs the trigger inline: the result survives."""
    create_op().execute(make_context())
    ctx = make_context("delete_branch")
    op = delete_op("ci-1", deferrable=True, poll_interval=0.05)
    deferred = defer(op, ctx)
    assert ctx["ti"].pushed["return_value"]["deleted"] is True
    event = run_trigger(roundtrip(deferred.trigger))
    result = op.resume_execution(deferred.method_name, {"event": event.payload}, ctx)
    assert result == ctx["ti"].pushed["return_value"]
    assert jambo_project.branch_named("ci-1") is None


# --- reset -----------------------------------------------------------------------------------------


def reset_op(branch: str, **kwargs: object) -> JamboResetBranchOperator:
    kwargs.setdefault("deferrable", False)
    kwargs.setdefault("defer_grace_seconds", 0)  # defer at once (the grace has its own tests)
    return JamboResetBranchOperator(task_id="reset_branch", branch=branch, **kwargs)  # type: ignore[arg-type]


def test_reset_from_parent_with_preserved_copy(jambo_project: JamboProject) -> None:
    created = create_op(ttl=3600).execute(make_context())
    jambo_project.emu.advance(600)
    result = reset_op("ci-1", preserve_under_name="ci-1-before").execute(make_context())
    assert result["branch_id"] == created["branch_id"]
    assert result["source_id"] == jambo_project.default_branch_id
    preserved = jambo_project.branch_named("ci-1-before")
    assert preserved is not None
    assert preserved.id != created["branch_id"]
    branch = jambo_project.branch_named("ci-1")
    assert branch.raw.get("last_reset_at")
    # The TTL restarts with the reset (the service re-applies ttl_interval_seconds).
    assert branch.expires_at is not None
    assert branch.expires_at > datetime.fromisoformat(created["expires_at"].replace("Z", "+00:00"))


def test_reset_to_its_own_past_reapplies_the_ttl(jambo_project: JamboProject) -> None:
    created = create_op(ttl=3600).execute(make_context())
    jambo_project.emu.advance(600)
    with jambo_project.hook() as hook:
        born = hook.branches.get(created["branch_id"]).created_at
    assert born is not None
    at = born + timedelta(seconds=60)
    jambo_project.emu.clear_requests()
    # ``at`` is in the emulator's (advanced) past; this machine's clock follows it, since a point
    # in time in the local future is refused before anything is sent.
    with time_machine.travel(at + timedelta(seconds=1), tick=True):
        with pytest.raises(JamboRefusedError, match="needs preserve_under_name"):
            reset_op("ci-1", source="ci-1", source_timestamp=at).execute(make_context())
        result = reset_op("ci-1", source="ci-1", source_timestamp=at, preserve_under_name="ci-1-old").execute(
            make_context()
        )
        assert result["source_id"] == created["branch_id"]
        restores = [r for r in jambo_project.emu.requests() if r["path"].endswith("/restore")]
        assert len(restores) == 1
        # Not a reset from the parent, so the operator re-applied the branch's TTL interval itself.
        expires = jambo_project.branch_named("ci-1").expires_at
        assert expires is not None
        # (+2 s: the service's timestamps and TTL interval are whole seconds.)
        assert timedelta(minutes=55) < expires - datetime.now(UTC) <= timedelta(hours=1, seconds=2)


def test_reset_with_new_ttl(jambo_project: JamboProject) -> None:
    create_op().execute(make_context())
    result = reset_op("ci-1", ttl=timedelta(hours=3)).execute(make_context())
    assert result["expires_at"] is not None
    assert jambo_project.branch_named("ci-1").expires_at is not None


def test_reset_refuses_default_and_protected(jambo_project: JamboProject) -> None:
    with pytest.raises(JamboRefusedError, match="default branch"):
        reset_op("main").execute(make_context())
    create_op("keep", protected=True).execute(make_context())
    with pytest.raises(JamboRefusedError, match="protected"):
        reset_op("keep").execute(make_context())


def test_reset_deferrable(jambo_project: JamboProject) -> None:
    create_op().execute(make_context())
    ctx = make_context()
    op = reset_op("ci-1", deferrable=True, poll_interval=0.05)
    deferred = defer(op, ctx)
    result = resume(op, ctx, deferred)
    assert result["branch_name"] == "ci-1"


def test_no_hook_or_connection_at_construction(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AIRFLOW_CONN_JAMBO_DEFAULT", raising=False)
    op = create_op(jambo_conn_id="does_not_exist")
    assert "hook" not in op.__dict__
    # The missing connection surfaces only at run time, with a clear message.
    with pytest.raises(JamboConfigError, match="connection 'does_not_exist' is not defined"):
        op.execute(make_context())
