"""The per-account request budget: a token bucket with a shared 429 pause, on a fake clock."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

import pytest
import respx
from hook_support import API_KEY, FAKE_BASE

from airflow_provider_jambo.exceptions import JamboConfigError, JamboRateLimitedError
from airflow_provider_jambo.hooks import budget as budget_module
from airflow_provider_jambo.hooks.budget import (
    BURST,
    RequestBudget,
    account_key,
    budget_for,
    check_requests_per_minute,
)
from airflow_provider_jambo.hooks.client import ApiRequest
from airflow_provider_jambo.hooks.jambo import JamboHook
from airflow_provider_jambo.hooks.retry import RetryPolicy


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def send_times(budget: RequestBudget, clock: FakeClock, n: int) -> list[float]:
    """When each of ``n`` requests asked for at the same instant would be sent."""
    return [clock.now + budget.reserve() for _ in range(n)]


def test_the_budget_is_never_exceeded_in_any_window() -> None:
    clock = FakeClock()
    budget = RequestBudget(120, clock=clock)  # 2/s
    times = send_times(budget, clock, 300)
    assert times == sorted(times)
    for window in (1.0, 10.0, 60.0):
        for i, start in enumerate(times):
            in_window = sum(1 for t in times[i:] if t < start + window)
            assert in_window <= BURST + 2 * window
    # After the burst, exactly one request per 1/rate seconds.
    assert times[-1] - times[-2] == pytest.approx(0.5)


def test_requests_spread_over_time_wait_only_when_the_bucket_is_empty() -> None:
    clock = FakeClock()
    budget = RequestBudget(60, clock=clock)
    for _ in range(50):
        clock.now += 1.0  # one request a second is exactly the rate: never delayed
        assert budget.reserve() == 0.0
    assert budget.delayed == 0


def test_a_429_pauses_everyone_but_the_request_that_got_it() -> None:
    clock = FakeClock()
    budget = RequestBudget(600, clock=clock)
    mine, other = budget.ticket(), budget.ticket()
    mine.rate_limited(5.0)
    assert budget.paused_until == clock.now + 5.0
    assert budget.reserve() == pytest.approx(5.0)  # a fresh caller waits for the pause
    slept: list[float] = []
    other.acquire(slept.append)
    assert slept == [pytest.approx(5.0)]
    slept.clear()
    mine.acquire(slept.append)  # its retry policy already waits Retry-After
    assert slept == []
    # A later 429 from someone else extends the pause for it too.
    other.rate_limited(8.0)
    mine.acquire(slept.append)
    assert slept == [pytest.approx(8.0)]


def test_a_429_without_retry_after_pauses_for_the_default() -> None:
    clock = FakeClock()
    budget = RequestBudget(600, clock=clock)
    budget.pause(None)
    assert budget.paused_until == clock.now + budget_module.DEFAULT_429_PAUSE


def test_async_callers_await_their_turn() -> None:
    clock = FakeClock()
    budget = RequestBudget(60, clock=clock)
    awaited: list[float] = []

    async def asleep(seconds: float) -> None:
        awaited.append(seconds)

    async def many() -> None:
        await asyncio.gather(*(budget.ticket().aacquire(asleep) for _ in range(int(BURST) + 3)))

    asyncio.run(many())
    assert awaited == [pytest.approx(1.0), pytest.approx(2.0), pytest.approx(3.0)]


def test_threads_share_one_bucket() -> None:
    clock = FakeClock()
    budget = RequestBudget(60, clock=clock)
    delays: list[float] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(25):
            d = budget.reserve()
            with lock:
                delays.append(d)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert budget.granted == 200
    # Every reservation got its own slot: 30 at once, then one per second.
    assert sorted(round(d, 6) for d in delays) == [0.0] * 30 + [float(i) for i in range(1, 171)]


def test_registry_is_per_account_and_holds_no_key() -> None:
    a = budget_for("http://127.0.0.1:9/api/v2", "key-one")
    assert budget_for("http://127.0.0.1:9/api/v2/", "key-one") is a
    assert budget_for("http://127.0.0.1:9/api/v2", "key-two") is not a
    assert budget_for("http://127.0.0.1:8/api/v2", "key-one") is not a
    assert all("key-one" not in part for key in budget_module._registry for part in key)
    assert "key-one" not in repr(account_key("http://x/api/v2", "key-one"))
    # The lowest rate configured for an account wins.
    assert budget_for("http://127.0.0.1:9/api/v2", "key-one", 100).requests_per_minute == 100
    assert budget_for("http://127.0.0.1:9/api/v2", "key-one", 500).requests_per_minute == 100


@pytest.mark.parametrize("value", [0, -1, 701, "fast", True, None])
def test_requests_per_minute_must_be_below_the_service_limit(value: object) -> None:
    with pytest.raises(JamboConfigError, match=r"requests_per_minute must be a number in \(0, 700\]"):
        check_requests_per_minute(value, conn_id="c")


def test_connection_extra_sets_the_budget_and_bad_values_are_refused(
    make_hook: Callable[..., JamboHook],
) -> None:
    hook = make_hook({"project_id": "proj-1", "requests_per_minute": "120"})
    assert hook.settings.budget.requests_per_minute == 120
    with pytest.raises(JamboConfigError, match="extra requests_per_minute"):
        make_hook({"requests_per_minute": "lots"}).load()


def test_a_429_seen_by_one_hook_pauses_another_hook_on_the_account(
    make_hook: Callable[..., JamboHook],
) -> None:
    req = ApiRequest("GET", "/projects/proj-1")
    with respx.mock(base_url=FAKE_BASE, assert_all_called=False) as api:
        route = api.get("/projects/proj-1")
        route.respond(429, json={"message": "slow down"}, headers={"Retry-After": "30"})
        first = make_hook(retry_policy=RetryPolicy(max_attempts=1))
        with pytest.raises(JamboRateLimitedError):
            first.request(req)
        route.respond(200, json={"project": {"id": "proj-1"}})
        second = make_hook()
        slept: list[float] = []
        second.sleep = slept.append
        second.request(req)
    assert len(slept) == 1
    assert 29 < slept[0] <= 30
    assert budget_for(FAKE_BASE, API_KEY).pauses == 1
