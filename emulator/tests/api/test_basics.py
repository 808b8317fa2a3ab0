"""The core flows: auth, projects, branches with endpoints, operations, errors and request ids."""

from __future__ import annotations

import re
from typing import Any

import httpx
from emulator_helpers import create_branch, op_statuses

from jambo_emulator import JamboEmulator

ID_RE = re.compile(r"^[a-z0-9-]{1,60}$")


def test_missing_and_unknown_key_get_401_with_error_body(jambo_emulator: JamboEmulator) -> None:
    no_key = httpx.get(f"{jambo_emulator.base_url}/projects")
    bad_key = httpx.get(f"{jambo_emulator.base_url}/projects", headers={"Authorization": "Bearer nope"})
    for response in (no_key, bad_key):
        assert response.status_code == 401
        body = response.json()
        assert set(body) == {"code", "message", "request_id"}
        assert response.headers["x-neon-ret-request-id"] == body["request_id"]


def test_client_request_id_is_echoed(api: httpx.Client) -> None:
    response = api.get("/projects", headers={"X-Request-ID": "my-req-1"})
    assert response.status_code == 200
    assert response.headers["x-neon-ret-request-id"] == "my-req-1"


def test_create_project_makes_default_branch_endpoint_db_and_role(api: httpx.Client) -> None:
    response = api.post("/projects", json={"project": {"name": "demo"}})
    assert response.status_code == 201
    body = response.json()
    project = body["project"]
    assert ID_RE.match(project["id"])
    assert re.match(r"^[a-z]+-[a-z]+-\d{8}$", project["id"])
    assert body["branch"]["name"] == "main"
    assert body["branch"]["default"] is True
    assert body["branch"]["id"].startswith("br-")
    assert [e["type"] for e in body["endpoints"]] == ["read_write"]
    assert body["endpoints"][0]["id"].startswith("ep-")
    assert body["endpoints"][0]["host"] == f"{body['endpoints'][0]['id']}.us-east-2.aws.neon.tech"
    assert [d["name"] for d in body["databases"]] == ["neondb"]
    assert body["roles"][0]["name"] == "neondb_owner"
    assert body["roles"][0]["password"]
    assert [op["action"] for op in body["operations"]] == ["create_timeline", "start_compute"]
    uri = body["connection_uris"][0]["connection_uri"]
    password = body["roles"][0]["password"]
    host = body["endpoints"][0]["host"]
    assert uri == f"postgresql://neondb_owner:{password}@{host}/neondb?sslmode=require"
    got = api.get(f"/projects/{project['id']}").json()["project"]
    assert got["id"] == project["id"]
    assert got["name"] == "demo"


def test_project_create_without_project_field_is_400_naming_it(api: httpx.Client) -> None:
    response = api.post("/projects", json={})
    assert response.status_code == 400
    assert (
        response.json()["message"]
        == "invalid request: decode application/json: invalid: project (field required)"
    )


def test_malformed_json_and_wrong_types_are_400(api: httpx.Client, project: dict[str, Any]) -> None:
    pid = project["project"]["id"]
    malformed = api.post(
        f"/projects/{pid}/branches", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert malformed.status_code == 400
    assert "malformed JSON" in malformed.json()["message"]
    wrong_type = api.post(f"/projects/{pid}/branches", json={"branch": {"name": 5}})
    assert wrong_type.status_code == 400
    assert "branch.name" in wrong_type.json()["message"]
    bad_id = api.get("/projects/Not_An_Id/branches")
    assert bad_id.status_code == 400
    assert "project_id" in bad_id.json()["message"]


def test_branch_create_with_endpoint_moves_through_states(
    jambo_emulator: JamboEmulator, api: httpx.Client, project: dict[str, Any]
) -> None:
    pid = project["project"]["id"]
    jambo_emulator.set_operation_durations(default=10.0)
    created = create_branch(api, pid, name="dev", endpoints=[{"type": "read_write"}])
    branch_id = created["branch"]["id"]
    endpoint_id = created["endpoints"][0]["id"]
    assert created["branch"]["current_state"] == "init"
    assert created["branch"]["pending_state"] == "ready"
    assert created["endpoints"][0]["current_state"] == "init"
    assert [op["action"] for op in created["operations"]] == ["create_branch", "start_compute"]
    assert {op["status"] for op in created["operations"]} == {"scheduling"}
    assert created["connection_uris"][0]["connection_parameters"]["host"].startswith(endpoint_id)

    jambo_emulator.advance(5)  # create_branch running; start_compute waits for it
    assert op_statuses(api, pid, created["operations"]) == ["running", "scheduling"]
    jambo_emulator.advance(5)
    assert op_statuses(api, pid, created["operations"]) == ["finished", "scheduling"]
    branch = api.get(f"/projects/{pid}/branches/{branch_id}").json()["branch"]
    assert branch["current_state"] == "ready"
    assert "pending_state" not in branch
    endpoint = api.get(f"/projects/{pid}/endpoints/{endpoint_id}").json()["endpoint"]
    assert endpoint["current_state"] == "init"
    assert endpoint["pending_state"] == "active"
    jambo_emulator.advance(10)
    assert op_statuses(api, pid, created["operations"]) == ["finished", "finished"]
    endpoint = api.get(f"/projects/{pid}/endpoints/{endpoint_id}").json()["endpoint"]
    assert endpoint["current_state"] == "active"
    assert "pending_state" not in endpoint


def test_zero_duration_operations_finish_by_the_next_request(
    api: httpx.Client, project: dict[str, Any]
) -> None:
    pid = project["project"]["id"]
    created = create_branch(api, pid, name="quick", endpoints=[{"type": "read_write"}])
    assert {op["status"] for op in created["operations"]} == {"scheduling"}
    assert op_statuses(api, pid, created["operations"]) == ["finished", "finished"]


def test_branch_list_get_delete_and_repeated_delete(api: httpx.Client, project: dict[str, Any]) -> None:
    pid = project["project"]["id"]
    created = create_branch(api, pid, name="to-delete", endpoints=[{"type": "read_write"}])
    bid = created["branch"]["id"]
    names = [b["name"] for b in api.get(f"/projects/{pid}/branches").json()["branches"]]
    assert sorted(names) == ["main", "to-delete"]
    api.get(f"/projects/{pid}")  # let the create operations finish
    deleted = api.delete(f"/projects/{pid}/branches/{bid}")
    assert deleted.status_code == 200
    assert [op["action"] for op in deleted.json()["operations"]] == ["suspend_compute", "delete_timeline"]
    assert api.get(f"/projects/{pid}/branches/{bid}").status_code == 404
    assert api.get(f"/projects/{pid}/branches/{bid}").json()["message"] == "branch not found"
    again = api.delete(f"/projects/{pid}/branches/{bid}")
    assert again.status_code == 204
    assert again.content == b""
    assert [e["branch_id"] for e in api.get(f"/projects/{pid}/endpoints").json()["endpoints"]] == [
        project["branch"]["id"]
    ]


def test_operations_list_newest_first(api: httpx.Client, project: dict[str, Any]) -> None:
    pid = project["project"]["id"]
    create_branch(api, pid, name="b1")
    ops = api.get(f"/projects/{pid}/operations").json()["operations"]
    assert [op["action"] for op in ops] == ["create_branch", "start_compute", "create_timeline"]


def test_unknown_route_is_404_json(api: httpx.Client) -> None:
    response = api.get("/no/such/route")
    assert response.status_code == 404
    assert response.json()["message"] == "not found"


def test_body_is_json_whatever_the_content_type(api: httpx.Client, project: dict[str, Any]) -> None:
    pid = project["project"]["id"]
    form_typed = api.post(
        f"/projects/{pid}/branches",
        content=b'{"branch": {"name": "curl-d"}}',
        headers={"Content-Type": "application/x-www-form-urlencoded"},  # what `curl -d` sends
    )
    assert form_typed.status_code == 201
    assert form_typed.json()["branch"]["name"] == "curl-d"
