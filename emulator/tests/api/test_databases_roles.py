"""Databases and roles of a branch, passwords, and connection URIs."""

from __future__ import annotations

from typing import Any

import httpx
from emulator_helpers import create_branch


def test_database_lifecycle(api: httpx.Client, project: dict[str, Any]) -> None:
    pid, bid = project["project"]["id"], project["branch"]["id"]
    base = f"/projects/{pid}/branches/{bid}/databases"
    created = api.post(base, json={"database": {"name": "app", "owner_name": "neondb_owner"}})
    assert created.status_code == 201
    assert created.json()["database"]["owner_name"] == "neondb_owner"
    assert isinstance(created.json()["database"]["id"], int)
    assert [op["action"] for op in created.json()["operations"]] == ["apply_config", "suspend_compute"]
    duplicate = api.post(base, json={"database": {"name": "app", "owner_name": "neondb_owner"}})
    assert duplicate.status_code == 409
    assert duplicate.json()["message"] == "database already exists"
    no_owner = api.post(base, json={"database": {"name": "x", "owner_name": "ghost"}})
    assert no_owner.status_code == 400
    assert "owner_name" in no_owner.json()["message"]
    assert sorted(d["name"] for d in api.get(base).json()["databases"]) == ["app", "neondb"]
    assert api.get(f"{base}/app").json()["database"]["name"] == "app"
    assert api.delete(f"{base}/app").status_code == 200
    assert api.get(f"{base}/app").status_code == 404
    assert api.delete(f"{base}/app").status_code == 204


def test_role_lifecycle_and_passwords(api: httpx.Client, project: dict[str, Any]) -> None:
    pid, bid = project["project"]["id"], project["branch"]["id"]
    base = f"/projects/{pid}/branches/{bid}/roles"
    created = api.post(base, json={"role": {"name": "alice"}})
    assert created.status_code == 201
    password = created.json()["role"]["password"]
    assert password.startswith("npg_")
    assert len(password) > 12
    assert [op["action"] for op in created.json()["operations"]] == ["apply_config", "suspend_compute"]
    assert api.post(base, json={"role": {"name": "alice"}}).status_code == 409
    listed = api.get(base).json()["roles"]
    assert sorted(r["name"] for r in listed) == ["alice", "neondb_owner"]
    assert all("password" not in r for r in listed)
    assert api.get(f"{base}/alice/reveal_password").json() == {"password": password}
    reset = api.post(f"{base}/alice/reset_password").json()
    new_password = reset["role"]["password"]
    assert new_password != password
    assert api.get(f"{base}/alice/reveal_password").json() == {"password": new_password}
    assert api.get(f"{base}/ghost/reveal_password").status_code == 404
    owner = api.delete(f"{base}/neondb_owner")
    assert owner.status_code == 400  # owns neondb
    assert api.delete(f"{base}/alice").status_code == 200
    assert api.delete(f"{base}/alice").status_code == 204


def test_role_name_longer_than_63_bytes_is_400(api: httpx.Client, project: dict[str, Any]) -> None:
    pid, bid = project["project"]["id"], project["branch"]["id"]
    response = api.post(f"/projects/{pid}/branches/{bid}/roles", json={"role": {"name": "r" * 64}})
    assert response.status_code == 400
    assert "role.name" in response.json()["message"]


def test_child_branch_copies_roles_with_same_passwords(api: httpx.Client, project: dict[str, Any]) -> None:
    pid = project["project"]["id"]
    child = create_branch(api, pid, name="dev", endpoints=[{"type": "read_write"}])
    parent_password = project["roles"][0]["password"]
    details = child["connection_uris"][0]
    assert details["connection_parameters"]["password"] == parent_password
    assert details["connection_parameters"]["database"] == "neondb"
    assert details["connection_parameters"]["pooler_host"].startswith(
        child["endpoints"][0]["id"] + "-pooler."
    )


def test_connection_uri_direct_pooled_and_defaults(api: httpx.Client, project: dict[str, Any]) -> None:
    pid = project["project"]["id"]
    eid = project["endpoints"][0]["id"]
    password = project["roles"][0]["password"]
    params = {"database_name": "neondb", "role_name": "neondb_owner"}
    direct = api.get(f"/projects/{pid}/connection_uri", params=params).json()["uri"]
    assert (
        direct == f"postgresql://neondb_owner:{password}@{eid}.us-east-2.aws.neon.tech/neondb?sslmode=require"
    )
    pooled = api.get(f"/projects/{pid}/connection_uri", params={**params, "pooled": "true"}).json()["uri"]
    assert pooled == (
        f"postgresql://neondb_owner:{password}@{eid}-pooler.us-east-2.aws.neon.tech/neondb?sslmode=require"
    )
    no_compute = create_branch(api, pid, name="no-compute")["branch"]["id"]
    missing = api.get(f"/projects/{pid}/connection_uri", params={**params, "branch_id": no_compute})
    assert missing.status_code == 404
    no_db = api.get(
        f"/projects/{pid}/connection_uri", params={"database_name": "x", "role_name": "neondb_owner"}
    )
    assert no_db.status_code == 404
    required = api.get(f"/projects/{pid}/connection_uri", params={"role_name": "neondb_owner"})
    assert required.status_code == 400
    assert "database_name" in required.json()["message"]
