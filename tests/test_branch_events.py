"""The branch watchers' rules on hand-made listings: the cases a server makes hard to reach."""

from __future__ import annotations

from typing import Any

from airflow_provider_jambo.branch_events import (
    BranchFilter,
    BranchListing,
    ListedBranch,
    WatchState,
    detect,
)

T0 = "2026-01-01T00:00:00Z"
LATER = "2026-01-01T01:00:00Z"
PREVIEW = BranchFilter.build(["created", "reset", "deleted"], "preview/", None)


def branch(branch_id: str, name: str, created: str = T0, **extra: Any) -> dict[str, Any]:
    return {"id": branch_id, "name": name, "created_at": created, "parent_id": "br-main", **extra}


def listing(*items: dict[str, Any], annotations: dict[str, Any] | None = None) -> BranchListing:
    notes = annotations or {}
    return BranchListing("p-1", tuple(ListedBranch.from_api(i, notes.get(i["id"])) for i in items), LATER)


def run(
    state: WatchState, *items: dict[str, Any], filt: BranchFilter = PREVIEW
) -> tuple[WatchState, list[Any]]:
    return detect(state, listing(*items), filt)


def test_the_first_listing_is_the_baseline() -> None:
    state, events = run(WatchState(), branch("b-1", "preview/a"), branch("b-2", "other"))
    assert events == []
    assert state.known == {"b-1": ("preview/a", "")}
    _, events = run(state, branch("b-1", "preview/a"), branch("b-2", "other"))
    assert events == []


def test_a_branch_that_vanishes_is_deleted_under_its_last_name() -> None:
    state, _ = run(WatchState(), branch("b-1", "preview/a"))
    state, events = run(state)  # hard-deleted: not listed at all
    assert [(e["event"], e["branch_name"], e["at"]) for e in events] == [("deleted", "preview/a", LATER)]
    assert state.known == {}


def test_a_soft_deleted_branch_is_deleted_once_and_a_recovered_one_is_not_created() -> None:
    state, _ = run(WatchState(), branch("b-1", "preview/a"))
    deleted = branch("b-1", "preview/a", recovery={"deleted_at": LATER})
    state, events = run(state, deleted)
    assert [e["event"] for e in events] == ["deleted"]
    state, events = run(state, deleted)
    assert events == []
    state, events = run(state, branch("b-1", "preview/a"))  # recovered
    assert events == []
    assert "b-1" in state.known


def test_renamed_out_of_the_prefix_is_no_event_and_an_old_branch_renamed_in_is_not_created() -> None:
    state, _ = run(
        WatchState(), branch("b-1", "preview/a"), branch("b-2", "old", created="2025-01-01T00:00:00Z")
    )
    state, events = run(
        state, branch("b-1", "renamed"), branch("b-2", "preview/old", created="2025-01-01T00:00:00Z")
    )
    assert events == []
    assert set(state.known) == {"b-2"}


def test_each_reset_is_told_by_last_reset_at() -> None:
    state, _ = run(WatchState(), branch("b-1", "preview/a"))
    reset = branch("b-1", "preview/a", last_reset_at=LATER, parent_timestamp=LATER, parent_lsn="0/1")
    state, events = run(state, reset)
    assert events == [
        {
            "project_id": "p-1",
            "branch_id": "b-1",
            "branch_name": "preview/a",
            "parent_id": "br-main",
            "at": LATER,
            "annotations": {},
            "event": "reset",
            "source_branch_id": "br-main",
            "source_timestamp": LATER,
            "source_lsn": "0/1",
        }
    ]
    _, events = run(state, reset)
    assert events == []


def test_the_state_round_trips_through_json_and_refuses_other_shapes() -> None:
    state, _ = run(
        WatchState(), branch("b-1", "preview/a"), branch("b-2", "preview/b", recovery={"deleted_at": T0})
    )
    assert WatchState.from_json(state.to_json()) == state
    assert WatchState.from_json({**state.to_json(), "version": 99}) is None
    assert WatchState.from_json({"version": 1, "watermark": T0, "known": {"b": "x"}, "gone": []}) is None
    assert WatchState.from_json(None) is None


def test_the_watermark_moves_only_with_the_services_timestamps() -> None:
    state, _ = run(WatchState(), branch("b-1", "preview/a"))
    newer, _ = run(state, branch("b-1", "preview/a"), branch("b-9", "x", created=LATER))
    assert newer.watermark is not None
    assert state.watermark is not None
    assert newer.watermark > state.watermark
    # Trailing the newest creation, so a branch listed late but created just before is still news.
    _, events = run(
        newer,
        branch("b-1", "preview/a"),
        branch("b-9", "x", created=LATER),
        branch("b-3", "preview/late", created="2026-01-01T00:59:30Z"),
    )
    assert [e["branch_name"] for e in events] == ["preview/late"]
