"""Endpoints: one read_write per branch, start/suspend/restart state machine, updates, deletes."""

from __future__ import annotations

from typing import Any

import httpx
from emulator_helpers import create_branch, op_statuses

from jambo_emulator import JamboEmulator


def _endpoint(api: httpx.Client, pid: str, eid: str) -> dict[str, Any]:
    body: dict[str, Any] = api.get(f"/projects/{pid}/endpoints/{eid}").json()["endpoint"]
    return body


def test_one_read_write_endpoint_per_branch(api: httpx.Client, project: dict[str, Any]) -> None:
    pid, main = project["project"]["id"], project["branch"]["id"]
    again = api.post(
        f"/projects/{pid}/endpoints", json={"endpoint": {"branch_id": main, "type": "read_write"}}
    )
    assert again.status_code == 409
    assert again.json()["message"] == "read-write endpoint already exists"
    read_only = api.post(
        f"/projects/{pid}/endpoints", json={"endpoint": {"branch_id": main, "type": "read_only"}}
    )
    assert read_only.status_code == 201
    assert read_only.json()["endpoint"]["type"] == "read_only"
    assert [op["action"] for op in read_only.json()["operations"]] == ["start_compute"]
    two = api.post(
        f"/projects/{pid}/branches", json={"endpoints": [{"type": "read_write"}, {"type": "read_write"}]}
    )
    assert two.status_code == 400
    listed = api.get(f"/projects/{pid}/branches/{main}/endpoints").json()["endpoints"]
    assert sorted(e["type"] for e in listed) == ["read_only", "read_write"]


def test_suspend_start_restart_state_machine(
    jambo_emulator: JamboEmulator, api: httpx.Client, project: dict[str, Any]
) -> None:
    pid = project["project"]["id"]
    eid = project["endpoints"][0]["id"]
    assert _endpoint(api, pid, eid)["current_state"] == "active"
    jambo_emulator.set_operation_durations(default=4.0)
    suspended = api.post(f"/projects/{pid}/endpoints/{eid}/suspend")
    assert suspended.status_code == 200
    assert suspended.json()["endpoint"]["pending_state"] == "idle"
    assert [op["action"] for op in suspended.json()["operations"]] == ["suspend_compute"]
    # While the suspend is in flight: a second suspend is refused as the real service does.
    transitive = api.post(f"/projects/{pid}/endpoints/{eid}/suspend")
    assert transitive.status_code == 423
    assert transitive.json()["message"] == "endpoint is in some transitive state, could not suspend"
    jambo_emulator.advance(4)
    idle = _endpoint(api, pid, eid)
    assert idle["current_state"] == "idle"
    assert "suspended_at" in idle
    started = api.post(f"/projects/{pid}/endpoints/{eid}/start").json()
    assert started["endpoint"]["pending_state"] == "active"
    jambo_emulator.advance(4)
    assert _endpoint(api, pid, eid)["current_state"] == "active"
    restarted = api.post(f"/projects/{pid}/endpoints/{eid}/restart").json()
    assert [op["action"] for op in restarted["operations"]] == ["suspend_compute", "start_compute"]
    jambo_emulator.advance(8)
    assert op_statuses(api, pid, restarted["operations"]) == ["finished", "finished"]
    assert _endpoint(api, pid, eid)["current_state"] == "active"


def test_update_validates_compute_units(api: httpx.Client, project: dict[str, Any]) -> None:
    pid, eid = project["project"]["id"], project["endpoints"][0]["id"]
    ok = api.patch(
        f"/projects/{pid}/endpoints/{eid}",
        json={"endpoint": {"autoscaling_limit_min_cu": 1, "autoscaling_limit_max_cu": 4}},
    )
    assert ok.status_code == 200
    assert ok.json()["endpoint"]["autoscaling_limit_max_cu"] == 4
    assert [op["action"] for op in ok.json()["operations"]] == ["apply_config"]
    too_wide = api.patch(
        f"/projects/{pid}/endpoints/{eid}",
        json={"endpoint": {"autoscaling_limit_min_cu": 0.25, "autoscaling_limit_max_cu": 10}},
    )
    assert too_wide.status_code == 400
    assert "at most 8" in too_wide.json()["message"]
    too_big = api.patch(
        f"/projects/{pid}/endpoints/{eid}", json={"endpoint": {"autoscaling_limit_max_cu": 17}}
    )
    assert too_big.status_code == 400
    below_min = api.patch(
        f"/projects/{pid}/endpoints/{eid}", json={"endpoint": {"autoscaling_limit_min_cu": 0.1}}
    )
    assert below_min.status_code == 400
    assert "autoscaling_limit_min_cu" in below_min.json()["message"]


def test_delete_endpoint_then_204(api: httpx.Client, project: dict[str, Any]) -> None:
    pid = project["project"]["id"]
    created = create_branch(api, pid, name="dev", endpoints=[{"type": "read_write"}])
    eid = created["endpoints"][0]["id"]
    api.get(f"/projects/{pid}")
    deleted = api.delete(f"/projects/{pid}/endpoints/{eid}")
    assert deleted.status_code == 200
    assert deleted.json()["endpoint"]["id"] == eid
    assert api.get(f"/projects/{pid}/endpoints/{eid}").status_code == 404
    assert api.delete(f"/projects/{pid}/endpoints/{eid}").status_code == 204


def test_endpoint_on_unknown_branch_or_region(api: httpx.Client, project: dict[str, Any]) -> None:
    pid, main = project["project"]["id"], project["branch"]["id"]
    missing = api.post(
        f"/projects/{pid}/endpoints", json={"endpoint": {"branch_id": "br-nope", "type": "read_only"}}
    )
    assert missing.status_code == 404
    wrong_region = api.post(
        f"/projects/{pid}/endpoints",
        json={"endpoint": {"branch_id": main, "type": "read_only", "region_id": "aws-eu-central-1"}},
    )
    assert wrong_region.status_code == 400
    assert "region_id" in wrong_region.json()["message"]
    bad_type = api.post(
        f"/projects/{pid}/endpoints", json={"endpoint": {"branch_id": main, "type": "writer"}}
    )
    assert bad_type.status_code == 400
    assert "endpoint.type" in bad_type.json()["message"]


def test_inactive_compute_is_suspended_after_its_timeout(
    jambo_emulator: JamboEmulator, api: httpx.Client, project: dict[str, Any]
) -> None:
    pid = project["project"]["id"]
    default_timeout = project["endpoints"][0]["id"]  # suspend_timeout_seconds 0: the service default, 300 s
    never = api.post(
        f"/projects/{pid}/endpoints",
        json={
            "endpoint": {
                "branch_id": project["branch"]["id"],
                "type": "read_only",
                "suspend_timeout_seconds": -1,
            }
        },
    ).json()["endpoint"]["id"]
    short = create_branch(
        api, pid, name="short", endpoints=[{"type": "read_write", "suspend_timeout_seconds": 60}]
    )["endpoints"][0]["id"]
    api.get(f"/projects/{pid}")  # everything started
    jambo_emulator.advance(61)
    assert _endpoint(api, pid, short)["current_state"] == "idle"
    assert _endpoint(api, pid, default_timeout)["current_state"] == "active"
    jambo_emulator.advance(240)
    assert _endpoint(api, pid, default_timeout)["current_state"] == "idle"
    assert _endpoint(api, pid, never)["current_state"] == "active"
    assert api.get(f"/projects/{pid}/operations").json()["operations"][0]["action"] == "suspend_compute"


def test_moving_a_running_endpoint_restarts_it_on_the_new_branch(
    api: httpx.Client, project: dict[str, Any]
) -> None:
    pid = project["project"]["id"]
    created = create_branch(api, pid, name="old-home", endpoints=[{"type": "read_write"}])
    eid = created["endpoints"][0]["id"]
    target = create_branch(api, pid, name="new-home")["branch"]["id"]
    moved = api.patch(f"/projects/{pid}/endpoints/{eid}", json={"endpoint": {"branch_id": target}})
    assert moved.status_code == 200
    assert moved.json()["endpoint"]["branch_id"] == target
    assert [op["action"] for op in moved.json()["operations"]] == ["suspend_compute", "start_compute"]
    assert op_statuses(api, pid, moved.json()["operations"]) == ["finished", "finished"]
    assert _endpoint(api, pid, eid)["current_state"] == "active"
    listed = api.get(f"/projects/{pid}/branches/{target}/endpoints").json()["endpoints"]
    assert [e["id"] for e in listed] == [eid]
    taken = api.patch(
        f"/projects/{pid}/endpoints/{project['endpoints'][0]['id']}", json={"endpoint": {"branch_id": target}}
    )
    assert taken.status_code == 409
