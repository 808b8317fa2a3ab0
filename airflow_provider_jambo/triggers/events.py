"""Event triggers for asset watchers: DAGs that start when branches change outside Airflow.

``Asset("preview-branches", watchers=[AssetWatcher(name=..., trigger=JamboBranchEventTrigger(
name_prefix="preview/"))])`` makes one asset event per branch created (reset, deleted) in the
project, whoever made it: a CI job, the console, another team's tooling. The event's payload
(``triggering_asset_events[asset][i].extra["payload"]``) is a
:class:`~airflow_provider_jambo.branch_events.BranchEventPayload`. What counts as an event, and
what can be missed, is ``branch_events.py``'s; the polling and its sharing are
``hooks/branch_feed.py``'s.

The rules Airflow sets for a watcher's trigger:

- **Stable kwargs**: only what the user wrote, normalised (events and annotations sorted), never a
  clock or a random value, so the trigger's hash is the same at every parse.
- **Edge-triggered**: each fact fires once; the first listing is the baseline (what exists now never
  fires).
- **State**: on Airflow 3.3 the watcher keeps its :class:`~airflow_provider_jambo.branch_events.WatchState`
  in the asset state store (one key per watcher, from its kwargs), so a restarted triggerer resumes
  where it stopped. The state written is one listing behind the events it covers: the triggerer
  sends an event to its supervisor at its next sync (about a second) while a state write goes
  straight through, so writing at once could record an event the metadata database never got. A
  triggerer killed within one poll of an event therefore repeats that event; killed at any other
  moment it loses and repeats nothing. On 3.0-3.2 there is no state store: each start is a new
  baseline (events while no triggerer ran are not reported). A trigger serving several assets at once
  (identical watchers on two assets) cannot tell which asset's store to use and keeps its state in
  memory, as on 3.0-3.2.
- **Async only**: every request goes through the hook's async client and the account's budget;
  sibling watchers of one project share one poll (3.3's shared streams, else one feed per event loop).
- **Errors**: a listing that fails after the hook's retries (5xx, transport, 429, 423) skips that
  poll; a bad key or a missing project ends every watcher of the poll with the error.

Needs Airflow 3.0 or later (asset watchers); on Airflow 2 the module imports but the trigger refuses
to be built, saying so.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator, Hashable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow.triggers.base import TriggerEvent

from airflow_provider_jambo.branch_events import EVENT_KINDS, BranchFilter, BranchListing, WatchState, detect
from airflow_provider_jambo.exceptions import JamboConfigError
from airflow_provider_jambo.rules import check_id, seconds

if TYPE_CHECKING:
    from airflow.triggers.base import BaseEventTrigger

    from airflow_provider_jambo.hooks.jambo import JamboHook
else:
    try:
        from airflow.triggers.base import BaseEventTrigger
    except ImportError:  # Airflow 2: no event-driven scheduling
        from airflow.triggers.base import BaseTrigger

        class BaseEventTrigger(BaseTrigger):
            def __init__(self, **kwargs: Any) -> None:
                from airflow import __version__

                raise JamboConfigError(
                    f"JamboBranchEventTrigger needs Airflow 3.0 or later (asset watchers, event-driven "
                    f"scheduling); this is Airflow {__version__}"
                )


__all__ = ["DEFAULT_POLL_INTERVAL", "EVENT_KINDS", "JamboBranchEventTrigger"]

#: Seconds between two listings of the project (one request per 1000 branches each).
DEFAULT_POLL_INTERVAL = 15.0
#: The asset state store key prefix; the rest is a digest of what the watcher watches.
STATE_KEY_PREFIX = "jambo.branch_events."


class JamboBranchEventTrigger(BaseEventTrigger):
    """Fires once for each branch of a project created, reset (or restored) or deleted.

    :param project_id: the project watched; None = the connection's ``project_id``.
    :param name_prefix: only branches whose name starts with it (exactly, case included).
    :param annotations: only branches whose annotations hold all these key/value pairs.
    :param events: which facts fire, any of ``"created"``, ``"reset"``, ``"deleted"``.
    :param jambo_conn_id: Airflow connection id of the Jambo API (the key stays in the connection).
    :param poll_interval: seconds between two listings; sibling watchers with the same connection,
        project and interval share one.
    """

    def __init__(
        self,
        project_id: str | None = None,
        name_prefix: str | None = None,
        annotations: Mapping[str, str] | None = None,
        events: Sequence[str] = ("created",),
        jambo_conn_id: str = "jambo_default",
        poll_interval: float = DEFAULT_POLL_INTERVAL,
    ) -> None:
        super().__init__()
        self.filter = BranchFilter.build(events, name_prefix, annotations)
        self.project_id = check_id("project_id", project_id) if project_id is not None else None
        if not isinstance(jambo_conn_id, str) or not jambo_conn_id:
            raise JamboConfigError(f"jambo_conn_id must be a non-empty string, got {jambo_conn_id!r}")
        self.jambo_conn_id = jambo_conn_id
        self.poll_interval = seconds("poll_interval", poll_interval)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "project_id": self.project_id,
                "name_prefix": self.filter.name_prefix,
                "annotations": dict(sorted(self.filter.annotations.items())),
                "events": sorted(self.filter.events),
                "jambo_conn_id": self.jambo_conn_id,
                "poll_interval": self.poll_interval,
            },
        )

    @property
    def state_key(self) -> str:
        """This watcher's key in the asset state store: a digest of what it watches (not of its
        interval, so a changed interval keeps the state)."""
        _, kwargs = self.serialize()
        watched = {k: v for k, v in kwargs.items() if k != "poll_interval"}
        digest = hashlib.sha256(json.dumps(watched, sort_keys=True).encode()).hexdigest()[:16]
        return STATE_KEY_PREFIX + digest

    # --- the poll: shared by sibling watchers ---------------------------------------------------

    def shared_stream_key(self) -> Hashable | None:
        return _feed_key(self.serialize()[1])

    @classmethod
    async def open_shared_stream(cls, kwargs: dict[str, Any]) -> AsyncIterator[Any]:
        """Airflow 3.3's shared stream: one poll of the key's project for every sibling watcher."""
        from airflow_provider_jambo.hooks.branch_feed import poll_listings

        conn_id, project_id, interval = _feed_key(kwargs)
        hook = _make_hook(conn_id)
        try:
            async for listing in poll_listings(hook, project_id or None, interval):
                yield listing
        finally:
            await hook.aclose()

    async def filter_shared_stream(self, shared_stream: AsyncIterator[Any]) -> AsyncIterator[TriggerEvent]:
        async for event in self._events(shared_stream):
            yield event

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Without 3.3's shared streams (or driven directly): the event loop's shared feed."""
        from airflow_provider_jambo.hooks.branch_feed import shared_listings

        key = _feed_key(self.serialize()[1])
        async for event in self._events(shared_listings(key, lambda: _make_hook(self.jambo_conn_id))):
            yield event

    # --- the rules -------------------------------------------------------------------------------

    async def _events(self, listings: AsyncIterator[BranchListing]) -> AsyncIterator[TriggerEvent]:
        store, stored = await self._load_state()
        state = WatchState.from_json(stored) or WatchState()
        written = state
        unwritten: WatchState | None = None  # the state after the last events, written one listing later
        async for listing in listings:
            if unwritten is not None and store is not None:
                await store.aset(self.state_key, unwritten.to_json())
                written, unwritten = unwritten, None
            state, payloads = detect(state, listing, self.filter)
            for payload in payloads:
                self.log.info(
                    "Branch %s (%s) %s in project %s",
                    payload["branch_name"],
                    payload["branch_id"],
                    payload["event"],
                    payload["project_id"],
                )
                yield TriggerEvent(dict(payload))
            if payloads:
                unwritten = state
            elif state != written and store is not None:
                await store.aset(self.state_key, state.to_json())
                written = state

    async def _load_state(self) -> tuple[Any, Any]:
        """The asset state store (None where there is none) and this watcher's stored state."""
        store = getattr(self, "asset_state_store", None)  # set by Airflow 3.3's triggerer only
        if store is None:
            self.log.info("Watching branches from what exists now: no asset state store to resume from")
            return None, None
        try:
            return store, await store.aget(self.state_key)
        except ValueError:  # the accessors of several assets: which one is this watcher's is unknown
            self.log.warning(
                "This watcher serves several assets: its state stays in memory (each start is a new baseline)"
            )
            return None, None


def _feed_key(kwargs: Mapping[str, Any]) -> tuple[str, str, float]:
    """(connection id, project id or "" for the connection's, interval): the watchers sharing a poll."""
    return (
        str(kwargs["jambo_conn_id"]),
        str(kwargs.get("project_id") or ""),
        float(kwargs.get("poll_interval") or DEFAULT_POLL_INTERVAL),
    )


def _make_hook(conn_id: str) -> JamboHook:
    # Imported here: a DAG naming this trigger is parsed without the hook and its HTTP client.
    from airflow_provider_jambo.hooks.jambo import JamboHook

    return JamboHook(jambo_conn_id=conn_id)
