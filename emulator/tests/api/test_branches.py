"""Branch rules: names, deletes, expires_at, the sweeper, restore, default, listing and schema."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import httpx
import pytest
from emulator_helpers import create_branch

from jambo_emulator import EmulatorConfig, JamboEmulator


def _iso(emu: JamboEmulator, seconds_from_now: float) -> str:
    now = dt.datetime.fromtimestamp(emu.ctx.clock.now(), dt.UTC)
    return (now + dt.timedelta(seconds=seconds_from_now)).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_duplicate_name_is_409_branch_already_exists(api: httpx.Client, project: dict[str, Any]) -> None:
    pid = project["project"]["id"]
    create_branch(api, pid, name="dup")
    response = api.post(f"/projects/{pid}/branches", json={"branch": {"name": "dup"}})
    assert response.status_code == 409
    assert response.json()["message"] == "branch already exists"
    rename = api.patch(
        f"/projects/{pid}/branches/{project['branch']['id']}", json={"branch": {"name": "dup"}}
    )
    assert rename.status_code == 409


def test_branch_without_name_is_named_after_its_id(api: httpx.Client, project: dict[str, Any]) -> None:
    response = api.post(f"/projects/{project['project']['id']}/branches")
    assert response.status_code == 201
    branch = response.json()["branch"]
    assert branch["name"] == branch["id"]
    assert "connection_uris" not in response.json()
    assert response.json()["endpoints"] == []


def test_default_branch_cannot_be_deleted(api: httpx.Client, project: dict[str, Any]) -> None:
    pid, main = project["project"]["id"], project["branch"]["id"]
    response = api.delete(f"/projects/{pid}/branches/{main}")
    assert response.status_code == 400
    assert "default branch" in response.json()["message"]
    assert api.get(f"/projects/{pid}/branches/{main}").status_code == 200


def test_branch_with_children_cannot_be_deleted(api: httpx.Client, project: dict[str, Any]) -> None:
    pid = project["project"]["id"]
    parent = create_branch(api, pid, name="parent")["branch"]["id"]
    child = create_branch(api, pid, name="child", parent_id=parent)["branch"]["id"]
    response = api.delete(f"/projects/{pid}/branches/{parent}")
    assert response.status_code == 400
    assert "children" in response.json()["message"]
    assert api.delete(f"/projects/{pid}/branches/{child}").status_code == 200
    api.get(f"/projects/{pid}")  # the child's deletion finishes
    assert api.delete(f"/projects/{pid}/branches/{parent}").status_code == 200


def test_protected_branch_cannot_be_deleted(api: httpx.Client, project: dict[str, Any]) -> None:
    pid = project["project"]["id"]
    bid = create_branch(api, pid, name="keep", protected=True)["branch"]["id"]
    response = api.delete(f"/projects/{pid}/branches/{bid}")
    assert response.status_code == 400
    assert "protected" in response.json()["message"]


def test_delete_in_unknown_project_is_404_not_204(api: httpx.Client) -> None:
    assert api.delete("/projects/no-such-project/branches/br-x").status_code == 404


@pytest.mark.parametrize(
    ("offset", "extra", "fragment"),
    [
        (-60, {}, "must be in the future"),
        (31 * 86400, {}, "at most 30 days"),
        (3600, {"protected": True}, "not allowed on a protected branch"),
    ],
)
def test_expires_at_rules_on_create(
    jambo_emulator: JamboEmulator,
    api: httpx.Client,
    project: dict[str, Any],
    offset: int,
    extra: dict[str, Any],
    fragment: str,
) -> None:
    pid = project["project"]["id"]
    body = {"branch": {"name": "ttl", "expires_at": _iso(jambo_emulator, offset), **extra}}
    response = api.post(f"/projects/{pid}/branches", json=body)
    assert response.status_code == 400
    assert "expires_at" in response.json()["message"]
    assert fragment in response.json()["message"]


def test_expires_at_needs_a_time_zone(api: httpx.Client, project: dict[str, Any]) -> None:
    pid = project["project"]["id"]
    response = api.post(f"/projects/{pid}/branches", json={"branch": {"expires_at": "2030-01-01T00:00:00"}})
    assert response.status_code == 400
    assert "time zone" in response.json()["message"]


def test_expires_at_not_allowed_on_default_or_parent_branches(
    jambo_emulator: JamboEmulator, api: httpx.Client, project: dict[str, Any]
) -> None:
    pid, main = project["project"]["id"], project["branch"]["id"]
    soon = _iso(jambo_emulator, 3600)
    on_default = api.patch(f"/projects/{pid}/branches/{main}", json={"branch": {"expires_at": soon}})
    assert on_default.status_code == 400
    assert "default branch" in on_default.json()["message"]
    parent = create_branch(api, pid, name="parent")["branch"]["id"]
    create_branch(api, pid, name="child", parent_id=parent)
    on_parent = api.patch(f"/projects/{pid}/branches/{parent}", json={"branch": {"expires_at": soon}})
    assert on_parent.status_code == 400
    assert "children" in on_parent.json()["message"]
    expiring = create_branch(api, pid, name="expiring", expires_at=soon)["branch"]["id"]
    child_of_expiring = api.post(f"/projects/{pid}/branches", json={"branch": {"parent_id": expiring}})
    assert child_of_expiring.status_code == 400


def test_update_sets_and_clears_expires_at(
    jambo_emulator: JamboEmulator, api: httpx.Client, project: dict[str, Any]
) -> None:
    pid = project["project"]["id"]
    bid = create_branch(api, pid, name="ttl")["branch"]["id"]
    later = _iso(jambo_emulator, 7200)
    updated = api.patch(f"/projects/{pid}/branches/{bid}", json={"branch": {"expires_at": later}})
    assert updated.status_code == 200
    assert updated.json()["branch"]["expires_at"] == later
    assert updated.json()["branch"]["ttl_interval_seconds"] == 7200
    assert updated.json()["operations"] == []
    cleared = api.patch(f"/projects/{pid}/branches/{bid}", json={"branch": {"expires_at": None}})
    assert "expires_at" not in cleared.json()["branch"]
    assert "ttl_interval_seconds" not in cleared.json()["branch"]


def test_null_for_a_non_nullable_field_is_400(api: httpx.Client, project: dict[str, Any]) -> None:
    pid, main = project["project"]["id"], project["branch"]["id"]
    response = api.patch(f"/projects/{pid}/branches/{main}", json={"branch": {"name": None}})
    assert response.status_code == 400
    assert "name" in response.json()["message"]


def test_sweeper_deletes_expired_branches_with_their_endpoints(
    jambo_emulator: JamboEmulator, api: httpx.Client, project: dict[str, Any]
) -> None:
    pid = project["project"]["id"]
    created = create_branch(
        api, pid, name="short-lived", expires_at=_iso(jambo_emulator, 600), endpoints=[{"type": "read_write"}]
    )
    bid, eid = created["branch"]["id"], created["endpoints"][0]["id"]
    jambo_emulator.advance(599)
    assert api.get(f"/projects/{pid}/branches/{bid}").status_code == 200
    jambo_emulator.advance(2)  # the background job runs on advance, as it does every interval
    assert api.get(f"/projects/{pid}/branches/{bid}").status_code == 404
    assert api.get(f"/projects/{pid}/endpoints/{eid}").status_code == 404
    actions = [op["action"] for op in api.get(f"/projects/{pid}/operations").json()["operations"][:2]]
    assert actions == ["delete_timeline", "suspend_compute"]


def test_reset_from_parent_and_ttl_restart(
    jambo_emulator: JamboEmulator, api: httpx.Client, project: dict[str, Any]
) -> None:
    pid, main = project["project"]["id"], project["branch"]["id"]
    created = create_branch(api, pid, name="dev", expires_at=_iso(jambo_emulator, 3600))
    bid = created["branch"]["id"]
    jambo_emulator.advance(1800)
    response = api.post(f"/projects/{pid}/branches/{bid}/restore", json={"source_branch_id": main})
    assert response.status_code == 200
    body = response.json()
    assert body["branch"]["current_state"] == "resetting"
    assert body["branch"]["expires_at"] == _iso(jambo_emulator, 3600)  # the clock restarted
    assert "last_reset_at" in body["branch"]
    assert [op["action"] for op in body["operations"]] == ["create_branch"]
    assert api.get(f"/projects/{pid}/branches/{bid}").json()["branch"]["current_state"] == "ready"


def test_restore_with_preserve_under_name_keeps_old_state_and_moves_children(
    api: httpx.Client, project: dict[str, Any]
) -> None:
    pid, main = project["project"]["id"], project["branch"]["id"]
    bid = create_branch(api, pid, name="dev")["branch"]["id"]
    child = create_branch(api, pid, name="dev-child", parent_id=bid)["branch"]["id"]
    refused = api.post(f"/projects/{pid}/branches/{bid}/restore", json={"source_branch_id": main})
    assert refused.status_code == 400
    assert "preserve_under_name" in refused.json()["message"]
    response = api.post(
        f"/projects/{pid}/branches/{bid}/restore",
        json={"source_branch_id": main, "preserve_under_name": "dev-before-reset"},
    )
    assert response.status_code == 200
    branches = {b["name"]: b for b in api.get(f"/projects/{pid}/branches").json()["branches"]}
    backup = branches["dev-before-reset"]
    assert branches["dev"]["id"] == bid  # the restored branch keeps its id
    assert backup["id"] != bid
    assert branches["dev-child"]["parent_id"] == backup["id"]
    # "The backup becomes the parent of your original branch" (a rollback is a reset from it).
    assert branches["dev"]["parent_id"] == backup["id"]
    assert backup["parent_id"] == main
    assert api.get(f"/projects/{pid}/branches/{child}").json()["branch"]["parent_id"] == backup["id"]


def test_restore_onto_itself_needs_a_point_and_preserve(api: httpx.Client, project: dict[str, Any]) -> None:
    pid = project["project"]["id"]
    bid = create_branch(api, pid, name="dev")["branch"]["id"]
    no_point = api.post(f"/projects/{pid}/branches/{bid}/restore", json={"source_branch_id": bid})
    assert no_point.status_code == 400
    no_name = api.post(
        f"/projects/{pid}/branches/{bid}/restore", json={"source_branch_id": bid, "source_lsn": "0/1000000"}
    )
    assert no_name.status_code == 400
    assert "preserve_under_name" in no_name.json()["message"]
    ok = api.post(
        f"/projects/{pid}/branches/{bid}/restore",
        json={"source_branch_id": bid, "source_lsn": "0/1000000", "preserve_under_name": "dev-old"},
    )
    assert ok.status_code == 200


def test_set_as_default_moves_the_flag(api: httpx.Client, project: dict[str, Any]) -> None:
    pid, main = project["project"]["id"], project["branch"]["id"]
    bid = create_branch(api, pid, name="next")["branch"]["id"]
    response = api.post(f"/projects/{pid}/branches/{bid}/set_as_default")
    assert response.status_code == 200
    assert response.json()["branch"]["default"] is True
    assert api.get(f"/projects/{pid}/branches/{main}").json()["branch"]["default"] is False
    assert api.delete(f"/projects/{pid}/branches/{bid}").status_code == 400


def test_count_and_search(api: httpx.Client, project: dict[str, Any]) -> None:
    pid = project["project"]["id"]
    for name in ("feature-a", "feature-b", "hotfix"):
        create_branch(api, pid, name=name)
    assert api.get(f"/projects/{pid}/branches/count").json() == {"count": 4}
    assert api.get(f"/projects/{pid}/branches/count", params={"search": "feat"}).json() == {"count": 2}
    found = api.get(f"/projects/{pid}/branches", params={"search": "hot"}).json()["branches"]
    assert [b["name"] for b in found] == ["hotfix"]


@pytest.mark.parametrize(
    ("sort_by", "sort_order"), [("name", "asc"), ("created_at", "desc"), ("updated_at", "desc")]
)
def test_branch_pagination_across_pages(
    api: httpx.Client, project: dict[str, Any], sort_by: str, sort_order: str
) -> None:
    pid = project["project"]["id"]
    for index in range(6):
        create_branch(api, pid, name=f"b-{index}")
    full = api.get(f"/projects/{pid}/branches", params={"sort_by": sort_by, "sort_order": sort_order}).json()
    assert "next" not in full["pagination"]
    assert full["pagination"]["sort_order"] == sort_order.upper()
    expected = [b["id"] for b in full["branches"]]
    assert len(expected) == 7
    seen: list[str] = []
    params: dict[str, Any] = {"sort_by": sort_by, "sort_order": sort_order, "limit": 3}
    pages = 0
    while True:
        body = api.get(f"/projects/{pid}/branches", params=params).json()
        pages += 1
        seen += [b["id"] for b in body["branches"]]
        if "next" not in body["pagination"]:
            break
        params["cursor"] = body["pagination"]["next"]
    assert pages == 3
    assert seen == expected
    if sort_by == "name":
        assert [b["name"] for b in full["branches"]] == sorted(b["name"] for b in full["branches"])


def test_bad_cursor_is_400(api: httpx.Client, project: dict[str, Any]) -> None:
    response = api.get(f"/projects/{project['project']['id']}/branches", params={"cursor": "garbage!"})
    assert response.status_code == 400
    assert "cursor" in response.json()["message"]


def test_annotations_round_trip(api: httpx.Client, project: dict[str, Any]) -> None:
    pid = project["project"]["id"]
    response = api.post(
        f"/projects/{pid}/branches", json={"branch": {"name": "ci"}, "annotation_value": {"commit": "abc123"}}
    )
    bid = response.json()["branch"]["id"]
    got = api.get(f"/projects/{pid}/branches/{bid}").json()
    assert got["annotation"]["value"] == {"commit": "abc123"}
    listed = api.get(f"/projects/{pid}/branches").json()
    assert listed["annotations"][bid]["value"] == {"commit": "abc123"}


def test_schema_and_compare_schema(api: httpx.Client, project: dict[str, Any]) -> None:
    pid, main = project["project"]["id"], project["branch"]["id"]
    bid = create_branch(api, pid, name="dev")["branch"]["id"]
    sql = api.get(f"/projects/{pid}/branches/{bid}/schema", params={"db_name": "neondb"}).json()["sql"]
    assert "PostgreSQL database dump" in sql
    missing = api.get(f"/projects/{pid}/branches/{bid}/schema")
    assert missing.status_code == 400
    assert "db_name" in missing.json()["message"]
    both = api.get(
        f"/projects/{pid}/branches/{bid}/schema",
        params={"db_name": "neondb", "lsn": "0/1", "timestamp": "2026-01-01T00:00:00Z"},
    )
    assert both.status_code == 400
    diff = api.get(f"/projects/{pid}/branches/{bid}/compare_schema", params={"db_name": "neondb"})
    assert diff.json() == {"diff": ""}
    no_parent = api.get(f"/projects/{pid}/branches/{main}/compare_schema", params={"db_name": "neondb"})
    assert no_parent.status_code == 400


def test_background_sweeper_runs_without_requests() -> None:
    """The server's own job deletes expired branches (here: every 50 ms, clock jumped by an hour)."""
    config = EmulatorConfig(api_keys=["k"], operation_duration=0.0, sweep_interval=0.05)
    with JamboEmulator(config=config, data_plane="off") as emu, emu.client() as client:
        pid = client.post("/projects", json={"project": {}}).json()["project"]["id"]
        client.get(f"/projects/{pid}")  # bootstrap operations finish
        bid = create_branch(client, pid, name="ttl", expires_at=_iso(emu, 600))["branch"]["id"]
        emu.ctx.clock.advance(3600)  # no tick: only the background job can notice
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and bid in emu.ctx.store.projects[pid].branches:
            time.sleep(0.05)
        assert bid not in emu.ctx.store.projects[pid].branches
        assert client.get(f"/projects/{pid}/branches/{bid}").status_code == 404


def test_branch_created_archived(api: httpx.Client, project: dict[str, Any]) -> None:
    pid = project["project"]["id"]
    created = create_branch(api, pid, name="cold", archived=True)
    assert created["branch"]["pending_state"] == "archived"
    got = api.get(f"/projects/{pid}/branches/{created['branch']['id']}").json()["branch"]
    assert got["current_state"] == "archived"
    with_compute = api.post(
        f"/projects/{pid}/branches",
        json={"branch": {"archived": True}, "endpoints": [{"type": "read_write"}]},
    )
    assert with_compute.status_code == 400


def test_schema_of_a_branch_not_ready_yet_is_422(
    jambo_emulator: JamboEmulator, api: httpx.Client, project: dict[str, Any]
) -> None:
    pid, main = project["project"]["id"], project["branch"]["id"]
    jambo_emulator.set_operation_durations(default=5.0)  # the manual clock stands still meanwhile
    bid = create_branch(api, pid, name="copying")["branch"]["id"]
    params = {"db_name": "neondb"}
    for path in (f"/projects/{pid}/branches/{bid}/schema", f"/projects/{pid}/branches/{bid}/compare_schema"):
        response = api.get(path, params=params)
        assert response.status_code == 422, path
        assert response.json()["message"] == "branch not ready yet"
    # The parent is ready, but a comparison needs both sides.
    as_base = api.get(
        f"/projects/{pid}/branches/{main}/compare_schema", params={**params, "base_branch_id": bid}
    )
    assert as_base.status_code == 422
    assert api.get(f"/projects/{pid}/branches/{bid}/schema", params={"db_name": "nope"}).status_code == 404
    jambo_emulator.advance(5)
    assert api.get(f"/projects/{pid}/branches/{bid}/schema", params=params).status_code == 200
    assert api.get(f"/projects/{pid}/branches/{bid}/compare_schema", params=params).json() == {"diff": ""}
    restore = api.post(f"/projects/{pid}/branches/{bid}/restore", json={"source_branch_id": main})
    assert restore.status_code == 200, restore.text
    assert restore.json()["branch"]["current_state"] == "resetting"
    assert api.get(f"/projects/{pid}/branches/{bid}/schema", params=params).status_code == 422
    jambo_emulator.advance(5)
    assert api.get(f"/projects/{pid}/branches/{bid}/schema", params=params).status_code == 200
