"""Keys (personal, project-scoped, created and revoked) and the projects collection."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from jambo_emulator import JamboEmulator


def _client(emu: JamboEmulator, key: str) -> httpx.Client:
    return httpx.Client(base_url=emu.base_url, headers={"Authorization": f"Bearer {key}"})


@pytest.fixture
def scoped(jambo_emulator: JamboEmulator) -> Iterator[tuple[httpx.Client, str, str]]:
    """A key limited to project A, plus project B that it must not see."""
    a = jambo_emulator.create_project(name="a")["project"]["id"]
    b = jambo_emulator.create_project(name="b")["project"]["id"]
    key = jambo_emulator.add_api_key("scoped-key", project_id=a)
    with _client(jambo_emulator, key) as client:
        yield client, a, b


def test_project_scoped_key_sees_only_its_project(scoped: tuple[httpx.Client, str, str]) -> None:
    client, a, b = scoped
    assert [p["id"] for p in client.get("/projects").json()["projects"]] == [a]
    assert client.get(f"/projects/{a}").status_code == 200
    assert client.get(f"/projects/{a}/branches").status_code == 200
    for path in (f"/projects/{b}", f"/projects/{b}/branches", f"/projects/{b}/operations"):
        response = client.get(path)
        assert response.status_code == 404
        assert response.json()["message"] == "project not found"
    assert client.post(f"/projects/{b}/branches", json={}).status_code == 404
    assert client.post("/projects", json={"project": {}}).status_code == 403
    assert client.get("/api_keys").status_code == 403


def test_created_key_works_and_revoked_key_is_401(jambo_emulator: JamboEmulator, api: httpx.Client) -> None:
    created = api.post("/api_keys", json={"key_name": "ci"})
    assert created.status_code == 200
    body = created.json()
    assert set(body) == {"id", "key", "name", "created_at", "created_by"}
    with _client(jambo_emulator, body["key"]) as client:
        assert client.get("/projects").status_code == 200
        listed = api.get("/api_keys").json()
        assert body["id"] in [k["id"] for k in listed]
        assert all("key" not in k for k in listed)
        revoked = api.delete(f"/api_keys/{body['id']}")
        assert revoked.status_code == 200
        assert revoked.json()["revoked"] is True
        assert client.get("/projects").status_code == 401
    assert api.delete(f"/api_keys/{body['id']}").status_code == 404
    assert api.post("/api_keys", json={"key_name": "x" * 65}).status_code == 400


def test_generated_key_when_none_given() -> None:
    with JamboEmulator(deterministic=True, data_plane="off") as emu:
        assert len(emu.api_key) == 64
        with emu.client() as client:
            assert client.get("/projects").status_code == 200


def test_project_list_pagination_and_search(jambo_emulator: JamboEmulator, api: httpx.Client) -> None:
    ids = [jambo_emulator.create_project(name=f"proj-{i}")["project"]["id"] for i in range(5)]
    jambo_emulator.create_project(name="other")
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 2, "search": "proj-"}
        if cursor:
            params["cursor"] = cursor
        body = api.get("/projects", params=params).json()
        pages += 1
        assert body["applications"] == {}
        seen += [p["id"] for p in body["projects"]]
        if len(body["projects"]) < 2:
            break
        cursor = body["pagination"]["cursor"]
    assert seen == ids
    assert pages == 3
    assert api.get("/projects", params={"limit": 401}).status_code == 400


def test_project_update_and_delete(jambo_emulator: JamboEmulator, api: httpx.Client) -> None:
    pid = jambo_emulator.create_project(name="before")["project"]["id"]
    updated = api.patch(f"/projects/{pid}", json={"project": {"name": "after"}})
    assert updated.status_code == 200
    assert updated.json()["project"]["name"] == "after"
    assert updated.json()["operations"] == []
    assert api.delete(f"/projects/{pid}").status_code == 200
    assert api.get(f"/projects/{pid}").status_code == 404
    assert api.delete(f"/projects/{pid}").status_code == 404


def test_project_create_options(api: httpx.Client) -> None:
    body = api.post(
        "/projects",
        json={
            "project": {
                "name": "custom",
                "region_id": "aws-eu-central-1",
                "pg_version": 16,
                "branch": {"name": "trunk", "database_name": "app", "role_name": "app_admin"},
            }
        },
    ).json()
    assert body["project"]["region_id"] == "aws-eu-central-1"
    assert body["project"]["pg_version"] == 16
    assert body["branch"]["name"] == "trunk"
    assert body["databases"][0]["name"] == "app"
    assert body["databases"][0]["owner_name"] == "app_admin"
    assert body["endpoints"][0]["host"].endswith(".eu-central-1.aws.neon.tech")
    bad_region = api.post("/projects", json={"project": {"region_id": "mars-1"}})
    assert bad_region.status_code == 400
    assert "region_id" in bad_region.json()["message"]


def test_users_me_and_regions(api: httpx.Client) -> None:
    me = api.get("/users/me").json()
    assert me["email"]
    regions = api.get("/regions").json()["regions"]
    assert [r["region_id"] for r in regions if r["default"]] == ["aws-us-east-2"]


def test_keys_and_passwords_stay_out_of_reprs(jambo_emulator: JamboEmulator) -> None:
    body = jambo_emulator.create_project(name="secret-check")
    password = body["roles"][0]["password"]
    project = jambo_emulator.ctx.store.projects[body["project"]["id"]]
    texts = [
        repr(jambo_emulator.config),
        repr(jambo_emulator),
        repr(next(iter(jambo_emulator.ctx.store.api_keys.values()))),
        repr(project.default_branch().roles["neondb_owner"]),
    ]
    assert not [t for t in texts if jambo_emulator.api_key in t or password in t]
