"""Rate limits (429), injected faults, and the request log."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
from emulator_helpers import create_branch

from jambo_emulator import EmulatorConfig, JamboEmulator

BRANCHES = "/projects/{project_id}/branches"


def test_per_route_limit_gives_429_without_retry_after(api: httpx.Client, project: dict[str, Any]) -> None:
    pid = project["project"]["id"]
    statuses = [api.get(f"/projects/{pid}").status_code for _ in range(45)]
    assert statuses[:40] == [200] * 40
    assert 429 in statuses[40:]
    limited = api.get(f"/projects/{pid}")
    assert limited.status_code == 429
    assert "retry-after" not in limited.headers
    assert limited.json()["message"].startswith("rate limit exceeded")
    # Another route has its own per-second budget.
    assert api.get(f"/projects/{pid}/branches").status_code == 200


def test_rate_limits_can_be_switched_off(
    jambo_emulator: JamboEmulator, api: httpx.Client, project: dict[str, Any]
) -> None:
    jambo_emulator.set_rate_limits(enabled=False)
    pid = project["project"]["id"]
    assert {api.get(f"/projects/{pid}").status_code for _ in range(60)} == {200}


def test_per_minute_budget_per_key() -> None:
    config = EmulatorConfig(
        api_keys=["k1", "k2"], deterministic=True, operation_duration=0, rate_limit_per_minute=5
    )
    with JamboEmulator(config=config, data_plane="off") as emu:
        paths = ["/projects", "/regions", "/users/me", "/api_keys", "/projects", "/regions"]
        with httpx.Client(base_url=emu.base_url, headers={"Authorization": "Bearer k1"}) as k1:
            assert [k1.get(p).status_code for p in paths] == [200] * 5 + [429]
        with httpx.Client(base_url=emu.base_url, headers={"Authorization": "Bearer k2"}) as k2:
            assert k2.get("/projects").status_code == 200  # budgets are per key


def test_fault_sequence_plays_in_order_then_stops(
    jambo_emulator: JamboEmulator, api: httpx.Client, project: dict[str, Any]
) -> None:
    pid = project["project"]["id"]
    jambo_emulator.inject_fault(
        "GET",
        "/projects/{project_id}",
        faults=[
            {"kind": "status", "status": 503},
            {"kind": "rate_limit", "retry_after": "2"},
            {"kind": "pass"},
            {"kind": "locked"},
            {"kind": "status", "status": 524},
        ],
    )
    responses = [api.get(f"/projects/{pid}") for _ in range(6)]
    assert [r.status_code for r in responses] == [503, 429, 200, 423, 524, 200]
    assert responses[1].headers["retry-after"] == "2"
    assert responses[3].json()["message"].startswith("project already has running conflicting operations")
    assert set(responses[0].json()) == {"code", "message", "request_id"}
    # Other routes and methods are untouched.
    assert jambo_emulator.ctx.faults.rules() == []


def test_branch_not_ready_is_injectable_as_422(
    jambo_emulator: JamboEmulator, api: httpx.Client, project: dict[str, Any]
) -> None:
    pid, bid = project["project"]["id"], project["branch"]["id"]
    route = "/projects/{project_id}/branches/{branch_id}/roles/{role_name}/reveal_password"
    jambo_emulator.inject_fault("GET", route, faults=[{"kind": "status", "status": 422}])
    path = f"/projects/{pid}/branches/{bid}/roles/neondb_owner/reveal_password"
    refused, revealed = api.get(path), api.get(path)
    assert refused.status_code == 422
    assert refused.json()["message"] == "branch not ready yet"
    assert refused.json()["request_id"] == refused.headers["x-neon-ret-request-id"]
    assert revealed.status_code == 200
    assert revealed.json()["password"]


def test_fault_times_repeats_the_sequence(
    jambo_emulator: JamboEmulator, api: httpx.Client, project: dict[str, Any]
) -> None:
    pid = project["project"]["id"]
    jambo_emulator.inject_fault(
        "GET", "/projects/{project_id}", faults=[{"kind": "status", "status": 500}], times=2
    )
    assert [api.get(f"/projects/{pid}").status_code for _ in range(3)] == [500, 500, 200]


def test_probability_faults_are_seeded(jambo_emulator: JamboEmulator, project: dict[str, Any]) -> None:
    pid = project["project"]["id"]
    jambo_emulator.set_rate_limits(enabled=False)

    def run() -> list[int]:
        jambo_emulator.ctx.faults.reseed(7)
        jambo_emulator.clear_faults()
        jambo_emulator.inject_fault(
            "GET", "/projects/{project_id}", faults=[{"kind": "status", "status": 502}], probability=0.5
        )
        with jambo_emulator.client() as client:
            return [client.get(f"/projects/{pid}").status_code for _ in range(30)]

    first, second = run(), run()
    assert first == second
    assert set(first) == {200, 502}


def test_drop_after_apply_applies_the_change_but_the_client_sees_a_transport_error(
    jambo_emulator: JamboEmulator, api: httpx.Client, project: dict[str, Any]
) -> None:
    pid = project["project"]["id"]
    jambo_emulator.inject_fault("POST", BRANCHES, faults=[{"kind": "drop_after_apply"}], times=1)
    with pytest.raises(httpx.TransportError):
        api.post(f"/projects/{pid}/branches", json={"branch": {"name": "ghost"}})
    names = [b["name"] for b in api.get(f"/projects/{pid}/branches").json()["branches"]]
    assert "ghost" in names
    logged = [r for r in jambo_emulator.requests() if r["method"] == "POST" and r["route"] == BRANCHES]
    assert logged[-1]["dropped"] is True
    assert logged[-1]["status"] == 201


def test_latency_fault_then_normal_handling(
    jambo_emulator: JamboEmulator, api: httpx.Client, project: dict[str, Any]
) -> None:
    pid = project["project"]["id"]
    jambo_emulator.inject_fault(
        "GET", "/projects/{project_id}", faults=[{"kind": "latency", "seconds": 0.05}]
    )
    delayed = api.get(f"/projects/{pid}")
    assert delayed.status_code == 200
    assert delayed.json()["project"]["id"] == pid
    entry = [r for r in jambo_emulator.requests() if r["route"] == "/projects/{project_id}"][-1]
    assert entry["status"] == 200
    assert jambo_emulator.ctx.faults.rules() == []  # one delay, then normal handling


def test_a_create_the_client_gave_up_on_during_latency_is_still_applied(
    jambo_emulator: JamboEmulator, project: dict[str, Any]
) -> None:
    """A client timing out during a slow request does not undo it: the late create happens."""
    pid = project["project"]["id"]
    jambo_emulator.inject_fault("POST", BRANCHES, faults=[{"kind": "latency", "seconds": 1.0}])
    with jambo_emulator.client() as impatient, pytest.raises(httpx.ReadTimeout):
        impatient.post(f"/projects/{pid}/branches", json={"branch": {"name": "late"}}, timeout=0.1)
    with jambo_emulator.client() as client:
        for _ in range(100):
            names = [b["name"] for b in client.get(f"/projects/{pid}/branches").json()["branches"]]
            if "late" in names:
                break
            time.sleep(0.05)
    assert "late" in names


def test_a_probability_rule_that_does_not_fire_leaves_later_rules_their_chance(
    jambo_emulator: JamboEmulator, api: httpx.Client, project: dict[str, Any]
) -> None:
    pid = project["project"]["id"]
    route = "/projects/{project_id}"
    jambo_emulator.inject_fault("GET", route, faults=[{"kind": "status", "status": 500}], probability=0.0)
    jambo_emulator.inject_fault("GET", route, faults=[{"kind": "status", "status": 503}], probability=1.0)
    assert [api.get(f"/projects/{pid}").status_code for _ in range(3)] == [503, 503, 503]


def test_invalid_fault_specs_are_rejected(jambo_emulator: JamboEmulator) -> None:
    with pytest.raises(ValueError, match="kind"):
        jambo_emulator.inject_fault("GET", "/projects", faults=[{"kind": "explode"}])
    with pytest.raises(ValueError, match="status"):
        jambo_emulator.inject_fault("GET", "/projects", faults=[{"kind": "status", "status": 418}])
    with pytest.raises(ValueError, match="probability"):
        jambo_emulator.inject_fault("GET", "/projects", faults=[{"kind": "pass"}], probability=2)


def test_request_log_records_method_path_route_status_duration(
    jambo_emulator: JamboEmulator, api: httpx.Client, project: dict[str, Any]
) -> None:
    pid = project["project"]["id"]
    jambo_emulator.clear_requests()
    create_branch(api, pid, name="logged")
    api.get(f"/projects/{pid}/branches/br-missing-a5000000")
    entries = jambo_emulator.requests()
    assert [(e["method"], e["route"], e["status"]) for e in entries] == [
        ("POST", BRANCHES, 201),
        ("GET", "/projects/{project_id}/branches/{branch_id}", 404),
    ]
    assert entries[1]["path"] == f"/api/v2/projects/{pid}/branches/br-missing-a5000000"
    assert all(e["duration_ms"] >= 0 and e["request_id"] for e in entries)
    jambo_emulator.clear_requests()
    assert jambo_emulator.requests() == []
