"""The hook never lets the API key or a role password out: logs (DEBUG, httpx/httpcore included),
stdout/stderr, reprs of what it returns, and the text of the errors it raises, retries included."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
import respx
from security_support import LeakWatch, SecProject, connection_json, uri_password

from airflow_provider_jambo.create_branch_request import CreateBranchRequest
from airflow_provider_jambo.exceptions import (
    JamboAPIError,
    JamboAuthError,
    JamboConfigError,
    JamboNotFoundError,
    JamboServerError,
)
from airflow_provider_jambo.hooks.jambo import JamboHook

BRANCHES = "/projects/{project_id}/branches"
ROLES = "/projects/{project_id}/branches/{branch_id}/roles"
RESET = "/projects/{project_id}/branches/{branch_id}/roles/{role_name}/reset_password"


def test_every_secret_returning_call_keeps_its_secrets_to_itself(
    sec_project: SecProject, leak_watch: LeakWatch
) -> None:
    hook = sec_project.hook()
    creation = hook.branches.create(
        CreateBranchRequest(
            name="sec-branch", parent_id=sec_project.default_branch_id, endpoints=[{"type": "read_write"}]
        )
    )
    # What the API returned holds real secrets: the test would be vacuous otherwise.
    returned = [c.password for c in creation.connection_uris]
    assert returned, "create_branch returned no connection URI"
    assert all(bool(password) for password in returned), "a connection URI without a password"
    returned += [role.password for role in creation.roles if role.password]
    leak_watch.remember(*returned, *(c.uri for c in creation.connection_uris))
    leak_watch.see("create_branch result", creation, creation.roles, creation.connection_uris)
    hook.operations.wait([op.id for op in creation.operations]).raise_for_status()
    branch_id = creation.branch.id

    created_role = hook.roles.create(branch_id, "app_user")
    assert created_role.resource.password
    assert "password" not in created_role.resource.raw
    revealed = hook.roles.reveal_password(branch_id, "app_user")
    assert revealed == created_role.resource.password
    reset = hook.roles.reset_password(branch_id, "app_user")
    assert reset.resource.password
    assert reset.resource.password != revealed
    leak_watch.remember(revealed, reset.resource.password)
    leak_watch.see(
        "role results", created_role, reset, hook.roles.list(branch_id), hook.roles.get(branch_id, "app_user")
    )

    direct = hook.branches.connection_uri(branch_id=branch_id, database="neondb", role="app_user")
    pooled = hook.branches.connection_uri(
        branch_id=branch_id, database="neondb", role="neondb_owner", pooled=True
    )
    assert uri_password(direct) == reset.resource.password
    leak_watch.remember(direct, pooled, uri_password(pooled))

    project = hook.projects.create(name="second")
    assert project.connection_uris
    assert project.roles[0].password
    leak_watch.remember(project.roles[0].password, *(c.uri for c in project.connection_uris))
    leak_watch.see("create_project result", project, hook, hook.settings, hook.get_conn().auth)
    hook.close()

    text = leak_watch.assert_clean(
        expect=("HTTP Request: POST", "send_request_headers.started", "receive_response_headers.complete"),
        min_passwords=5,
    )
    # httpcore's DEBUG trace shows response headers but never the request's (where the key is).
    assert "authorization" not in text.lower()


def test_errors_and_retries_carry_no_secret(sec_project: SecProject, leak_watch: LeakWatch) -> None:
    emu = sec_project.emu
    hook = sec_project.hook()
    main = sec_project.default_branch_id
    leak_watch.remember(hook.roles.reveal_password(main, "neondb_owner"))

    # Retried: a 503 and a 429 on a GET, a 423 on a password reset (nothing was applied).
    emu.inject_fault(
        "GET",
        BRANCHES,
        faults=[{"kind": "status", "status": 503}, {"kind": "rate_limit", "retry_after": "0"}],
    )
    assert [b.id for b in hook.branches.list()] == [main]
    emu.inject_fault("POST", RESET, faults=[{"kind": "locked"}])
    reset = hook.roles.reset_password(main, "neondb_owner")
    leak_watch.remember(reset.resource.password)
    hook.operations.wait([op.id for op in reset.operations]).raise_for_status()

    # A lost response to a create: the hook looks the branch up and adopts it (logged).
    emu.inject_fault("POST", BRANCHES, faults=[{"kind": "drop_after_apply"}])
    adopted = hook.branches.create(
        CreateBranchRequest(name="sec-dropped", parent_id=main, endpoints=[{"type": "read_write"}])
    )
    assert adopted.branch.name == "sec-dropped"

    # Errors that end the call: a 500 on a POST (not re-sent), a 404, a wrong key.
    emu.inject_fault("POST", ROLES, faults=[{"kind": "status", "status": 500}])
    with pytest.raises(JamboServerError) as server_error:
        hook.roles.create(adopted.branch.id, "never_created")
    with pytest.raises(JamboNotFoundError) as not_found:
        hook.roles.reveal_password(main, "no_such_role")
    errors: list[BaseException] = [server_error.value, not_found.value]
    hook.close()

    wrong_key = "wrong-key-9f8e7d6c5b4a"
    leak_watch.remember(wrong_key)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AIRFLOW_CONN_JAMBO_WRONG", connection_json(emu, sec_project.project_id, wrong_key))
        with JamboHook(jambo_conn_id="jambo_wrong") as wrong, pytest.raises(JamboAuthError) as auth_error:
            wrong.projects.get()
        tested = JamboHook(jambo_conn_id="jambo_wrong").test_connection()
    assert tested[0] is False
    leak_watch.see("test_connection", tested)
    errors.append(auth_error.value)
    leak_watch.see("raised errors", *errors)

    text = leak_watch.assert_clean(
        expect=("Retrying GET", "Retrying POST", "outcome unknown"), min_passwords=2
    )
    for status in ("503", "429", "423", "500", "404", "401"):
        assert f" {status} " in text, f"the {status} path did not run"


def test_a_key_no_header_can_carry_is_refused_before_any_request(
    sec_project: SecProject, leak_watch: LeakWatch, monkeypatch: pytest.MonkeyPatch
) -> None:
    """h11 rejects such a header quoting it (key included); the hook must not get that far."""
    emu = sec_project.emu
    emu.clear_requests()
    for i, bad_key in enumerate(
        ["first-half-8c1d\nsecond-half-77ab", "inner space-3f9e2", "tab\tsecret-4d2a"]
    ):
        leak_watch.remember(*bad_key.split())
        monkeypatch.setenv(
            f"AIRFLOW_CONN_JAMBO_BAD{i}", connection_json(emu, sec_project.project_id, bad_key)
        )
        hook = JamboHook(jambo_conn_id=f"jambo_bad{i}")
        hook.sleep = lambda seconds: None
        with pytest.raises(JamboConfigError, match="API key contains whitespace") as refused:
            hook.branches.list().__next__()
        leak_watch.see("refused", refused.value, hook.test_connection())
    assert emu.requests() == [], "a request was sent with an unusable key"
    leak_watch.assert_clean(expect=("API key contains whitespace",), min_passwords=3)


def test_error_bodies_echoing_the_key_are_redacted_even_when_cut(
    leak_watch: LeakWatch, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A proxy's error page (plain text, cut to 200 characters) or a JSON message quoting the
    request: the key is replaced before the text is cut, so not even its beginning survives."""
    key = "k" * 6 + "0123456789abcdefghijklmnopqrstuvwxyz0123456789"
    leak_watch.api_keys.add(key)
    leak_watch.remember("placeholder-password")  # no role password exists on this path
    base = "https://jambo.example.test/api/v2"
    monkeypatch.setenv(
        "AIRFLOW_CONN_JAMBO_ECHO", json.dumps({"conn_type": "jambo", "host": base, "password": key})
    )
    page = "x" * 165 + f" Authorization: Bearer {key}"
    assert page.index(key) < 200 < page.index(key) + len(key), "the 200-character cut must fall in the key"
    with respx.mock(base_url=base, assert_all_called=True) as mock:
        mock.get("/projects").mock(return_value=httpx.Response(400, text=page))
        mock.get("/projects/p-1").mock(
            return_value=httpx.Response(401, json={"code": "", "message": f"bad token Bearer {key}"})
        )
        with JamboHook(jambo_conn_id="jambo_echo") as hook:
            with pytest.raises(JamboAPIError) as cut:
                next(iter(hook.projects.list()))
            with pytest.raises(JamboAuthError) as quoted:
                hook.projects.get("p-1")
    for err in (cut.value, quoted.value):
        leak_watch.see("error", err)
        assert key[:12] not in str(err), "the beginning of the key survived in the error text"
    assert "***" in str(quoted.value)
    leak_watch.assert_clean(expect=("HTTP Request: GET https://jambo.example.test",))


def test_async_paths_carry_no_secret(sec_project: SecProject, leak_watch: LeakWatch) -> None:
    emu = sec_project.emu
    hook = sec_project.hook()
    creation = hook.branches.create(
        CreateBranchRequest(name="sec-async", parent_id=sec_project.default_branch_id)
    )
    leak_watch.remember(*(r.password for r in creation.roles))
    hook.close()
    faults = [{"kind": "status", "status": 503}, {"kind": "drop_after_apply"}]
    # One operation is polled by id, several through the list: fault both.
    emu.inject_fault("GET", "/projects/{project_id}/operations/{operation_id}", faults=faults)
    emu.inject_fault("GET", "/projects/{project_id}/operations", faults=faults)

    async def run() -> Any:
        ahook = sec_project.hook()
        try:
            return await ahook.operations.wait_async([op.id for op in creation.operations], timeout=30)
        finally:
            await ahook.aclose()

    result = asyncio.run(run())
    assert result.status == "success"
    leak_watch.see("wait result", result.to_dict())
    leak_watch.assert_clean(expect=("Retrying GET", "send_request_headers.started"), min_passwords=1)
