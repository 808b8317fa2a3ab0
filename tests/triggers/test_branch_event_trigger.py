"""JamboBranchEventTrigger against the emulator: each rule Airflow sets for a watcher's trigger.

The trigger's ``run()`` is driven directly (as the triggerer would without shared streams), and
3.3's shared-stream path through ``open_shared_stream``/``filter_shared_stream``. Branches are made
with the synchronous hook from inside the test's event loop: that blocks the loop, so no poll falls
between two changes made together ("between two polls" is exact, not a race).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from importlib.metadata import version
from typing import Any

import httpx
import pytest
from jambo_support import JamboProject

from airflow_provider_jambo.create_branch_request import CreateBranchRequest
from airflow_provider_jambo.exceptions import JamboConfigError
from airflow_provider_jambo.hooks.branch_feed import active_feeds
from airflow_provider_jambo.hooks.budget import budget_for
from airflow_provider_jambo.hooks.jambo import JamboHook
from airflow_provider_jambo.triggers.events import JamboBranchEventTrigger

AIRFLOW_2 = version("apache-airflow").startswith("2.")
pytestmark = pytest.mark.skipif(AIRFLOW_2, reason="asset watchers need Airflow 3")

LISTING = "/projects/{project_id}/branches"
POLL = 0.05


def watcher(**kwargs: Any) -> JamboBranchEventTrigger:
    return JamboBranchEventTrigger(**{"poll_interval": POLL, **kwargs})


class MemoryStore:
    """An asset state store accessor as Airflow 3.3's triggerer injects it (one asset)."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}
        self.writes: list[Any] = []

    async def aget(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    async def aset(self, key: str, value: Any) -> None:
        json.dumps(value)  # the store takes JSON only
        self.values[key] = value
        self.writes.append(value)


class SeveralAssets:
    """What the accessors of a trigger serving two assets do when asked without naming one."""

    async def aget(self, key: str, default: Any = None) -> Any:
        raise ValueError("Task has 2 concrete inlets and outlets")


class Running:
    """A trigger's event stream running in the background, its payloads collected."""

    def __init__(self, events: AsyncIterator[Any]) -> None:
        self.payloads: list[dict[str, Any]] = []
        self._task = asyncio.ensure_future(self._collect(events))

    async def _collect(self, events: AsyncIterator[Any]) -> None:
        async for event in events:
            self.payloads.append(event.payload)

    def of(self, kind: str) -> list[str]:
        return [p["branch_name"] for p in self.payloads if p["event"] == kind]

    async def stop(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


def start(trigger: JamboBranchEventTrigger, store: Any = None) -> Running:
    trigger.asset_state_store = store
    return Running(trigger.run())


async def polls(n: int = 2, timeout: float = 10.0) -> None:
    """Wait until the loop's branch poll has taken ``n`` more listings (and the watchers read them)."""
    end = time.monotonic() + timeout
    while not active_feeds():
        assert time.monotonic() < end, "no branch poll started"
        await asyncio.sleep(0.01)
    [feed] = active_feeds()
    target = feed.polls + n
    while feed.polls < target:
        assert time.monotonic() < end, "the poll stalled"
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.02)


def create(name: str, annotations: dict[str, str] | None = None) -> str:
    with JamboHook() as hook:
        return hook.branches.create(CreateBranchRequest(name=name, annotations=annotations)).branch.id


def delete(branch_id: str) -> None:
    with JamboHook() as hook:
        hook.branches.delete(branch_id)


def listings(emu: Any) -> int:
    return sum(1 for r in emu.requests() if r["method"] == "GET" and r["route"] == LISTING)


# --- kwargs ------------------------------------------------------------------------------------


def test_kwargs_are_stable_across_parses_so_the_hash_is() -> None:
    from airflow.triggers.base import BaseEventTrigger

    one = watcher(name_prefix="preview/", events=("deleted", "created"), annotations={"b": "2", "a": "1"})
    time.sleep(0.01)  # a clock in the kwargs would show
    two = watcher(name_prefix="preview/", events=["created", "deleted"], annotations={"a": "1", "b": "2"})
    assert one.serialize() == two.serialize()
    if hasattr(
        BaseEventTrigger, "hash"
    ):  # how Airflow identifies a watcher's trigger (3.0's own scheme aside)
        assert BaseEventTrigger.hash(*one.serialize()) == BaseEventTrigger.hash(*two.serialize())
    classpath, kwargs = one.serialize()
    assert JamboBranchEventTrigger(**kwargs).serialize() == (classpath, kwargs)  # the triggerer's rebuild
    # Another process (another parse) serializes the same: nothing random or process-bound.
    code = (
        "from airflow_provider_jambo.triggers.events import JamboBranchEventTrigger as T\n"
        "import json; print(json.dumps(T(name_prefix='preview/', events=['deleted', 'created'], "
        "annotations={'b': '2', 'a': '1'}, poll_interval=0.05).serialize()))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == [classpath, kwargs]
    assert one.state_key == two.state_key != watcher(name_prefix="other/").state_key
    assert (
        watcher(name_prefix="preview/", poll_interval=60).state_key
        == watcher(name_prefix="preview/").state_key
    )


@pytest.mark.parametrize(
    ("kwargs", "names"),
    [
        ({"events": ("made",)}, ["events", "'made'", "'created', 'reset', 'deleted'"]),
        ({"events": "created"}, ["events", "non-empty list"]),
        ({"events": ()}, ["events"]),
        ({"name_prefix": ""}, ["name_prefix"]),
        ({"annotations": {"a": 1}}, ["annotations"]),
        ({"project_id": "Not An Id"}, ["project_id"]),
        ({"poll_interval": 0}, ["poll_interval"]),
        ({"jambo_conn_id": ""}, ["jambo_conn_id"]),
    ],
)
def test_bad_input_is_refused_when_the_dag_is_parsed(kwargs: dict[str, Any], names: list[str]) -> None:
    with pytest.raises(JamboConfigError) as err:
        JamboBranchEventTrigger(**kwargs)
    for name in names:
        assert name in str(err.value)


def test_siblings_of_one_project_share_a_stream_key() -> None:
    a = watcher(name_prefix="preview/").shared_stream_key()
    assert a == watcher(name_prefix="other/", events=("deleted",)).shared_stream_key()
    assert a != watcher(name_prefix="preview/", project_id="p-1").shared_stream_key()
    assert a != watcher(name_prefix="preview/", jambo_conn_id="jambo_other").shared_stream_key()


# --- edge-triggered ------------------------------------------------------------------------------


async def test_each_creation_fires_once_and_what_exists_never(jambo_project: JamboProject) -> None:
    create("preview/old")
    running = start(watcher(name_prefix="preview/"))
    await polls(2)
    create("preview/a")
    create("feature/x")  # not the prefix
    await polls(3)
    create("preview/b")
    await polls(3)
    await running.stop()
    assert running.of("created") == ["preview/a", "preview/b"]
    [first] = running.payloads[:1]
    assert first["branch_id"] == jambo_project.branch_named("preview/a").id
    assert first["parent_id"] == jambo_project.default_branch_id
    assert first["project_id"] == jambo_project.project_id
    assert first["annotations"] == {}
    assert first["at"].startswith("20")


async def test_reset_and_delete_fire_for_the_kinds_asked(jambo_project: JamboProject) -> None:
    branch_id = create("preview/r")
    everything = start(watcher(name_prefix="preview/", events=("created", "reset", "deleted")))
    created_only = start(watcher(name_prefix="preview/"))
    await polls(2)
    jambo_project.emu.advance(5)
    with JamboHook() as hook:
        hook.branches.restore(branch_id, source_branch_id=jambo_project.default_branch_id)
    await polls(2)
    delete(branch_id)
    await polls(2)
    await everything.stop()
    await created_only.stop()
    assert [(p["event"], p["branch_name"]) for p in everything.payloads] == [
        ("reset", "preview/r"),
        ("deleted", "preview/r"),
    ]
    reset = everything.payloads[0]
    assert reset["source_branch_id"] == jambo_project.default_branch_id
    assert reset["source_timestamp"]
    assert reset["at"]
    assert created_only.payloads == []


async def test_created_and_deleted_between_two_polls_is_still_reported(jambo_project: JamboProject) -> None:
    running = start(watcher(name_prefix="preview/", events=("created", "deleted")))
    await polls(2)
    delete(create("preview/brief"))  # one blocking stretch: no poll in between
    await polls(2)
    await running.stop()
    assert [(p["event"], p["branch_name"]) for p in running.payloads] == [
        ("created", "preview/brief"),
        ("deleted", "preview/brief"),
    ]


async def test_annotations_filter(jambo_project: JamboProject) -> None:
    running = start(watcher(annotations={"source": "ci"}))
    await polls(2)
    create("pr-1", {"source": "ci", "pr": "1"})
    create("pr-2", {"source": "console"})
    await polls(2)
    await running.stop()
    assert running.of("created") == ["pr-1"]
    assert running.payloads[0]["annotations"] == {"source": "ci", "pr": "1"}


# --- state ---------------------------------------------------------------------------------------


async def test_a_restart_with_the_state_store_loses_and_repeats_nothing(jambo_project: JamboProject) -> None:
    store = MemoryStore()
    first = start(watcher(name_prefix="preview/"), store)
    await polls(2)
    assert store.writes, "the baseline is stored at once"
    create("preview/1")
    await polls(1)
    # The state covering an event is written one listing after it (the event reaches the metadata
    # database first): right after the event only the baseline is stored; a listing later, it is.
    assert first.of("created") == ["preview/1"]
    await polls(2)
    await first.stop()
    create("preview/2")  # while no triggerer runs
    second = start(watcher(name_prefix="preview/"), store)
    await polls(3)
    await second.stop()
    assert second.of("created") == ["preview/2"]  # not preview/1 again, and preview/2 not lost


async def test_the_state_written_lags_the_events_by_one_listing(jambo_project: JamboProject) -> None:
    store = MemoryStore()
    trigger = watcher(name_prefix="preview/")
    seen: list[set[str]] = []

    async def one_listing_at_a_time() -> AsyncIterator[Any]:
        from airflow_provider_jambo.hooks.branch_feed import list_branches

        with JamboHook() as hook:
            for _ in range(3):
                seen.append(set((store.values.get(trigger.state_key) or {}).get("known", {})))
                yield await list_branches(hook, jambo_project.project_id)
                if len(seen) == 1:
                    create("preview/x")
            seen.append(set((store.values.get(trigger.state_key) or {}).get("known", {})))

    trigger.asset_state_store = store
    payloads = [e.payload async for e in trigger.filter_shared_stream(one_listing_at_a_time())]
    x = jambo_project.branch_named("preview/x").id
    assert [p["branch_name"] for p in payloads] == ["preview/x"]
    # Listing 2 fires the event; the state covering it is written once listing 3 is in, not before.
    assert x not in seen[1]
    assert x not in seen[2]
    assert x in seen[3]


async def test_without_a_state_store_each_start_is_a_new_baseline(jambo_project: JamboProject) -> None:
    first = start(watcher(name_prefix="preview/"))  # Airflow 3.0-3.2: no store
    await polls(2)
    await first.stop()
    create("preview/while-down")
    second = start(watcher(name_prefix="preview/"), SeveralAssets())  # a store it cannot use
    await polls(2)
    create("preview/after")
    await polls(2)
    await second.stop()
    assert second.of("created") == ["preview/after"]


# --- one poll, the budget ------------------------------------------------------------------------


async def test_twenty_watchers_cost_the_requests_of_one(jambo_project: JamboProject) -> None:
    emu = jambo_project.emu
    budget = budget_for(emu.base_url, emu.api_key)
    one = start(watcher(name_prefix="w0/"))
    await polls(1)
    emu.clear_requests()
    await polls(10)
    alone = listings(emu)
    others = [start(watcher(name_prefix=f"w{i}/", events=("created", "deleted"))) for i in range(1, 20)]
    await polls(1)
    [feed] = active_feeds()
    assert feed.watchers == 20
    emu.clear_requests()
    granted = budget.granted
    await polls(10)
    together = listings(emu)
    assert together <= alone + 1  # the same ten polls, give or take the one in flight
    assert budget.granted - granted >= together  # every listing drew from the account's budget
    for i in range(20):
        create(f"w{i}/b")
    await polls(2)
    for running in [one, *others]:
        await running.stop()
    assert [r.of("created") for r in [one, *others]] == [[f"w{i}/b"] for i in range(20)]
    assert active_feeds() == []  # the last watcher leaving ends the poll


async def test_the_shared_stream_path_fires_the_same_events(jambo_project: JamboProject) -> None:
    """Airflow 3.3's triggerer: one ``open_shared_stream`` per key, each watcher filtering it."""
    trigger = watcher(name_prefix="preview/")
    _, kwargs = trigger.serialize()
    stream = JamboBranchEventTrigger.open_shared_stream(kwargs)
    events = trigger.filter_shared_stream(stream)
    first = asyncio.ensure_future(anext(events))
    await asyncio.sleep(0.3)  # the baseline is taken
    create("preview/s")
    event = await asyncio.wait_for(first, 10)
    await events.aclose()  # type: ignore[attr-defined]
    assert event.payload["event"] == "created"
    assert event.payload["branch_name"] == "preview/s"


async def test_a_bad_key_ends_every_watcher_with_the_error(
    jambo_project: JamboProject, monkeypatch: Any
) -> None:
    conn = json.dumps(
        {
            "conn_type": "jambo",
            "host": jambo_project.emu.base_url,
            "password": "wrong-key",
            "extra": {"project_id": jambo_project.project_id, "max_retries": 0},
        }
    )
    monkeypatch.setenv("AIRFLOW_CONN_JAMBO_BAD", conn)
    from airflow_provider_jambo.exceptions import JamboAuthError

    runs = [watcher(jambo_conn_id="jambo_bad", name_prefix=p).run() for p in ("a/", "b/")]
    for events in runs:
        with pytest.raises(JamboAuthError):
            await asyncio.wait_for(anext(events), 10)


async def test_the_payload_carries_no_secret(jambo_project: JamboProject) -> None:
    emu = jambo_project.emu
    running = start(watcher(name_prefix="preview/"))
    await polls(2)
    with JamboHook() as hook:  # with a compute: the branch has a role password
        hook.branches.create(CreateBranchRequest(name="preview/c", endpoints=[{"type": "read_write"}]))
        uri = hook.branches.connection_uri(
            branch_id=jambo_project.branch_named("preview/c").id, database="neondb", role="neondb_owner"
        )
    await polls(2)
    await running.stop()
    password = httpx.URL(uri).password
    text = json.dumps(running.payloads)
    assert running.of("created") == ["preview/c"]
    assert password
    assert password not in text
    assert emu.api_key not in text


async def test_a_failed_listing_skips_one_poll_and_the_watch_goes_on(
    jambo_project: JamboProject, monkeypatch: Any
) -> None:
    from jambo_support import connection_json

    emu = jambo_project.emu
    monkeypatch.setenv(
        "AIRFLOW_CONN_JAMBO_DEFAULT", connection_json(emu, jambo_project.project_id, max_retries=0)
    )
    running = start(watcher(name_prefix="preview/"))
    await polls(2)
    emu.inject_fault("GET", LISTING, faults=[{"kind": "status", "status": 503}], times=3)
    create("preview/after-outage")
    await polls(5)
    await running.stop()
    assert running.of("created") == ["preview/after-outage"]
    assert [r["status"] for r in emu.requests() if r["route"] == LISTING].count(503) == 3


async def test_airflow_33_shared_streams_poll_once_for_twenty_watchers(jambo_project: JamboProject) -> None:
    """The path Airflow 3.3's triggerer takes: its SharedStreamManager groups the watchers by
    ``shared_stream_key`` and runs one ``open_shared_stream`` per group."""
    shared_stream = pytest.importorskip(
        "airflow.triggers.shared_stream", reason="shared streams: Airflow 3.3+"
    )
    emu = jambo_project.emu
    manager = shared_stream.SharedStreamManager()

    async def rate(n: int) -> tuple[int, list[Running]]:
        triggers = [watcher(name_prefix=f"s{i}/", poll_interval=0.1) for i in range(n)]
        running = [
            Running(
                t.filter_shared_stream(manager.subscribe(trigger_id=i, trigger=t, key=t.shared_stream_key()))
            )
            for i, t in enumerate(triggers)
        ]
        await asyncio.sleep(0.3)
        emu.clear_requests()
        await asyncio.sleep(1.0)
        return listings(emu), running

    alone, one = await rate(1)
    await one[0].stop()
    await manager.unsubscribe(0, watcher(poll_interval=0.1).shared_stream_key())
    together, twenty = await rate(20)
    create("s7/b")
    await asyncio.sleep(0.5)
    for running in twenty:
        await running.stop()
    await manager.stop_all()
    assert alone >= 5  # ~10 polls in 1 s at 0.1 s
    assert together <= alone * 1.5  # the same one poll, not twenty
    assert [r.of("created") for r in twenty] == [["s7/b"] if i == 7 else [] for i in range(20)]
