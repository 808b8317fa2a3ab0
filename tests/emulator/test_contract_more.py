"""Contract scenarios for the operations issue 11 added: organizations and their keys, shared
projects, database update, project permissions and /auth. Every exchange is validated against the
spec by ``ContractClient`` (test_contract.py); ``test_groups_cover_every_issue_11_operation``
checks together they exercise each of ``ISSUE_11_OPERATIONS`` with a success status."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from spec import ISSUE_11_OPERATIONS, ApiSpec, load_spec
from test_contract import ContractClient, covered, new_project, settle

from airflow_provider_jambo.emulator import JamboEmulator

ORG_OPS = (
    "getCurrentUserOrganizations",
    "getOrganization",
    "listOrgApiKeys",
    "createOrgApiKey",
    "revokeOrgApiKey",
    "getOrganizationMembers",
    "getOrganizationMember",
    "getAuthDetails",
)
SHARING_OPS = (
    "listSharedProjects",
    "listProjectPermissions",
    "grantPermissionToProject",
    "revokePermissionFromProject",
)
DATABASE_OPS = ("updateProjectBranchDatabase",)


@pytest.fixture(scope="module")
def spec() -> ApiSpec:
    return load_spec()


@pytest.fixture
def emu() -> Iterator[JamboEmulator]:
    with JamboEmulator(
        api_key="contract-key", deterministic=True, operation_duration=0.0, data_plane="off"
    ) as emulator:
        emulator.set_rate_limits(enabled=False)
        yield emulator


@pytest.fixture
def api(spec: ApiSpec, emu: JamboEmulator) -> Iterator[ContractClient]:
    client = ContractClient(spec, emu.base_url, emu.api_key)
    yield client
    client.close()


def test_organizations_and_their_keys(api: ContractClient, emu: JamboEmulator, spec: ApiSpec) -> None:
    orgs = api.call("GET", "/users/me/organizations", expect=200)["organizations"]
    assert [o["id"] for o in orgs] == [emu.default_org_id]
    org_id = orgs[0]["id"]
    assert api.call("GET", f"/organizations/{org_id}", expect=200)["id"] == org_id
    api.call("GET", "/organizations/org-none-1", expect=404)
    assert api.call("GET", "/auth", expect=200)["auth_method"] == "api_key_user"

    project = new_project(api, emu, "in-org")["project"]
    assert project["org_id"] == org_id  # projects join the default organization
    other = emu.add_organization("second")
    elsewhere = api.call(
        "POST", "/projects", json={"project": {"name": "x", "org_id": other["id"]}}, expect=201
    )
    settle(api, emu, elsewhere["project"]["id"], elsewhere["operations"])
    listed = api.call("GET", "/projects", params={"org_id": org_id}, expect=200)["projects"]
    assert [p["id"] for p in listed] == [project["id"]]

    created = api.call("POST", f"/organizations/{org_id}/api_keys", json={"key_name": "ci"}, expect=200)
    scoped = api.call(
        "POST",
        f"/organizations/{org_id}/api_keys",
        json={"key_name": "one-project", "project_id": project["id"]},
        expect=200,
    )
    assert scoped["project_id"] == project["id"]
    api.call(
        "POST",
        f"/organizations/{org_id}/api_keys",
        json={"key_name": "wrong-org", "project_id": elsewhere["project"]["id"]},
        expect=400,
    )
    keys = api.call("GET", f"/organizations/{org_id}/api_keys", expect=200)
    assert {k["id"] for k in keys} == {created["id"], scoped["id"]}
    assert {k["id"] for k in api.call("GET", "/api_keys", expect=200)}.isdisjoint({created["id"]})

    # The org key sees the org's projects only, and says who it is.
    org_client = ContractClient(spec, emu.base_url, created["key"])
    try:
        seen = org_client.call("GET", "/projects", expect=200)["projects"]
        assert [p["id"] for p in seen] == [project["id"]]
        org_client.call("GET", f"/projects/{elsewhere['project']['id']}", expect=404)
        assert org_client.call("GET", "/auth", expect=200) == {
            "account_id": org_id,
            "auth_method": "api_key_org",
        }
        org_client.call("GET", "/api_keys", expect=403)
        mine = org_client.call("GET", "/users/me/organizations", expect=200)["organizations"]
        assert [o["id"] for o in mine] == [org_id]
        org_client.call("GET", f"/organizations/{other['id']}", expect=403)
    finally:
        org_client.close()

    # The project-scoped key (an org key limited to one project) sees that project alone.
    scoped_client = ContractClient(spec, emu.base_url, scoped["key"])
    try:
        seen = scoped_client.call("GET", "/projects", expect=200)["projects"]
        assert [p["id"] for p in seen] == [project["id"]]
        scoped_client.call("GET", f"/organizations/{org_id}/api_keys", expect=403)
        scoped_client.call("POST", "/projects", json={"project": {"name": "no"}}, expect=403)
    finally:
        scoped_client.close()

    revoked = api.call("DELETE", f"/organizations/{org_id}/api_keys/{created['id']}", expect=200)
    assert revoked["revoked"] is True
    api.call("DELETE", f"/organizations/{org_id}/api_keys/{created['id']}", expect=404)
    gone = ContractClient(spec, emu.base_url, created["key"])
    try:
        gone.call("GET", "/projects", expect=401)
    finally:
        gone.close()

    members = api.call("GET", f"/organizations/{org_id}/members", expect=200)["members"]
    assert len(members) == 1
    assert members[0]["member"]["role"] == "admin"
    member_id = members[0]["member"]["id"]
    member = api.call("GET", f"/organizations/{org_id}/members/{member_id}", expect=200)
    assert member["user_id"] == api.call("GET", "/users/me", expect=200)["id"]
    api.call("GET", f"/organizations/{org_id}/members/00000000-0000-4000-8000-000000000000", expect=404)
    covered(api, ORG_OPS)


def test_users_me_carries_a_billing_account(api: ContractClient) -> None:
    me = api.call("GET", "/users/me", expect=200)
    assert me["billing_account"]["state"] == "active"


def test_sharing_and_shared_projects(api: ContractClient, emu: JamboEmulator) -> None:
    pid = new_project(api, emu, "shared-one")["project"]["id"]
    new_project(api, emu, "private")
    assert api.call("GET", "/projects/shared", expect=200)["projects"] == []
    assert api.call("GET", f"/projects/{pid}/permissions", expect=200) == {"project_permissions": []}
    other = api.call("POST", f"/projects/{pid}/permissions", json={"email": "dev@example.org"}, expect=200)
    assert other["granted_to_email"] == "dev@example.org"
    mine = api.call(
        "POST", f"/projects/{pid}/permissions", json={"email": "emulator@example.com"}, expect=200
    )
    again = api.call(
        "POST", f"/projects/{pid}/permissions", json={"email": "emulator@example.com"}, expect=200
    )
    assert again["id"] == mine["id"]
    listed = api.call("GET", f"/projects/{pid}/permissions", expect=200)["project_permissions"]
    assert {p["id"] for p in listed} == {other["id"], mine["id"]}
    shared = api.call("GET", "/projects/shared", expect=200)["projects"]
    assert [p["id"] for p in shared] == [pid]
    revoked = api.call("DELETE", f"/projects/{pid}/permissions/{mine['id']}", expect=200)
    assert "revoked_at" in revoked
    api.call("DELETE", f"/projects/{pid}/permissions/{mine['id']}", expect=404)
    assert api.call("GET", "/projects/shared", expect=200)["projects"] == []
    api.call(
        "POST",
        f"/projects/{pid}/permissions",
        json={"email": "not-an-email"},
        expect=400,
        valid_request=False,
    )
    covered(api, SHARING_OPS)


def test_database_update(api: ContractClient, emu: JamboEmulator) -> None:
    body = new_project(api, emu, "db-update")
    pid, bid = body["project"]["id"], body["branch"]["id"]
    base = f"/projects/{pid}/branches/{bid}"
    role = api.call("POST", f"{base}/roles", json={"role": {"name": "sally"}}, expect=201)
    settle(api, emu, pid, role["operations"])
    updated = api.call(
        "PATCH",
        f"{base}/databases/neondb",
        json={"database": {"name": "mydb", "owner_name": "sally"}},
        expect=200,
    )
    assert updated["database"]["name"] == "mydb"
    assert updated["database"]["owner_name"] == "sally"
    assert updated["operations"][0]["action"] == "apply_config"
    settle(api, emu, pid, updated["operations"])
    api.call("GET", f"{base}/databases/neondb", expect=404)
    assert api.call("GET", f"{base}/databases/mydb", expect=200)["database"]["owner_name"] == "sally"
    api.call("PATCH", f"{base}/databases/mydb", json={"database": {"owner_name": "nobody"}}, expect=400)
    api.call("PATCH", f"{base}/databases/gone", json={"database": {"name": "x"}}, expect=404)
    covered(api, DATABASE_OPS)


def test_groups_cover_every_issue_11_operation() -> None:
    assert sorted(ORG_OPS + SHARING_OPS + DATABASE_OPS) == sorted(ISSUE_11_OPERATIONS)
