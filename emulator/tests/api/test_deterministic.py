"""Deterministic mode: seeded ids, a manual clock, and reset giving the same ids again."""

from __future__ import annotations

from typing import Any

import httpx

from jambo_emulator import JamboEmulator


def _ids(emu: JamboEmulator) -> list[str]:
    body = emu.create_project(name="det")
    with emu.client() as client:
        branch = client.post(
            f"/projects/{body['project']['id']}/branches", json={"endpoints": [{"type": "read_write"}]}
        ).json()
    return [
        body["project"]["id"],
        body["branch"]["id"],
        body["endpoints"][0]["id"],
        body["roles"][0]["password"],
        *(op["id"] for op in body["operations"]),
        branch["branch"]["id"],
        branch["endpoints"][0]["id"],
    ]


def test_same_seed_same_ids_and_reset_repeats_them() -> None:
    with JamboEmulator(api_key="k", deterministic=True, seed=3, data_plane="off") as first:
        ids = _ids(first)
        first.reset()
        assert _ids(first) == ids
    with JamboEmulator(api_key="k", deterministic=True, seed=3, data_plane="off") as second:
        assert _ids(second) == ids
    with JamboEmulator(api_key="k", deterministic=True, seed=4, data_plane="off") as other:
        assert _ids(other) != ids


def test_manual_clock_stands_still_until_advanced(jambo_emulator: JamboEmulator) -> None:
    jambo_emulator.set_operation_durations(default=1.0)
    body = jambo_emulator.create_project(name="clock")
    pid, op_id = body["project"]["id"], body["operations"][0]["id"]
    with jambo_emulator.client() as client:

        def status() -> Any:
            return client.get(f"/projects/{pid}/operations/{op_id}").json()["operation"]["status"]

        assert status() == "scheduling"
        jambo_emulator.advance(0.5)
        assert status() == "running"
        jambo_emulator.advance(0.5)
        assert status() == "finished"
        finished = client.get(f"/projects/{pid}/operations/{op_id}").json()["operation"]
        assert finished["total_duration_ms"] == 1000


def test_fixture_gives_a_fresh_emulator(jambo_emulator: JamboEmulator) -> None:
    with httpx.Client(
        base_url=jambo_emulator.base_url, headers={"Authorization": f"Bearer {jambo_emulator.api_key}"}
    ) as c:
        assert c.get("/projects").json()["projects"] == []
    assert jambo_emulator.requests()[-1]["route"] == "/projects"
