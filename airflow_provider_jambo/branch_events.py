"""What happened to a project's branches between two listings: the rules of the branch watchers.

``JamboBranchEventTrigger`` (``triggers/events.py``) polls one listing of a project's branches
(soft-deleted ones included, ``include_deleted=true``) and hands each listing to :func:`detect`
with the watcher's :class:`WatchState`. Pure functions and plain data (no I/O), so every rule is
tested without a server, and the state is JSON for Airflow's asset state store.

The rules (edge-triggered: each fact fires once; a branch that simply exists never fires):

- **created**: a matching branch whose id the watcher has not seen, created after the watermark.
  The first listing a watcher ever sees is its baseline: everything in it already exists, and
  nothing fires for it.
- **reset** (also a restore): a seen branch whose ``last_reset_at`` changed. Two resets between two
  polls are one event (the listing shows the last one).
- **deleted**: a seen branch listed with ``recovery.deleted_at`` (soft-deleted), or gone from the
  listing (hard-deleted, or the service does not list deleted branches).
- A branch created *and* deleted between two polls is reported as both while the listing still
  shows it as recoverable (the recovery window). Missed, and why: one created and hard-deleted
  between two polls (nothing lists it any more, and the project's operations carry no branch name to
  filter on); a reset followed by another before the next poll (one event); a branch renamed into
  the prefix or given the annotations more than :data:`CREATED_GRACE_SECONDS` after its creation
  (it is taken as existing, not created).

The watermark only ever moves with the service's own timestamps (``created_at``), never with the
triggerer's clock, and trails the newest creation by :data:`CREATED_GRACE_SECONDS` so a listing
that shows a later branch before an earlier one cannot hide the earlier one; ids already seen keep
that window from repeating anything.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Literal, TypedDict, get_args

from airflow_provider_jambo.exceptions import JamboConfigError
from airflow_provider_jambo.rules import parse_datetime

BranchEventKind = Literal["created", "reset", "deleted"]
EVENT_KINDS: tuple[str, ...] = get_args(BranchEventKind)

#: How far the watermark trails the newest ``created_at`` seen (seconds); see the module docstring.
CREATED_GRACE_SECONDS = 120.0
#: The version of :meth:`WatchState.to_json`'s shape; a stored state of another version is a fresh start.
STATE_VERSION = 1


class BranchEventPayload(TypedDict, total=False):
    """One event as consumers read it: ``triggering_asset_events[asset][i].extra["payload"]``.

    Always: ``event``, ``project_id``, ``branch_id``, ``branch_name``, ``parent_id``, ``at`` (ISO
    time of the fact: creation, reset, deletion; the poll's time for a branch that vanished) and
    ``annotations``. A reset adds ``source_branch_id``, ``source_timestamp`` and ``source_lsn`` (the
    point reset to, None when the service does not say). Nothing secret is ever in it: the listing
    holds no passwords.
    """

    event: BranchEventKind
    project_id: str
    branch_id: str
    branch_name: str
    parent_id: str | None
    at: str
    annotations: dict[str, str]
    source_branch_id: str | None
    source_timestamp: str | None
    source_lsn: str | None


@dataclass(frozen=True)
class ListedBranch:
    """One branch as a listing shows it (the fields the rules need)."""

    id: str
    name: str
    parent_id: str | None
    created_at: datetime | None
    created_at_text: str
    last_reset_at: str | None
    deleted_at: str | None
    parent_timestamp: str | None
    parent_lsn: str | None
    annotations: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_api(cls, item: Mapping[str, Any], annotation: Any = None) -> ListedBranch:
        """``item`` from ``branches``; ``annotation`` its entry in the page's ``annotations`` map."""
        recovery = item.get("recovery")
        value = annotation.get("value") if isinstance(annotation, Mapping) else None
        return cls(
            id=str(item.get("id", "")),
            name=str(item.get("name", "")),
            parent_id=_text(item.get("parent_id")),
            created_at=parse_datetime(item.get("created_at")),
            created_at_text=str(item.get("created_at") or ""),
            last_reset_at=_text(item.get("last_reset_at")),
            deleted_at=_text(recovery.get("deleted_at")) if isinstance(recovery, Mapping) else None,
            parent_timestamp=_text(item.get("parent_timestamp")),
            parent_lsn=_text(item.get("parent_lsn")),
            annotations={str(k): str(v) for k, v in value.items()} if isinstance(value, Mapping) else {},
        )


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


@dataclass(frozen=True)
class BranchListing:
    """One poll: every branch of a project (soft-deleted ones too when the service lists them)."""

    project_id: str
    branches: tuple[ListedBranch, ...]
    #: When the listing was taken (ISO): the ``at`` of a branch that vanished without a trace.
    taken_at: str


@dataclass(frozen=True)
class BranchFilter:
    """Which branches and which kinds of event a watcher wants; checked when built."""

    events: frozenset[str]
    name_prefix: str | None = None
    annotations: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def build(
        cls, events: Sequence[str], name_prefix: str | None, annotations: Mapping[str, str] | None
    ) -> BranchFilter:
        if isinstance(events, str) or not isinstance(events, Sequence) or not events:
            raise JamboConfigError(
                f"events must be a non-empty list of {', '.join(map(repr, EVENT_KINDS))}, got {events!r}"
            )
        unknown = [e for e in events if e not in EVENT_KINDS]
        if unknown:
            allowed = ", ".join(map(repr, EVENT_KINDS))
            raise JamboConfigError(f"events: unknown {', '.join(map(repr, unknown))}; allowed: {allowed}")
        if name_prefix is not None and (not isinstance(name_prefix, str) or not name_prefix):
            raise JamboConfigError(f"name_prefix must be a non-empty string or None, got {name_prefix!r}")
        if annotations is not None and (
            not isinstance(annotations, Mapping)
            or not all(isinstance(k, str) and isinstance(v, str) for k, v in annotations.items())
        ):
            raise JamboConfigError(f"annotations must map strings to strings, got {annotations!r}")
        return cls(frozenset(events), name_prefix, dict(annotations or {}))

    def matches(self, branch: ListedBranch) -> bool:
        if self.name_prefix is not None and not branch.name.startswith(self.name_prefix):
            return False
        return all(branch.annotations.get(k) == v for k, v in self.annotations.items())


@dataclass(frozen=True)
class WatchState:
    """What one watcher has seen: the watermark and the ids it knows (JSON for the state store).

    ``known``: matching branches alive at the last listing, each with its name (for the event of a
    branch that vanishes) and its ``last_reset_at`` (``""`` when never reset).
    ``gone``: branches reported deleted that the listing still shows as recoverable (so they are
    not reported again); pruned once the listing drops them.
    ``watermark`` is None only before the baseline.
    """

    watermark: str | None = None
    known: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    gone: frozenset[str] = frozenset()

    @property
    def started(self) -> bool:
        return self.watermark is not None

    def to_json(self) -> dict[str, Any]:
        return {
            "version": STATE_VERSION,
            "watermark": self.watermark,
            "known": {k: list(v) for k, v in sorted(self.known.items())},
            "gone": sorted(self.gone),
        }

    @classmethod
    def from_json(cls, data: Any) -> WatchState | None:
        """A stored state, or None when there is none or it is not one this version wrote."""
        if not isinstance(data, Mapping) or data.get("version") != STATE_VERSION:
            return None
        watermark, known, gone = data.get("watermark"), data.get("known"), data.get("gone")
        if not isinstance(watermark, str) or not isinstance(known, Mapping) or not isinstance(gone, list):
            return None
        entries: dict[str, tuple[str, str]] = {}
        for key, value in known.items():
            if not isinstance(value, list) or len(value) != 2:
                return None
            entries[str(key)] = (str(value[0]), str(value[1]))
        return cls(watermark, entries, frozenset(map(str, gone)))


def baseline(listing: BranchListing, filt: BranchFilter) -> WatchState:
    """The first state of a watcher: what exists now is known, nothing fires for it."""
    known = {b.id: _entry(b) for b in listing.branches if filt.matches(b) and not b.deleted_at}
    gone = frozenset(b.id for b in listing.branches if filt.matches(b) and b.deleted_at)
    # No branch at all: from the listing's own time, so an old branch appearing later is no news.
    watermark = _trailing(listing) or parse_datetime(listing.taken_at)
    return WatchState(watermark.isoformat() if watermark else listing.taken_at, known, gone)


def _trailing(listing: BranchListing) -> datetime | None:
    """The newest creation the listing shows, less the grace (the module docstring says why)."""
    newest = max((b.created_at for b in listing.branches if b.created_at), default=None)
    return newest - timedelta(seconds=CREATED_GRACE_SECONDS) if newest else None


def detect(
    state: WatchState, listing: BranchListing, filt: BranchFilter
) -> tuple[WatchState, list[BranchEventPayload]]:
    """The events between ``state`` and ``listing`` and the state after them (inputs unchanged)."""
    if not state.started:
        return baseline(listing, filt), []
    watermark = parse_datetime(state.watermark)
    known = dict(state.known)
    gone = set(state.gone)
    events: list[BranchEventPayload] = []
    listed_ids = {b.id for b in listing.branches}

    for branch in listing.branches:
        if not filt.matches(branch):
            # Renamed out of the prefix (or annotations changed): no longer this watcher's.
            known.pop(branch.id, None)
            continue
        if branch.id in gone:
            if not branch.deleted_at:  # recovered: it exists again, which is not a creation
                gone.discard(branch.id)
                known[branch.id] = _entry(branch)
            continue
        if branch.id not in known:
            is_new = branch.created_at is not None and (watermark is None or branch.created_at > watermark)
            if is_new:
                events.append(_payload("created", listing, branch, branch.created_at_text))
            if branch.deleted_at:
                if is_new:
                    events.append(_payload("deleted", listing, branch, branch.deleted_at))
                gone.add(branch.id)
            else:
                known[branch.id] = _entry(branch)
            continue
        if branch.deleted_at:
            events.append(_payload("deleted", listing, branch, branch.deleted_at))
            del known[branch.id]
            gone.add(branch.id)
        else:
            if (branch.last_reset_at or "") != known[branch.id][1]:
                events.append(_reset_payload(listing, branch))
            known[branch.id] = _entry(branch)

    for branch_id in [i for i in known if i not in listed_ids]:
        # Not listed at all: hard-deleted (or deleted where the listing shows no deleted branches).
        payload = _base(listing, branch_id, known.pop(branch_id)[0], None, listing.taken_at, {})
        payload["event"] = "deleted"
        events.append(payload)
    gone &= listed_ids  # out of the recovery window: nothing can bring them back into the listing

    trailing = _trailing(listing)
    if trailing is not None and (watermark is None or trailing > watermark):
        watermark = trailing
    new_state = replace(
        state,
        watermark=watermark.isoformat() if watermark else state.watermark,
        known=known,
        gone=frozenset(gone),
    )
    return new_state, [e for e in events if e["event"] in filt.events]


def _entry(branch: ListedBranch) -> tuple[str, str]:
    return branch.name, branch.last_reset_at or ""


def _base(
    listing: BranchListing,
    branch_id: str,
    name: str,
    parent_id: str | None,
    at: str,
    annotations: Mapping[str, str],
) -> BranchEventPayload:
    return {
        "project_id": listing.project_id,
        "branch_id": branch_id,
        "branch_name": name,
        "parent_id": parent_id,
        "at": at,
        "annotations": dict(annotations),
    }


def _payload(
    kind: BranchEventKind, listing: BranchListing, branch: ListedBranch, at: str
) -> BranchEventPayload:
    payload = _base(listing, branch.id, branch.name, branch.parent_id, at, branch.annotations)
    payload["event"] = kind
    return payload


def _reset_payload(listing: BranchListing, branch: ListedBranch) -> BranchEventPayload:
    payload = _payload("reset", listing, branch, branch.last_reset_at or listing.taken_at)
    # After a reset the parent is the source the branch was reset to, at that point.
    payload["source_branch_id"] = branch.parent_id
    payload["source_timestamp"] = branch.parent_timestamp
    payload["source_lsn"] = branch.parent_lsn
    return payload
