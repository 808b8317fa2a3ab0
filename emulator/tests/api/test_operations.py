"""Operations: forced outcomes, retries, chains, the 423 rule and pagination of the list."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from emulator_helpers import create_branch, op_statuses

from jambo_emulator import JamboEmulator

LOCKED = "project already has running conflicting operations, scheduling of new ones is prohibited"


def _op(api: httpx.Client, pid: str, op_id: str) -> dict[str, Any]:
    body: dict[str, Any] = api.get(f"/projects/{pid}/operations/{op_id}").json()["operation"]
    return body


@pytest.mark.parametrize("outcome", ["failed", "error"])
def test_forced_failure_ends_the_operation_and_cancels_the_rest_of_its_chain(
    jambo_emulator: JamboEmulator, api: httpx.Client, project: dict[str, Any], outcome: str
) -> None:
    pid = project["project"]["id"]
    jambo_emulator.set_operation_outcome("create_branch", outcome, times=1)
    created = create_branch(api, pid, name="doomed", endpoints=[{"type": "read_write"}])
    first, second = (_op(api, pid, op["id"]) for op in created["operations"])
    assert first["status"] == outcome
    assert first["error"]
    assert first["failures_count"] == 1
    assert second["status"] == "cancelled"
    branch = api.get(f"/projects/{pid}/branches/{created['branch']['id']}").json()["branch"]
    assert branch["current_state"] == "init"  # never became ready
    # The outcome was used up: the next create_branch finishes.
    again = create_branch(api, pid, name="fine")
    assert op_statuses(api, pid, again["operations"]) == ["finished"]


def test_failed_then_finished_is_retried_by_the_service(
    jambo_emulator: JamboEmulator, api: httpx.Client, project: dict[str, Any]
) -> None:
    pid = project["project"]["id"]
    jambo_emulator.set_operation_outcome("create_branch", "failed_then_finished", times=1)
    created = create_branch(api, pid, name="flaky")
    op_id = created["operations"][0]["id"]
    failed = _op(api, pid, op_id)
    assert failed["status"] == "failed"
    assert failed["failures_count"] == 1
    assert "retry_at" in failed
    retried = _op(api, pid, op_id)
    assert retried["status"] == "finished"
    assert retried["failures_count"] == 1
    assert api.get(f"/projects/{pid}/branches/{created['branch']['id']}").json()["branch"][
        "current_state"
    ] == ("ready")


def test_failed_then_finished_with_durations_follows_the_clock(
    jambo_emulator: JamboEmulator, api: httpx.Client, project: dict[str, Any]
) -> None:
    pid = project["project"]["id"]
    jambo_emulator.set_operation_durations(default=2.0)
    jambo_emulator.set_operation_outcome("create_branch", "failed_then_finished")
    op_id = create_branch(api, pid, name="slow-flaky")["operations"][0]["id"]
    jambo_emulator.advance(1)
    assert _op(api, pid, op_id)["status"] == "running"
    jambo_emulator.advance(1)
    assert _op(api, pid, op_id)["status"] == "failed"
    jambo_emulator.advance(2)
    assert _op(api, pid, op_id)["status"] == "running"
    jambo_emulator.advance(2)
    assert _op(api, pid, op_id)["status"] == "finished"


def test_mutation_during_inflight_operation_is_423_with_real_message(
    jambo_emulator: JamboEmulator, api: httpx.Client, project: dict[str, Any]
) -> None:
    pid = project["project"]["id"]
    jambo_emulator.set_operation_durations(default=5.0)
    create_branch(api, pid, name="first")
    second = api.post(f"/projects/{pid}/branches", json={"branch": {"name": "second"}})
    assert second.status_code == 423
    assert second.json()["message"] == LOCKED
    # Reads are not refused, and the branch was not created.
    names = [b["name"] for b in api.get(f"/projects/{pid}/branches").json()["branches"]]
    assert "second" not in names
    jambo_emulator.advance(5)
    assert api.post(f"/projects/{pid}/branches", json={"branch": {"name": "second"}}).status_code == 201


def test_lock_rule_can_be_switched_off(
    jambo_emulator: JamboEmulator, api: httpx.Client, project: dict[str, Any]
) -> None:
    pid = project["project"]["id"]
    jambo_emulator.set_operation_durations(default=5.0)
    jambo_emulator.set_lock_rule(enabled=False)
    create_branch(api, pid, name="first")
    assert api.post(f"/projects/{pid}/branches", json={"branch": {"name": "second"}}).status_code == 201


def test_operation_list_pages_with_cursor(api: httpx.Client, project: dict[str, Any]) -> None:
    pid = project["project"]["id"]
    for index in range(5):
        create_branch(api, pid, name=f"b{index}")
    everything = api.get(f"/projects/{pid}/operations", params={"limit": 1000}).json()
    assert "pagination" not in everything
    expected = [op["id"] for op in everything["operations"]]
    assert len(expected) == 7  # create_timeline, start_compute, 5 x create_branch
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 3}
        if cursor:
            params["cursor"] = cursor
        body = api.get(f"/projects/{pid}/operations", params=params).json()
        seen += [op["id"] for op in body["operations"]]
        pages += 1
        cursor = body.get("pagination", {}).get("cursor")
        if not cursor:
            break
    assert pages == 3
    assert seen == expected


def test_operation_of_another_project_or_unknown_is_404(api: httpx.Client, project: dict[str, Any]) -> None:
    pid = project["project"]["id"]
    other = api.post("/projects", json={"project": {"name": "other"}}).json()
    op_id = other["operations"][0]["id"]
    response = api.get(f"/projects/{pid}/operations/{op_id}")
    assert response.status_code == 404
    assert response.json()["message"] == "operation not found"
    assert api.get(f"/projects/{pid}/operations/not-a-uuid").status_code == 400


def test_operation_list_accepts_a_created_at_cursor(
    jambo_emulator: JamboEmulator, api: httpx.Client, project: dict[str, Any]
) -> None:
    pid = project["project"]["id"]
    jambo_emulator.advance(10)
    create_branch(api, pid, name="newer")
    newest = api.get(f"/projects/{pid}/operations", params={"limit": 1}).json()["operations"]
    assert [op["action"] for op in newest] == ["create_branch"]
    older = api.get(f"/projects/{pid}/operations", params={"cursor": newest[0]["created_at"]}).json()
    assert [op["action"] for op in older["operations"]] == ["start_compute", "create_timeline"]
