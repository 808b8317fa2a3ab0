"""The HTTP control API under /_emulator drives the same controls as the Python methods."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from jambo_emulator import JamboEmulator


@pytest.fixture
def control(jambo_emulator: JamboEmulator) -> Any:
    with httpx.Client(base_url=jambo_emulator.control_url) as client:
        yield client


def test_health_and_config(control: httpx.Client) -> None:
    assert control.get("/health").json() == {"status": "ok"}
    config = control.get("/config").json()
    assert config["deterministic"] is True
    assert config["rate_limits"] is True
    assert config["lock_rule"] is True
    assert config["operation_durations"] == {"default": 0.0}


def test_durations_clock_and_outcomes(
    jambo_emulator: JamboEmulator, control: httpx.Client, api: httpx.Client, project: dict[str, Any]
) -> None:
    pid = project["project"]["id"]
    assert control.put("/operation_durations", json={"default": 3, "create_branch": 6}).json() == {
        "default": 3,
        "create_branch": 6,
    }
    assert control.put("/operation_durations", json={"default": -1}).status_code == 400
    assert control.post(
        "/operation_outcomes", json={"action": "create_branch", "outcome": "error"}
    ).json() == {"create_branch": ["error"]}
    assert control.post("/operation_outcomes", json={"action": "x", "outcome": "boom"}).status_code == 400
    op = api.post(f"/projects/{pid}/branches", json={}).json()["operations"][0]
    before = control.get("/clock").json()
    assert before["manual"] is True
    advanced = control.post("/clock/advance", json={"seconds": 6}).json()
    assert advanced["epoch"] == before["epoch"] + 6
    assert api.get(f"/projects/{pid}/operations/{op['id']}").json()["operation"]["status"] == "error"


def test_switches_faults_requests_and_reset(
    jambo_emulator: JamboEmulator, control: httpx.Client, api: httpx.Client, project: dict[str, Any]
) -> None:
    pid = project["project"]["id"]
    assert control.put("/rate_limits", json={"enabled": False}).json() == {"enabled": False}
    assert control.put("/lock_rule", json={"enabled": "no"}).status_code == 400
    assert control.put("/lock_rule", json={"enabled": False}).status_code == 200
    assert jambo_emulator.ctx.rate_limits_enabled is False
    assert jambo_emulator.ctx.lock_rule_enabled is False
    rule = control.post(
        "/faults",
        json={
            "method": "GET",
            "route": "/projects/{project_id}",
            "faults": [{"kind": "status", "status": 502}],
        },
    )
    assert rule.status_code == 201
    assert control.get("/faults").json()["faults"][0]["route"] == "/projects/{project_id}"
    assert api.get(f"/projects/{pid}").status_code == 502
    bad = control.post(
        "/faults", json={"method": "GET", "route": "/projects/{project_id}", "faults": [{"kind": "nope"}]}
    )
    assert bad.status_code == 400
    assert "kind" in bad.json()["message"]
    requests = control.get("/requests").json()["requests"]
    assert [r for r in requests if r["path"].startswith("/api/v2")][-1]["status"] == 502
    assert {"POST", "GET"} <= {r["method"] for r in requests if r["path"] == "/_emulator/faults"}
    assert control.delete("/requests", headers={"Content-Type": "application/json"}).status_code == 200
    assert [(r["method"], r["path"]) for r in control.get("/requests").json()["requests"]] == [
        ("DELETE", "/_emulator/requests")
    ]
    assert control.post("/reset", json={}).json() == {"reset": True}
    assert api.get(f"/projects/{pid}").status_code == 404
    assert control.get("/config").json()["rate_limits"] is True


def test_add_project_scoped_key_over_http(control: httpx.Client, jambo_emulator: JamboEmulator) -> None:
    pid = jambo_emulator.create_project(name="p")["project"]["id"]
    created = control.post("/api_keys", json={"key": "scoped", "project_id": pid})
    assert created.status_code == 201
    assert control.post("/api_keys", json={"project_id": "no-such"}).status_code == 400
    with httpx.Client(base_url=jambo_emulator.base_url, headers={"Authorization": "Bearer scoped"}) as client:
        assert [p["id"] for p in client.get("/projects").json()["projects"]] == [pid]


def test_operation_times_are_exact_where_the_api_writes_whole_seconds(
    control: httpx.Client, api: httpx.Client, project: dict[str, Any]
) -> None:
    pid = project["project"]["id"]
    control.put("/operation_durations", json={"default": 1.25})
    made = api.post(f"/projects/{pid}/branches", json={"endpoints": [{"type": "read_write"}]}).json()
    ids = [op["id"] for op in made["operations"]]
    in_flight = {
        o["id"]: o for o in control.get("/operation_times", params={"project_id": pid}).json()["operations"]
    }
    assert [in_flight[i]["finished_at"] for i in ids] == [None, None]
    control.post("/clock/advance", json={"seconds": 5})
    times = {
        o["id"]: o for o in control.get("/operation_times", params={"project_id": pid}).json()["operations"]
    }
    create, start = (times[i] for i in ids)
    assert (create["action"], start["action"]) == ("create_branch", "start_compute")
    # start_compute runs after create_branch: each takes its 1.25 s, to the fraction of a second.
    assert create["finished_at"] - create["created_at"] == pytest.approx(1.25)
    assert start["finished_at"] - create["created_at"] == pytest.approx(2.5)
    assert control.get("/operation_times", params={"project_id": "no-such"}).status_code == 400


def _spans(control: httpx.Client, api: httpx.Client, pid: str, n: int) -> list[float]:
    """Create ``n`` branches one after another (each alone in flight) and return their create spans."""
    for _ in range(n):
        api.post(f"/projects/{pid}/branches", json={})
        control.post("/clock/advance", json={"seconds": 10})
    ops = control.get("/operation_times", params={"project_id": pid}).json()["operations"]
    return [o["finished_at"] - o["created_at"] for o in ops if o["action"] == "create_branch"][-n:]


def test_duration_spread_is_drawn_within_bounds_and_repeats_after_reset(
    control: httpx.Client, api: httpx.Client, project: dict[str, Any]
) -> None:
    assert control.put("/operation_duration_spread", json={"spread": 1.5}).status_code == 400
    assert control.put("/operation_duration_spread", json={"spread": 0.5, "seed": "x"}).status_code == 400
    control.put("/operation_durations", json={"default": 2})
    assert control.put("/operation_duration_spread", json={"spread": 0.5, "seed": 7}).json() == {
        "spread": 0.5,
        "seed": 7,
    }
    assert control.get("/config").json()["operation_duration_spread"] == {"spread": 0.5, "seed": 7}
    first = _spans(control, api, project["project"]["id"], 8)
    assert all(1.0 <= s <= 3.0 for s in first), first
    assert max(first) - min(first) > 0.5, first  # drawn, not the fixed 2 s
    # A reset goes back to exact durations; the same seed again draws the same times.
    control.post("/reset", json={})
    assert control.get("/config").json()["operation_duration_spread"] == {"spread": 0.0, "seed": 0}
    pid = api.post("/projects", json={"project": {"name": "again"}}).json()["project"]["id"]
    control.put("/operation_durations", json={"default": 2})
    control.put("/operation_duration_spread", json={"spread": 0.5, "seed": 7})
    assert _spans(control, api, pid, 8) == pytest.approx(first)
    control.put("/operation_duration_spread", json={"spread": 0})
    assert _spans(control, api, pid, 2) == [pytest.approx(2.0)] * 2
