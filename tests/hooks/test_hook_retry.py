"""Retry rules with transport-level fakes (respx): what is retried, how long we wait, the bounds.

The emulator-driven versions of the HTTP-status rules live in test_hook_emulator.py; here respx
covers what the emulator cannot produce (read/connect timeouts) and checks the waits exactly.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest
import respx
from hook_support import API_KEY, FAKE_BASE, SleepRecorder

from airflow_provider_jambo.create_branch_request import CreateBranchRequest
from airflow_provider_jambo.exceptions import (
    JamboAPIError,
    JamboAuthError,
    JamboConflictError,
    JamboLockedError,
    JamboRateLimitedError,
    JamboServerError,
    JamboTransportError,
)
from airflow_provider_jambo.hooks.budget import reset_budgets
from airflow_provider_jambo.hooks.client import ApiRequest
from airflow_provider_jambo.hooks.jambo import JamboHook
from airflow_provider_jambo.hooks.retry import RetryPolicy, retry_reason, wait_seconds

GET_PROJECT = ApiRequest("GET", "/projects/{project_id}", {"project_id": "proj-1"})
POST_BRANCH = ApiRequest(
    "POST", "/projects/{project_id}/branches", {"project_id": "proj-1"}, json={"branch": {}}
)
OK = httpx.Response(200, json={"project": {"id": "proj-1"}})


def err(status: int, message: str = "boom", headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, json={"code": "", "message": message}, headers=headers)


@pytest.fixture
def api() -> respx.MockRouter:
    with respx.mock(base_url=FAKE_BASE, assert_all_called=False) as router:
        yield router


@pytest.mark.parametrize("status", [423, 429, 503])
@pytest.mark.parametrize("req", [GET_PROJECT, POST_BRANCH], ids=["GET", "POST"])
def test_always_retried_statuses(
    api: respx.MockRouter, make_hook: Callable[..., JamboHook], status: int, req: ApiRequest[object]
) -> None:
    route = api.route(method=req.method, path=req.url_path).mock(side_effect=[err(status), err(status), OK])
    assert make_hook().request(req) == {"project": {"id": "proj-1"}}
    assert route.call_count == 3


@pytest.mark.parametrize("status", [500, 502, 504, 524])
def test_server_errors_retried_for_get_and_delete_only(
    api: respx.MockRouter, make_hook: Callable[..., JamboHook], status: int
) -> None:
    hook = make_hook()
    get = api.get("/projects/proj-1").mock(side_effect=[err(status), OK])
    assert hook.request(GET_PROJECT)["project"]["id"] == "proj-1"
    assert get.call_count == 2

    delete_req = ApiRequest(
        "DELETE", "/projects/{project_id}/branches/{branch_id}", {"project_id": "proj-1", "branch_id": "br-x"}
    )
    delete = api.delete("/projects/proj-1/branches/br-x").mock(side_effect=[err(status), httpx.Response(204)])
    assert hook.request(delete_req) is None
    assert delete.call_count == 2

    post = api.post("/projects/proj-1/branches").mock(side_effect=[err(status), OK])
    with pytest.raises(JamboServerError) as raised:
        hook.request(POST_BRANCH)
    assert post.call_count == 1
    assert raised.value.status == status


def test_read_timeout_retried_for_get_not_for_post(
    api: respx.MockRouter, make_hook: Callable[..., JamboHook]
) -> None:
    hook = make_hook()
    get = api.get("/projects/proj-1").mock(side_effect=[httpx.ReadTimeout("slow"), OK])
    assert hook.request(GET_PROJECT)["project"]["id"] == "proj-1"
    assert get.call_count == 2

    post = api.post("/projects/proj-1/branches").mock(side_effect=[httpx.ReadTimeout("slow"), OK])
    with pytest.raises(JamboTransportError) as raised:
        hook.request(POST_BRANCH)
    assert post.call_count == 1
    assert raised.value.sent
    assert str(raised.value).startswith("POST /projects/proj-1/branches -> no response: ReadTimeout")


def test_dropped_response_not_resent_for_post(
    api: respx.MockRouter, make_hook: Callable[..., JamboHook]
) -> None:
    post = api.post("/projects/proj-1/branches").mock(
        side_effect=[httpx.RemoteProtocolError("Server disconnected without sending a response."), OK]
    )
    with pytest.raises(JamboTransportError):
        make_hook().request(POST_BRANCH)
    assert post.call_count == 1


def test_connect_errors_retried_even_for_post(
    api: respx.MockRouter, make_hook: Callable[..., JamboHook]
) -> None:
    post = api.post("/projects/proj-1/branches").mock(
        side_effect=[httpx.ConnectError("refused"), httpx.ConnectTimeout("slow connect"), OK]
    )
    make_hook().request(POST_BRANCH)
    assert post.call_count == 3


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 422])
def test_client_errors_not_retried(
    api: respx.MockRouter, make_hook: Callable[..., JamboHook], status: int
) -> None:
    route = api.get("/projects/proj-1").mock(side_effect=[err(status, "nope"), OK])
    with pytest.raises(JamboAPIError) as raised:
        make_hook().request(GET_PROJECT)
    assert route.call_count == 1
    assert raised.value.status == status
    if status in (401, 403):
        assert isinstance(raised.value, JamboAuthError)
    if status == 409:
        assert isinstance(raised.value, JamboConflictError)


def test_branch_not_ready_422_is_retried(api: respx.MockRouter, make_hook: Callable[..., JamboHook]) -> None:
    route = api.post("/projects/proj-1/branches").mock(side_effect=[err(422, "branch not ready yet"), OK])
    make_hook().request(POST_BRANCH)
    assert route.call_count == 2


def test_retry_after_seconds_and_http_date_are_honoured(
    api: respx.MockRouter, make_hook: Callable[..., JamboHook], sleeps: SleepRecorder
) -> None:
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=42), usegmt=True)
    api.get("/projects/proj-1").mock(
        side_effect=[
            err(429, "slow down", {"Retry-After": "7"}),
            err(429, "slow down", {"Retry-After": when}),
            OK,
        ]
    )
    make_hook().request(GET_PROJECT)
    assert sleeps.calls[0] == 7.0
    # An HTTP date: the wait is the time until then (a second or so of test runtime may have passed).
    assert 39.0 <= sleeps.calls[1] <= 42.0


def test_429_without_retry_after_backs_off_exponentially_with_jitter(
    api: respx.MockRouter, make_hook: Callable[..., JamboHook], sleeps: SleepRecorder
) -> None:
    policy = RetryPolicy(max_attempts=6, initial_wait=1.0, max_wait=4.0, multiplier=2.0)
    api.get("/projects/proj-1").mock(side_effect=[err(429)] * 5 + [OK])
    make_hook(retry_policy=policy).request(GET_PROJECT)
    ceilings = [1.0, 2.0, 4.0, 4.0, 4.0]
    assert len(sleeps.calls) == 5
    for wait, ceiling in zip(sleeps.calls, ceilings, strict=True):
        assert ceiling / 2 <= wait <= ceiling


def test_attempts_are_bounded(api: respx.MockRouter, make_hook: Callable[..., JamboHook]) -> None:
    route = api.get("/projects/proj-1").mock(return_value=err(503, "unavailable"))
    with pytest.raises(JamboServerError, match="503 unavailable"):
        make_hook(retry_policy=RetryPolicy(max_attempts=4, initial_wait=0.01)).request(GET_PROJECT)
    assert route.call_count == 4


def test_total_time_is_bounded(
    api: respx.MockRouter, make_hook: Callable[..., JamboHook], sleeps: SleepRecorder
) -> None:
    # Retry-After beyond the remaining budget: give up now rather than sleep past it.
    route = api.get("/projects/proj-1").mock(return_value=err(429, "later", {"Retry-After": "100"}))
    with pytest.raises(JamboRateLimitedError):
        make_hook(retry_policy=RetryPolicy(max_attempts=10, max_elapsed=30)).request(GET_PROJECT)
    assert route.call_count == 1
    assert sleeps.calls == []

    route.reset()
    route.mock(return_value=err(423, "locked"))
    sleeps.calls.clear()
    reset_budgets()  # the 429 paused the account for 100 s; this part is about 423s alone
    with pytest.raises(JamboLockedError):
        make_hook(
            retry_policy=RetryPolicy(max_attempts=100, max_elapsed=10, initial_wait=4, max_wait=4)
        ).request(GET_PROJECT)
    assert sum(sleeps.calls) <= 10
    assert route.call_count == len(sleeps.calls) + 1


def test_every_retry_is_logged_with_reason_and_wait(
    api: respx.MockRouter,
    make_hook: Callable[..., JamboHook],
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    api.get("/projects/proj-1").mock(
        side_effect=[
            err(423, "project already has running conflicting operations"),
            httpx.ReadTimeout("t"),
            OK,
        ]
    )
    with caplog.at_level(logging.WARNING):
        make_hook().request(GET_PROJECT)
    # The hook logs through Airflow's logger: stdlib records (caplog) or structlog output (capsys).
    # Airflow 2.11/3.0 do both for one record, so count in one of them (the secrets checks use both).
    captured = capsys.readouterr()
    text = caplog.text if caplog.records else captured.out + captured.err
    lines = [line for line in text.splitlines() if "Retrying GET" in line]
    assert len(lines) == 2
    assert "GET /projects/proj-1 in " in lines[0]
    assert "423 project already has running" in lines[0]
    assert "ReadTimeout" in lines[1]
    assert all(" s (attempt " in line for line in lines)
    assert all("request id" in line for line in lines)


def test_request_headers_timeouts_and_request_ids(
    api: respx.MockRouter, make_hook: Callable[..., JamboHook]
) -> None:
    route = api.post("/projects/proj-1/branches").mock(side_effect=[err(503), OK])
    make_hook(conn_kwargs={"project_id": "proj-1", "timeout": 12}).request(POST_BRANCH)
    first, second = (call.request for call in route.calls)
    for request in (first, second):
        assert request.headers["Authorization"] == f"Bearer {API_KEY}"
        assert request.headers["Accept"] == "application/json"
        assert request.headers["Content-Type"] == "application/json"
        ua = request.headers["User-Agent"]
        assert ua.startswith("airflow-provider-jambo/")
        assert "apache-airflow/" in ua
        timeout = request.extensions["timeout"]
        assert timeout["read"] == 12
        assert timeout["connect"] == 10
    assert first.headers["X-Request-ID"] != second.headers["X-Request-ID"]
    get = api.get("/projects/proj-1").mock(return_value=OK)
    make_hook().request(GET_PROJECT)
    assert "Content-Type" not in get.calls.last.request.headers


async def test_async_path_follows_the_same_rules(
    api: respx.MockRouter, make_hook: Callable[..., JamboHook], sleeps: SleepRecorder
) -> None:
    hook = make_hook()
    get = api.get("/projects/proj-1").mock(
        side_effect=[err(503), httpx.ReadTimeout("t"), err(429, headers={"Retry-After": "2"}), OK]
    )
    assert (await hook.arequest(GET_PROJECT))["project"]["id"] == "proj-1"
    assert get.call_count == 4
    assert sleeps.calls[-1] == 2.0
    post = api.post("/projects/proj-1/branches").mock(side_effect=[err(500), OK])
    with pytest.raises(JamboServerError):
        await hook.arequest(POST_BRANCH)
    assert post.call_count == 1
    await hook.aclose()


def test_retry_reason_and_wait_are_pure() -> None:
    locked = JamboLockedError(423, "locked")
    assert retry_reason(POST_BRANCH, locked) == "423 locked"
    assert retry_reason(POST_BRANCH, JamboServerError(500, "x")) is None
    assert retry_reason(GET_PROJECT, JamboServerError(500, "x")) == "500 x"
    assert retry_reason(GET_PROJECT, ValueError("bug")) is None
    policy = RetryPolicy(initial_wait=2, max_wait=8)
    assert wait_seconds(policy, JamboRateLimitedError(429, "x", retry_after=60), 1) == 60
    assert 1 <= wait_seconds(policy, locked, 1) <= 2
    assert 4 <= wait_seconds(policy, locked, 9) <= 8


def test_retry_policy_round_trips_and_validates() -> None:
    policy = RetryPolicy(max_attempts=3, max_elapsed=12.5)
    assert RetryPolicy.from_dict(policy.to_dict()) == policy
    with pytest.raises(ValueError, match="unknown retry settings"):
        RetryPolicy.from_dict({"tries": 3})
    with pytest.raises(ValueError, match="max_attempts must be >= 1"):
        RetryPolicy(max_attempts=0)
    from_extras = RetryPolicy.from_connection_extras({"max_retries": "2", "retry_max_wait": "60"})
    assert (from_extras.max_attempts, from_extras.max_elapsed) == (3, 60.0)
    with pytest.raises(ValueError, match="max_retries must be a whole number"):
        RetryPolicy.from_connection_extras({"max_retries": "many"}, "c1")


def test_branch_create_adopts_late_409_after_resend(
    api: respx.MockRouter, make_hook: Callable[..., JamboHook]
) -> None:
    # Attempt 1 times out but is applied late; the lookup misses it; the re-send gets 409: adopt.
    branch = {"id": "br-late", "project_id": "proj-1", "name": "late", "parent_id": "br-main"}
    post = api.post("/projects/proj-1/branches").mock(
        side_effect=[httpx.ReadTimeout("slow"), err(409, "branch already exists")]
    )
    lookup = api.get("/projects/proj-1/branches").mock(
        side_effect=[
            httpx.Response(200, json={"branches": [], "pagination": {}}),
            httpx.Response(200, json={"branches": [branch], "pagination": {}}),
        ]
    )
    api.get("/projects/proj-1/branches/br-late/endpoints").mock(
        return_value=httpx.Response(200, json={"endpoints": []})
    )
    api.get("/projects/proj-1/operations").mock(
        return_value=httpx.Response(
            200,
            json={
                "operations": [
                    {"id": "op-1", "branch_id": "br-late", "action": "create_branch", "status": "running"}
                ]
            },
        )
    )
    creation = make_hook().branches.create(CreateBranchRequest(name="late", parent_id="br-main"))
    assert creation.created
    assert creation.branch.id == "br-late"
    assert [op.id for op in creation.operations] == ["op-1"]
    assert post.call_count == 2
    assert lookup.call_count == 2


def test_unnamed_branch_create_with_unknown_outcome_is_not_resent(
    api: respx.MockRouter, make_hook: Callable[..., JamboHook]
) -> None:
    post = api.post("/projects/proj-1/branches").mock(side_effect=[err(502, "bad gateway"), OK])
    with pytest.raises(JamboServerError, match="502"):
        make_hook().branches.create(CreateBranchRequest())
    assert post.call_count == 1


def test_undecodable_answers_are_transport_errors(
    api: respx.MockRouter, make_hook: Callable[..., JamboHook]
) -> None:
    get = api.get("/projects/proj-1").mock(side_effect=[httpx.DecodingError("bad gzip"), OK])
    assert make_hook().request(GET_PROJECT)["project"]["id"] == "proj-1"
    assert get.call_count == 2
    api.post("/projects/proj-1/branches").mock(
        return_value=httpx.Response(201, text="<html>proxy page</html>")
    )
    with pytest.raises(JamboTransportError, match="201 answer is not JSON"):
        make_hook().request(POST_BRANCH)


def test_org_id_extra_scopes_project_listing_and_creation(
    api: respx.MockRouter, make_hook: Callable[..., JamboHook]
) -> None:
    hook = make_hook(conn_kwargs={"org_id": "org-blue-123"})
    page = {"projects": [{"id": "p-1", "name": "one"}], "pagination": {"cursor": "p-1"}}
    listing = api.get("/projects").mock(return_value=httpx.Response(200, json=page))
    assert [p.id for p in hook.projects.list()] == ["p-1"]  # a short page is the last one
    assert listing.call_count == 1
    assert listing.calls.last.request.url.params["org_id"] == "org-blue-123"
    created = api.post("/projects").mock(
        return_value=httpx.Response(201, json={"project": {"id": "p-2", "name": "two"}, "operations": []})
    )
    assert hook.projects.create(name="two").project.id == "p-2"
    assert json.loads(created.calls.last.request.content) == {
        "project": {"name": "two", "org_id": "org-blue-123"}
    }


def test_423s_are_bounded_by_time_not_by_attempts(
    api: respx.MockRouter, make_hook: Callable[..., JamboHook], sleeps: SleepRecorder
) -> None:
    """A busy project is a queue: 12 locked answers outlast max_attempts=3 and still succeed."""
    route = api.post("/projects/proj-1/branches").mock(side_effect=[err(423, "locked")] * 12 + [OK])
    policy = RetryPolicy(
        max_attempts=3, max_elapsed=5.0, initial_wait=0.5, max_wait=1.0, locked_max_elapsed=60
    )
    make_hook(retry_policy=policy).request(POST_BRANCH)
    assert route.call_count == 13
    # Jittered waits (equal jitter: half fixed, half random), so parallel runs spread out.
    assert all(0.25 <= wait <= 1.0 for wait in sleeps.calls)
    assert len(set(sleeps.calls)) > 1
    # Past the time bound the 423 is raised.
    route.reset()
    route.mock(return_value=err(423, "locked"))
    sleeps.calls.clear()
    with pytest.raises(JamboLockedError):
        make_hook(retry_policy=RetryPolicy(max_wait=1.0, locked_max_elapsed=10)).request(POST_BRANCH)
    assert 9.0 <= sum(sleeps.calls) <= 10.0


def test_other_errors_keep_the_attempt_bound_and_zero_raises_423_at_once(
    api: respx.MockRouter, make_hook: Callable[..., JamboHook], sleeps: SleepRecorder
) -> None:
    route = api.get("/projects/proj-1").mock(return_value=err(503, "unavailable"))
    with pytest.raises(JamboServerError):
        make_hook(retry_policy=RetryPolicy(max_attempts=3, locked_max_elapsed=600)).request(GET_PROJECT)
    assert route.call_count == 3
    locked = api.post("/projects/proj-1/branches").mock(return_value=err(423, "locked"))
    sleeps.calls.clear()
    with pytest.raises(JamboLockedError):
        make_hook(retry_policy=RetryPolicy(locked_max_elapsed=0)).request(POST_BRANCH)
    assert locked.call_count == 1
    assert sleeps.calls == []
    assert RetryPolicy.from_dict(RetryPolicy(locked_max_elapsed=0).to_dict()).locked_budget == 0
    with pytest.raises(ValueError, match="locked_max_elapsed must be >= 0"):
        RetryPolicy(locked_max_elapsed=-1)
