"""Every hook method and every retry rule against the in-process emulator and its fault injection.

Retry waits and polling pauses never really sleep: the hook's ``sleep`` is replaced by one that
records the wait and advances the emulator's manual clock by it, so operations progress exactly as
if the time had passed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest import mock

import pytest
from hook_support import logged_text

from airflow_provider_jambo.api_models import OperationStatus
from airflow_provider_jambo.create_branch_request import CreateBranchRequest
from airflow_provider_jambo.exceptions import (
    JamboAPIError,
    JamboAuthError,
    JamboBranchConflict,
    JamboBranchNotFound,
    JamboConfigError,
    JamboConflictError,
    JamboLockedError,
    JamboNotFoundError,
    JamboRateLimitedError,
    JamboServerError,
    JamboTransportError,
)
from airflow_provider_jambo.hooks import secret_masking
from airflow_provider_jambo.hooks.client import ApiRequest
from airflow_provider_jambo.hooks.jambo import JamboHook
from airflow_provider_jambo.hooks.resources import branches as branches_module
from airflow_provider_jambo.hooks.resources import operations as operations_module
from airflow_provider_jambo.hooks.resources import projects as projects_module
from airflow_provider_jambo.hooks.retry import RetryPolicy

BRANCHES = "/projects/{project_id}/branches"
BRANCH = "/projects/{project_id}/branches/{branch_id}"
OPERATION = "/projects/{project_id}/operations/{operation_id}"
ENDPOINTS = "/projects/{project_id}/endpoints"


class EmulatorSleep:
    """The hook's sleep and clock: record the wait and move the emulator's clock by it."""

    def __init__(self, emu: Any) -> None:
        self.emu = emu
        self.calls: list[float] = []
        self.start = time.time()

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)
        self.emu.advance(seconds)

    def clock(self) -> float:
        return self.start + sum(self.calls)

    async def asleep(self, seconds: float) -> None:
        self(seconds)


@pytest.fixture
def emu(jambo_emulator: Any) -> Any:
    return jambo_emulator


@pytest.fixture
def project_id(emu: Any) -> str:
    return str(emu.create_project(name="hook-tests")["project"]["id"])


@pytest.fixture
def emu_sleep(emu: Any) -> EmulatorSleep:
    return EmulatorSleep(emu)


@pytest.fixture
def connect(
    emu: Any, project_id: str, set_connection: Callable[..., str], emu_sleep: EmulatorSleep
) -> Iterator[Callable[..., JamboHook]]:
    hooks: list[JamboHook] = []

    def build(*, api_key: str | None = None, **hook_kwargs: Any) -> JamboHook:
        conn_id = set_connection(
            "jambo_emu", host=emu.base_url, password=api_key or emu.api_key, project_id=project_id
        )
        hook = JamboHook(conn_id, **hook_kwargs)
        hook.sleep = emu_sleep
        hook.asleep = emu_sleep.asleep
        hook.clock = emu_sleep.clock
        hooks.append(hook)
        return hook

    yield build
    for hook in hooks:
        hook.close()


@pytest.fixture
def hook(connect: Callable[..., JamboHook]) -> JamboHook:
    return connect()


def posts(emu: Any, route: str, *, settle: int | None = None) -> list[dict[str, Any]]:
    """The logged POSTs to ``route``. A dropped request is logged just after its connection closes,
    so with ``settle=n`` wait (up to 2 s) for n entries to show up before answering."""
    give_up = time.monotonic() + 2.0
    while True:
        found = [r for r in emu.requests() if r["method"] == "POST" and r["route"] == route]
        if settle is None or len(found) >= settle or time.monotonic() > give_up:
            return found
        time.sleep(0.02)


# --- projects -------------------------------------------------------------------------------------


def test_projects_list_get_create(hook: JamboHook, project_id: str, monkeypatch: pytest.MonkeyPatch) -> None:
    created = hook.projects.create(name="second")
    hook.projects.create(name="third")
    assert created.project.name == "second"
    assert created.branch is not None
    assert created.branch.default
    assert {op.action for op in created.operations} >= {"create_timeline"}
    # Pages of 2 force the cursor/limit style across several requests.
    monkeypatch.setattr(projects_module, "PROJECT_PAGE_LIMIT", 2)
    names = {p.name for p in hook.projects.list()}
    assert {"hook-tests", "second", "third"} <= names
    assert hook.projects.get().id == project_id
    assert hook.projects.get(created.project.id).name == "second"
    with pytest.raises(JamboNotFoundError, match=r"GET /projects/no-such-project -> 404"):
        hook.projects.get("no-such-project")


# --- branches -------------------------------------------------------------------------------------


def test_branch_lifecycle(hook: JamboHook, emu: Any, project_id: str) -> None:
    main = hook.branches.get_default()
    assert main.default
    creation = hook.branches.create(
        CreateBranchRequest(
            name="dev", parent_id=main.id, endpoints=[{"type": "read_write"}], annotations={"dag_id": "d1"}
        )
    )
    assert creation.created
    assert creation.branch.parent_id == main.id
    assert creation.read_write_endpoint is not None
    assert {op.action for op in creation.operations} >= {"create_branch", "start_compute"}
    waited = hook.operations.wait([op.id for op in creation.operations], timeout=60)
    assert waited.status == "success", waited.message

    branch = hook.branches.get(creation.branch.id)
    assert branch.name == "dev"
    assert branch.is_ready
    assert hook.branches.resolve("dev").id == branch.id
    assert hook.branches.resolve(branch.id).id == branch.id
    with pytest.raises(JamboBranchNotFound, match="branch 'nope' not found"):
        hook.branches.resolve("nope")

    renamed = hook.branches.update(branch.id, name="dev-renamed")
    assert renamed.resource.name == "dev-renamed"
    expiry = (datetime.now(UTC) + timedelta(days=1)).replace(microsecond=0)
    with_ttl = hook.branches.update(branch.id, expires_at=expiry)
    assert with_ttl.resource.expires_at == expiry
    cleared = hook.branches.update(branch.id, expires_at=None)
    assert cleared.resource.expires_at is None
    protected = hook.branches.update(branch.id, protected=True)
    assert protected.resource.protected
    hook.branches.update(branch.id, protected=False)

    ops = hook.branches.delete(branch.id)
    assert ops
    assert hook.operations.wait([o.id for o in ops], timeout=60).status == "success"
    assert hook.branches.delete(branch.id) == []  # already gone: 204
    with pytest.raises(JamboNotFoundError):
        hook.branches.get(branch.id)


def test_find_branch_by_name_is_exact_and_follows_pages(
    hook: JamboHook, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("feature", "feature-2", "my-feature", "other"):
        hook.branches.create(CreateBranchRequest(name=name))
    monkeypatch.setattr(branches_module, "BRANCH_PAGE_LIMIT", 2)
    all_names = [b.name for b in hook.branches.list()]
    assert sorted(all_names) == sorted(["main", "feature", "feature-2", "my-feature", "other"])
    assert len(all_names) == len(set(all_names))
    found = hook.branches.find_by_name("feature")
    assert found is not None
    assert found.name == "feature"
    assert hook.branches.find_by_name("featur") is None


def test_get_or_create_branch(hook: JamboHook, emu: Any) -> None:
    first = hook.branches.get_or_create(CreateBranchRequest(name="preview-1"))
    again = hook.branches.get_or_create(CreateBranchRequest(name="preview-1"))
    assert first.created
    assert not again.created
    assert again.branch.id == first.branch.id
    assert len(posts(emu, BRANCHES)) == 1
    other_parent = hook.branches.create(CreateBranchRequest(name="base")).branch
    with pytest.raises(JamboBranchConflict) as raised:
        hook.branches.get_or_create(CreateBranchRequest(name="preview-1", parent_id=other_parent.id))
    main = hook.branches.get_default()
    assert str(raised.value) == (
        f"branch 'preview-1' ({first.branch.id}) already exists in project {main.project_id} "
        f"with parent 'main' ({main.id}), not the requested parent 'base' ({other_parent.id}), "
        "so it is not adopted. Use another branch name, delete the existing branch, or set "
        "if_exists='fail' (JamboCreateBranchOperator) to fail whenever the name is taken"
    )
    assert len(posts(emu, BRANCHES)) == 2  # the conflict is found before any create is sent


def test_get_or_create_without_looking_first_adopts_on_the_conflict(hook: JamboHook, emu: Any) -> None:
    emu.clear_requests()
    first = hook.branches.get_or_create(CreateBranchRequest(name="preview-2"), look_first=False)
    assert [r["method"] for r in emu.requests()] == ["POST"]  # the create is the only request
    again = hook.branches.get_or_create(CreateBranchRequest(name="preview-2"), look_first=False)
    assert first.created
    assert not again.created
    assert again.branch.id == first.branch.id
    assert len(posts(emu, BRANCHES)) == 2  # the second answered 409: nothing was made twice
    assert [b.name for b in hook.branches.list()].count("preview-2") == 1


def test_get_or_create_schema_only_branch_adopts_the_root(hook: JamboHook, emu: Any) -> None:
    # The service makes a schema-only branch a new root: it reports no parent for it.
    main = hook.branches.get_default()
    first = hook.branches.get_or_create(
        CreateBranchRequest(name="schema", parent_id=main.id, init_source="schema-only")
    )
    again = hook.branches.get_or_create(
        CreateBranchRequest(name="schema", parent_id=main.id, init_source="schema-only")
    )
    assert first.created
    assert first.branch.parent_id is None
    assert first.branch.init_source == "schema-only"
    assert not again.created
    assert again.branch.id == first.branch.id
    assert len(posts(emu, BRANCHES)) == 1
    # A root is not what a parent-data create asks for, and a child is not a schema-only root.
    with pytest.raises(
        JamboBranchConflict,
        match=r"exists .* as a schema-only root \(no parent\), not the requested parent 'main'",
    ):
        hook.branches.get_or_create(CreateBranchRequest(name="schema", parent_id=main.id))
    hook.branches.create(CreateBranchRequest(name="child", parent_id=main.id))
    with pytest.raises(
        JamboBranchConflict,
        match=r"with parent 'main' \(br-[a-z0-9-]+\), not the requested a schema-only root \(no parent\)",
    ):
        hook.branches.get_or_create(
            CreateBranchRequest(name="child", parent_id=main.id, init_source="schema-only")
        )
    # The default branch is a root as well, but never a schema-only one.
    with pytest.raises(JamboBranchConflict, match=r"as the project's default branch .* schema-only root"):
        hook.branches.get_or_create(
            CreateBranchRequest(name=main.name, parent_id=main.id, init_source="schema-only")
        )


def test_dropped_schema_only_create_is_adopted(hook: JamboHook, emu: Any) -> None:
    main = hook.branches.get_default()
    emu.inject_fault("POST", BRANCHES, faults=[{"kind": "drop_after_apply"}], times=1)
    creation = hook.branches.create(
        CreateBranchRequest(name="schema-once", parent_id=main.id, init_source="schema-only")
    )
    assert creation.created
    assert creation.branch.parent_id is None
    assert [b.name for b in hook.branches.list()].count("schema-once") == 1
    assert len(posts(emu, BRANCHES, settle=1)) == 1


def test_delete_whose_response_was_lost_still_returns_the_deletion_operations(
    hook: JamboHook, emu: Any
) -> None:
    """The re-sent DELETE gets 204 (already gone); the first attempt's operations are still running."""
    creation = hook.branches.create(
        CreateBranchRequest(name="lost-delete", endpoints=[{"type": "read_write"}])
    )
    hook.operations.wait([o.id for o in creation.operations], timeout=60).raise_for_status()
    # Long enough that the retry layer's own waits (they advance this clock) cannot finish them.
    emu.set_operation_durations(default=60.0)
    emu.inject_fault("DELETE", BRANCH, faults=[{"kind": "drop_after_apply"}], times=1)
    ops = hook.branches.delete(creation.branch.id)
    assert {op.action for op in ops} >= {"delete_timeline"}
    assert all(op.branch_id == creation.branch.id for op in ops)
    assert any(op.status.is_in_flight for op in ops)
    result = hook.operations.wait([op.id for op in ops], timeout=3600)
    assert result.status == "success"
    # A branch deleted long ago: 204 and nothing to wait for.
    assert hook.branches.delete(creation.branch.id) == []


def test_create_branch_duplicate_name_is_conflict(hook: JamboHook) -> None:
    hook.branches.create(CreateBranchRequest(name="twice"))
    with pytest.raises(JamboConflictError, match=r"POST /projects/[a-z0-9-]+/branches -> 409"):
        hook.branches.create(CreateBranchRequest(name="twice"))


def test_restore_and_set_default(hook: JamboHook) -> None:
    main = hook.branches.get_default()
    child = hook.branches.create(CreateBranchRequest(name="child")).branch
    restored = hook.branches.restore(
        child.id, source_branch_id=main.id, preserve_under_name="child-before-reset"
    )
    assert restored.resource.id == child.id
    hook.operations.wait([o.id for o in restored.operations], timeout=60).raise_for_status()
    assert hook.branches.find_by_name("child-before-reset") is not None
    made_default = hook.branches.set_default(child.id)
    assert made_default.resource.default
    assert hook.branches.get_default().id == child.id


def test_schema_and_compare_schema(hook: JamboHook) -> None:
    main = hook.branches.get_default()
    child = hook.branches.create(CreateBranchRequest(name="schema-child")).branch
    db = hook.databases.list(main.id)[0].name
    sql = hook.branches.get_schema(main.id, database=db)
    assert "PostgreSQL database dump" in sql
    assert f"Database: {db}" in sql
    # Same schema on both sides: an empty diff (the emulator's NullDataPlane has no real data).
    assert hook.branches.compare_schema(child.id, database=db, base_branch_id=main.id) == ""
    with pytest.raises(JamboNotFoundError, match="/schema -> 404"):
        hook.branches.get_schema(main.id, database="no_such_db")


def test_bad_arguments_fail_before_any_request(hook: JamboHook, emu: Any) -> None:
    emu.clear_requests()
    with pytest.raises(JamboConfigError, match="init_source must be one of"):
        hook.branches.create(CreateBranchRequest(name="x", init_source="copy"))
    with pytest.raises(JamboConfigError, match="expires_at must be at most 30 days ahead"):
        hook.branches.create(CreateBranchRequest(name="x", expires_at=datetime.now(UTC) + timedelta(days=40)))
    with pytest.raises(JamboConfigError, match="RFC 3339 timestamp with a zone"):
        hook.branches.update("br-x", expires_at="2030-01-01T00:00:00")
    with pytest.raises(JamboConfigError, match="branch_id must be a Jambo id"):
        hook.branches.get("../../etc")
    with pytest.raises(JamboConfigError, match="max_cu - min_cu must be at most 8"):
        hook.computes.create("br-x", min_cu=0.25, max_cu=10)
    with pytest.raises(JamboConfigError, match="at least one of"):
        hook.branches.update("br-x")
    assert emu.requests() == []


# --- endpoints ------------------------------------------------------------------------------------


def test_endpoint_lifecycle(hook: JamboHook) -> None:
    branch = hook.branches.create(CreateBranchRequest(name="compute")).branch
    made = hook.computes.create(
        branch.id, type="read_write", min_cu=0.25, max_cu=1, suspend_timeout_seconds=300
    )
    endpoint = made.resource
    assert endpoint.branch_id == branch.id
    assert endpoint.max_cu == 1
    hook.operations.wait([o.id for o in made.operations], timeout=60).raise_for_status()
    assert hook.computes.get(endpoint.id).current_state == "active"
    assert endpoint.id in {e.id for e in hook.computes.list()}
    assert [e.id for e in hook.computes.list(branch_id=branch.id)] == [endpoint.id]
    assert hook.computes.update(endpoint.id, max_cu=2).resource.max_cu == 2
    for action in (hook.computes.suspend, hook.computes.start, hook.computes.restart):
        mutation = action(endpoint.id)
        assert mutation.resource.id == endpoint.id
        hook.operations.wait([o.id for o in mutation.operations], timeout=60).raise_for_status()
    ops = hook.computes.delete(endpoint.id)
    hook.operations.wait([o.id for o in ops], timeout=60).raise_for_status()
    assert hook.computes.delete(endpoint.id) == []
    with pytest.raises(JamboNotFoundError):
        hook.computes.get(endpoint.id)


# --- databases and roles --------------------------------------------------------------------------


def test_databases_and_roles(hook: JamboHook) -> None:
    main = hook.branches.get_default()
    role = hook.roles.create(main.id, "app_user")
    assert role.resource.name == "app_user"
    assert role.resource.password
    assert "app_user" in {r.name for r in hook.roles.list(main.id)}
    assert hook.roles.get(main.id, "app_user").password is None
    db = hook.databases.create(main.id, "appdb", owner_name="app_user")
    assert db.resource.owner_name == "app_user"
    assert hook.databases.get(main.id, "appdb").name == "appdb"
    assert "appdb" in {d.name for d in hook.databases.list(main.id)}

    revealed = hook.roles.reveal_password(main.id, "app_user")
    assert revealed == role.resource.password
    reset = hook.roles.reset_password(main.id, "app_user")
    assert reset.resource.password
    assert reset.resource.password != revealed
    hook.operations.wait([o.id for o in reset.operations], timeout=60).raise_for_status()

    hook.operations.wait(
        [o.id for o in hook.databases.delete(main.id, "appdb")], timeout=60
    ).raise_for_status()
    assert hook.databases.delete(main.id, "appdb") == []
    hook.roles.delete(main.id, "app_user")
    with pytest.raises(JamboNotFoundError):
        hook.roles.get(main.id, "app_user")


def test_connection_uri_direct_and_pooled(hook: JamboHook) -> None:
    main = hook.branches.get_default()
    db = hook.databases.list(main.id)[0]
    with mock.patch.object(secret_masking, "mask_secret") as masker:
        direct = hook.branches.connection_uri(branch_id=main.id, database=db.name, role=db.owner_name)
        pooled = hook.branches.connection_uri(
            branch_id=main.id, database=db.name, role=db.owner_name, pooled=True
        )
    assert direct.startswith("postgresql://")
    assert "-pooler" in pooled
    assert "-pooler" not in direct
    password = hook.roles.reveal_password(main.id, db.owner_name)
    assert f":{password}@" in direct
    masked = [call.args[0] for call in masker.call_args_list]
    assert password in masked
    assert direct in masked


def test_role_passwords_are_masked_before_returning(hook: JamboHook) -> None:
    main = hook.branches.get_default()
    with mock.patch.object(secret_masking, "mask_secret") as masker:
        created = hook.roles.create(main.id, "masked_role")
        revealed = hook.roles.reveal_password(main.id, "masked_role")
        reset = hook.roles.reset_password(main.id, "masked_role")
    masked = {call.args[0] for call in masker.call_args_list}
    assert created.resource.password in masked
    assert revealed in masked
    assert reset.resource.password in masked


def test_passwords_and_key_never_logged_or_in_errors(
    connect: Callable[..., JamboHook],
    emu: Any,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    hook = connect()
    main = hook.branches.get_default()
    secrets = [emu.api_key]
    role = hook.roles.create(main.id, "leaky")
    secrets.append(str(role.resource.password))
    secrets.append(hook.roles.reveal_password(main.id, "leaky"))
    secrets.append(str(hook.roles.reset_password(main.id, "leaky").resource.password))
    secrets.append(hook.branches.connection_uri(branch_id=main.id, database="neondb", role="leaky"))
    errors: list[str] = []
    emu.inject_fault("GET", "/projects/{project_id}/branches/{branch_id}/roles/{role_name}/reveal_password",
                     faults=[{"kind": "status", "status": 503}], times=20)  # fmt: skip
    with pytest.raises(JamboServerError) as failed:
        connect(retry_policy=RetryPolicy(max_attempts=2, initial_wait=0)).roles.reveal_password(
            main.id, "leaky"
        )
    errors += [str(failed.value), repr(failed.value)]
    with pytest.raises(JamboAuthError) as denied:
        connect(api_key="not-the-key-12345").projects.get()
    errors += [str(denied.value), repr(hook), repr(role), repr(role.resource)]
    text = logged_text(caplog, capsys) + "\n".join(errors)
    assert secrets
    for secret in secrets:
        assert len(secret) >= 8  # a real value, so "not in text" means something
        assert secret not in text
    assert "not-the-key-12345" not in text


# --- operations and waiting -----------------------------------------------------------------------


def test_get_and_list_operations(hook: JamboHook, monkeypatch: pytest.MonkeyPatch) -> None:
    made = [hook.branches.create(CreateBranchRequest(name=f"ops-{i}")).operations[0] for i in range(3)]
    assert hook.operations.get(made[0].id).action == "create_branch"
    monkeypatch.setattr(operations_module, "OPERATION_PAGE_LIMIT", 2)
    listed = list(hook.operations.list())
    ids = [op.id for op in listed]
    assert {op.id for op in made} <= set(ids)
    assert len(ids) == len(set(ids))
    created = [op.created_at for op in listed]
    assert created == sorted(created, reverse=True)  # newest first


def test_waiting_with_real_durations_backs_off(hook: JamboHook, emu: Any, emu_sleep: EmulatorSleep) -> None:
    emu.set_operation_durations(default=3.0)
    creation = hook.branches.create(CreateBranchRequest(name="slow", endpoints=[{"type": "read_write"}]))
    ids = [o.id for o in creation.operations]
    emu.clear_requests()
    result = hook.operations.wait(ids, timeout=120)
    assert result.status == "success", result.message
    assert all(op.status is OperationStatus.FINISHED for op in result.operations)
    waits = emu_sleep.calls
    assert waits[0] == 0.5
    assert waits == sorted(waits)
    # Two operations of one project: one list call per round while both are pending.
    assert all(r["route"] in ("/projects/{project_id}/operations", OPERATION) for r in emu.requests())


def test_get_operations_reads_several_with_one_list_call(hook: JamboHook, emu: Any) -> None:
    emu.set_lock_rule(enabled=False)  # several creates in flight at once
    emu.set_operation_durations(default=100.0)
    made = [
        op for i in range(3) for op in hook.branches.create(CreateBranchRequest(name=f"many-{i}")).operations
    ]
    ids = [op.id for op in reversed(made)]  # any order: the answer follows it
    emu.clear_requests()
    got = hook.operations.get_many(ids)
    assert [op.id for op in got] == ids
    assert [(r["method"], r["route"]) for r in emu.requests()] == [
        ("GET", "/projects/{project_id}/operations")
    ]
    emu.clear_requests()
    assert [op.id for op in hook.operations.get_many(ids[:1])] == ids[:1]
    assert [r["route"] for r in emu.requests()] == [OPERATION]  # one operation: read by id
    with pytest.raises(JamboConfigError, match="operation_id must be a Jambo id"):
        hook.operations.get_many(["Not An Id"])


def test_waiting_timeout(hook: JamboHook, emu: Any) -> None:
    emu.set_operation_durations(default=100.0)
    creation = hook.branches.create(CreateBranchRequest(name="slower"))
    result = hook.operations.wait([o.id for o in creation.operations], timeout=5)
    assert result.status == "timeout"
    assert creation.operations[0].id in result.message


@pytest.mark.parametrize("outcome", ["error", "failed"])
def test_waiting_reports_failed_operations(hook: JamboHook, emu: Any, outcome: str) -> None:
    emu.set_operation_durations(default=1.0)
    emu.set_operation_outcome("create_branch", outcome, times=1)
    creation = hook.branches.create(CreateBranchRequest(name=f"broken-{outcome}"))
    op_id = creation.operations[0].id
    result = hook.operations.wait([op_id], timeout=60)
    assert result.status == "failed"
    assert f"create_branch {op_id}" in result.message
    assert "operation" in result.message  # the service's error text


def test_failed_then_finished_is_waited_through(hook: JamboHook, emu: Any) -> None:
    emu.set_operation_durations(default=1.0)
    emu.set_operation_outcome("create_branch", "failed_then_finished", times=1)
    creation = hook.branches.create(CreateBranchRequest(name="flaky"))
    result = hook.operations.wait([o.id for o in creation.operations], timeout=600)
    assert result.status == "success", result.message


def test_async_wait_with_faults_while_polling(
    connect: Callable[..., JamboHook], emu: Any, emu_sleep: EmulatorSleep
) -> None:
    hook = connect()
    emu.set_operation_durations(default=2.0)
    creation = hook.branches.create(CreateBranchRequest(name="async", endpoints=[{"type": "read_write"}]))
    ids = [o.id for o in creation.operations]
    # Polling meets a 503 on the list call and a 429 (Retry-After 3) later: both retried.
    emu.inject_fault(
        "GET", "/projects/{project_id}/operations", faults=[{"kind": "status", "status": 503}], times=1
    )
    emu.inject_fault("GET", OPERATION, faults=[{"kind": "rate_limit", "retry_after": "3"}], times=1)

    async def run() -> Any:
        async_hook = connect()
        try:
            return await async_hook.operations.wait_async(ids, timeout=120)
        finally:
            await async_hook.aclose()

    result = asyncio.run(run())
    assert result.status == "success", result.message
    assert {op.id for op in result.operations} == set(ids)
    assert 3.0 in emu_sleep.calls
    statuses = [r["status"] for r in emu.requests()]
    assert 503 in statuses
    assert 429 in statuses


# --- retry rules through the emulator's faults ----------------------------------------------------


def test_dropped_branch_create_is_adopted_not_duplicated(hook: JamboHook, emu: Any) -> None:
    emu.inject_fault("POST", BRANCHES, faults=[{"kind": "drop_after_apply"}], times=1)
    creation = hook.branches.create(
        CreateBranchRequest(name="exactly-once", endpoints=[{"type": "read_write"}])
    )
    assert creation.created
    assert creation.branch.name == "exactly-once"
    assert [b.name for b in hook.branches.list()].count("exactly-once") == 1
    assert len(posts(emu, BRANCHES, settle=1)) == 1
    assert creation.read_write_endpoint is not None


def test_branch_create_after_500_is_looked_up_then_resent(hook: JamboHook, emu: Any) -> None:
    emu.inject_fault("POST", BRANCHES, faults=[{"kind": "status", "status": 500}], times=1)
    creation = hook.branches.create(CreateBranchRequest(name="after-500"))
    assert creation.created
    assert [b.name for b in hook.branches.list()].count("after-500") == 1


def test_timed_out_branch_create_never_duplicates(connect: Callable[..., JamboHook], emu: Any) -> None:
    # The first POST is answered only after the client gave up; it may be applied before or after the
    # lookup. Either way one branch results: names are unique, and a late 409 is adopted.
    hook = connect(timeout=0.3)
    emu.inject_fault("POST", BRANCHES, faults=[{"kind": "latency", "seconds": 1.0}], times=1)
    creation = hook.branches.create(CreateBranchRequest(name="slow-create"))
    assert creation.created
    time.sleep(1.2)  # let the emulator finish the slow request before counting
    branches = [b for b in hook.branches.list() if b.name == "slow-create"]
    assert [b.id for b in branches] == [creation.branch.id]


@pytest.mark.parametrize(
    "fault", [{"kind": "locked"}, {"kind": "status", "status": 503}, {"kind": "rate_limit"}]
)
def test_always_retried_faults_on_post(
    hook: JamboHook, emu: Any, fault: dict[str, Any], emu_sleep: EmulatorSleep
) -> None:
    emu.inject_fault("POST", BRANCHES, faults=[fault, fault], times=1)
    creation = hook.branches.create(CreateBranchRequest(name="retried"))
    assert creation.created
    assert len(posts(emu, BRANCHES)) == 3
    assert len(emu_sleep.calls) == 2
    assert [b.name for b in hook.branches.list()].count("retried") == 1


def test_429_retry_after_is_honoured(hook: JamboHook, emu: Any, emu_sleep: EmulatorSleep) -> None:
    emu.inject_fault("GET", BRANCH, faults=[{"kind": "rate_limit", "retry_after": "2"}], times=1)
    main = hook.branches.get_default()
    assert hook.branches.get(main.id).id == main.id
    assert emu_sleep.calls == [2.0]


def test_429_without_retry_after_backs_off(hook: JamboHook, emu: Any, emu_sleep: EmulatorSleep) -> None:
    policy = RetryPolicy(initial_wait=1.0, max_wait=8.0)
    emu.inject_fault("GET", BRANCHES, faults=[{"kind": "rate_limit", "retry_after": None}] * 3, times=1)
    hook.retry_policy  # noqa: B018 - load before swapping policy
    assert hook.request(ApiRequest("GET", BRANCHES, {"project_id": hook.project_id}), retry_policy=policy)[
        "branches"
    ]
    assert len(emu_sleep.calls) == 3
    for wait, ceiling in zip(emu_sleep.calls, [1.0, 2.0, 4.0], strict=True):
        assert ceiling / 2 <= wait <= ceiling


@pytest.mark.parametrize("status", [500, 502, 524])
def test_5xx_retried_on_get_not_on_post(hook: JamboHook, emu: Any, status: int) -> None:
    main = hook.branches.get_default()
    emu.inject_fault("GET", BRANCH, faults=[{"kind": "status", "status": status}], times=1)
    assert hook.branches.get(main.id).id == main.id
    emu.inject_fault("POST", ENDPOINTS, faults=[{"kind": "status", "status": status}], times=1)
    branch = hook.branches.create(CreateBranchRequest(name=f"no-compute-{status}")).branch
    with pytest.raises(JamboServerError, match=rf"POST /projects/[a-z0-9-]+/endpoints -> {status}"):
        hook.computes.create(branch.id)
    assert len(posts(emu, ENDPOINTS)) == 1


def test_delete_retried_after_5xx(hook: JamboHook, emu: Any) -> None:
    branch = hook.branches.create(CreateBranchRequest(name="to-delete")).branch
    emu.inject_fault("DELETE", BRANCH, faults=[{"kind": "status", "status": 502}], times=1)
    hook.branches.delete(branch.id)
    assert hook.branches.find_by_name("to-delete") is None


def test_dropped_endpoint_create_is_not_resent(hook: JamboHook, emu: Any) -> None:
    branch = hook.branches.create(CreateBranchRequest(name="drop-ep")).branch
    emu.inject_fault("POST", ENDPOINTS, faults=[{"kind": "drop_after_apply"}], times=1)
    with pytest.raises(JamboTransportError, match="no response") as raised:
        # read_only: a second one would be accepted, so a re-send would show as two endpoints.
        hook.computes.create(branch.id, type="read_only")
    assert raised.value.sent
    assert len(posts(emu, ENDPOINTS, settle=1)) == 1
    assert len(hook.computes.list(branch_id=branch.id)) == 1


def test_read_timeout_retried_for_get(
    connect: Callable[..., JamboHook],
    emu: Any,
    emu_sleep: EmulatorSleep,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    hook = connect(timeout=0.3)
    main = hook.branches.get_default()
    emu.inject_fault("GET", BRANCH, faults=[{"kind": "latency", "seconds": 1.0}], times=1)
    assert hook.branches.get(main.id).id == main.id
    assert len(emu_sleep.calls) == 1
    assert "ReadTimeout" in logged_text(caplog, capsys)
    # (The slow first request is logged by the emulator only once its latency is over.)


def test_retries_are_bounded(connect: Callable[..., JamboHook], emu: Any) -> None:
    hook = connect(retry_policy=RetryPolicy(max_attempts=3, initial_wait=0.1, locked_max_elapsed=1.0))
    main = hook.branches.get_default()
    emu.inject_fault("GET", BRANCH, faults=[{"kind": "status", "status": 503}], times=10)
    with pytest.raises(JamboServerError, match="503"):
        hook.branches.get(main.id)
    assert len([r for r in emu.requests() if r["route"] == BRANCH]) == 3
    # 423s are bounded by time (locked_max_elapsed), not by max_attempts.
    emu.clear_faults()
    emu.clear_requests()
    emu.inject_fault("GET", BRANCH, faults=[{"kind": "locked"}], times=20)
    with pytest.raises(JamboLockedError, match="423"):
        hook.branches.get(main.id)
    assert len([r for r in emu.requests() if r["route"] == BRANCH]) > 3


def test_rate_limited_error_after_exhaustion(connect: Callable[..., JamboHook], emu: Any) -> None:
    hook = connect(retry_policy=RetryPolicy(max_attempts=2, initial_wait=0.1))
    emu.inject_fault("GET", BRANCHES, faults=[{"kind": "rate_limit", "retry_after": "1"}], times=5)
    with pytest.raises(JamboRateLimitedError) as raised:
        hook.branches.find_by_name("main")
    assert raised.value.retry_after == 1.0


def test_wrong_key_is_auth_error_and_test_connection(connect: Callable[..., JamboHook]) -> None:
    bad = connect(api_key="definitely-wrong-key")
    with pytest.raises(JamboAuthError, match="401"):
        bad.projects.get()
    ok, message = bad.test_connection()
    assert not ok
    assert "401" in message
    assert "definitely-wrong-key" not in message
    good_ok, good_message = connect().test_connection()
    assert good_ok, good_message


def test_every_error_is_a_typed_api_error(hook: JamboHook) -> None:
    with pytest.raises(JamboAPIError) as raised:
        hook.operations.get("00000000-0000-4000-8000-000000000000")
    assert raised.value.status == 404
    assert raised.value.request_id
