"""The API's round trip, measured on every answer (``hooks/round_trips.py``); what the waits do with
it is in ``test_hook_waiting.py``."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator

import httpx
import pytest
import respx
from hook_support import FAKE_BASE

from airflow_provider_jambo.hooks.client import ApiRequest
from airflow_provider_jambo.hooks.jambo import JamboHook
from airflow_provider_jambo.hooks.round_trips import RoundTrips, reset_round_trips, round_trips_for


@pytest.fixture(autouse=True)
def _fresh_round_trips() -> Iterator[None]:
    reset_round_trips()
    yield
    reset_round_trips()


def test_the_typical_round_trip_is_the_median_of_the_recent_answers() -> None:
    trips = RoundTrips(keep=3)
    assert trips.typical() == 0.0
    # The first falls out of the window; one slow answer does not move the median.
    for seconds in (0.1, 5.0, 0.2, 0.3):
        trips.record(seconds)
    assert trips.typical() == 0.3
    assert round_trips_for(FAKE_BASE + "/") is round_trips_for(FAKE_BASE)


def _slow(request: httpx.Request) -> httpx.Response:
    time.sleep(0.05)
    return httpx.Response(200, json={"ok": True})


async def _aslow(request: httpx.Request) -> httpx.Response:
    await asyncio.sleep(0.05)
    return httpx.Response(200, json={"ok": True})


def test_every_answer_is_timed_for_the_hooks_of_that_api(make_hook: Callable[..., JamboHook]) -> None:
    """Sync and async answers are timed (``response.elapsed``), per base URL: another hook on the
    same API knows it at once; nothing is known before the connection is read."""
    hook = make_hook()
    assert hook.round_trip() == 0.0
    with respx.mock(base_url=FAKE_BASE) as mock:
        mock.get("/projects/p-1").mock(side_effect=_slow)
        hook.request(ApiRequest("GET", "/projects/{project_id}", {"project_id": "p-1"}))
        assert 0.05 <= hook.round_trip() < 1.0
        other = make_hook()
        other.load()
        assert other.round_trip() == hook.round_trip()

        mock.get("/projects/p-2").mock(side_effect=_aslow)
        reset_round_trips()

        async def send() -> None:
            await hook.arequest(ApiRequest("GET", "/projects/{project_id}", {"project_id": "p-2"}))
            await hook.aclose()

        asyncio.run(send())
        assert 0.05 <= hook.round_trip() < 1.0
