"""Contract test: every operation the emulator serves answers as the published spec says.

Each request goes through `ContractClient`, which finds the spec operation for the method and path,
checks the request body the test sends is itself valid, and validates the status code and the
response body against the spec's schema for that operation and status. Any violation fails the
test at the call that produced it. Error answers (4xx) must also carry the full
`{code, message, request_id}` body and the request-id header.

Scenario tests are grouped by resource; each declares the operations it covers and checks it
really exercised each of them with a success status; `test_groups_cover_every_issue_operation`
checks the groups together cover the issue's whole list.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from jambo_emulator import JamboEmulator
from spec import (
    BRANCH_SERVICE_READS,
    BUCKET_OPERATIONS,
    ISSUE_11_OPERATIONS,
    ISSUE_OPERATIONS,
    SNAPSHOT_OPERATIONS,
    ApiSpec,
    load_spec,
)

REQUEST_ID_HEADER = "x-neon-ret-request-id"
_UNSET: Any = object()


@dataclass
class ContractClient:
    """An httpx client that validates every exchange against the spec."""

    spec: ApiSpec
    base_url: str
    api_key: str
    exercised: dict[str, set[int]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.http = httpx.Client(base_url=self.base_url, timeout=30.0)
        self.last_response = httpx.Response(0)  # replaced by every call

    def close(self) -> None:
        self.http.close()

    def call(
        self,
        method: str,
        path: str,
        *,
        expect: int | tuple[int, ...],
        json: Any = _UNSET,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        content: bytes | None = None,
        auth: str | None = _UNSET,
        valid_request: bool = True,
    ) -> Any:
        """Send one request; return the parsed body (None for an empty one).

        `auth` overrides the key (None sends no Authorization header). `valid_request=False`
        marks a deliberately invalid request (the error path is under test).
        """
        op = self.spec.find(method, path)
        assert op is not None, f"{method} {path} is not an operation of the spec"
        if json is not _UNSET and valid_request:
            assert self.spec.request_violations(op.operation_id, json) == [], "test sends an invalid body"
        send_headers = {"Accept": "application/json"}
        key = self.api_key if auth is _UNSET else auth
        if key is not None:
            send_headers["Authorization"] = f"Bearer {key}"
        send_headers.update(headers or {})
        kwargs: dict[str, Any] = {"params": params, "headers": send_headers}
        if json is not _UNSET:
            kwargs["json"] = json
        elif content is not None:
            kwargs["content"] = content
            send_headers.setdefault("Content-Type", "application/json")
        resp = self.http.request(method, path, **kwargs)
        self.last_response = resp

        body = _json_body(resp)
        assert resp.headers.get(REQUEST_ID_HEADER), f"{method} {path}: no {REQUEST_ID_HEADER} header"
        where = f"{method} {path} -> {resp.status_code} {resp.text[:300]}"
        violations = self.spec.violations(op.operation_id, resp.status_code, body)
        assert violations == [], f"{where}\nspec violations:\n" + "\n".join(violations)
        expected = (expect,) if isinstance(expect, int) else expect
        assert resp.status_code in expected, f"{where}\nexpected {expected}"
        if resp.status_code >= 400:
            assert_error_body(resp, body)
        extra = self.spec.undeclared_fields(op.operation_id, resp.status_code, body)
        assert extra == [], f"{where}\nfields the spec does not declare: {extra}"
        self.exercised.setdefault(op.operation_id, set()).add(resp.status_code)
        return body

    def succeeded(self) -> set[str]:
        return {op for op, statuses in self.exercised.items() if any(200 <= s < 300 for s in statuses)}


def _json_body(resp: httpx.Response) -> Any:
    if not resp.content:
        return None
    content_type = resp.headers.get("content-type", "")
    assert content_type.startswith("application/json"), f"non-JSON answer ({content_type}): {resp.text[:200]}"
    return resp.json()


def assert_error_body(resp: httpx.Response, body: Any) -> None:
    """The service's error shape, with the request id in the body and in the header."""
    assert isinstance(body, dict), f"error without a JSON object body: {resp.text[:200]}"
    assert set(body) >= {"code", "message", "request_id"}, f"error body lacks fields: {body}"
    assert isinstance(body["code"], str)
    for name in ("message", "request_id"):
        assert isinstance(body[name], str), f"{name} is not a string: {body}"
        assert body[name], f"empty {name}: {body}"
    assert resp.headers.get(REQUEST_ID_HEADER) == body["request_id"], "request-id header != body request_id"
    assert "Traceback" not in body["message"]


# ---------------------------------------------------------------------------------------------
# fixtures and helpers


@pytest.fixture(scope="module")
def spec() -> ApiSpec:
    return load_spec()


@pytest.fixture
def emu() -> Iterator[JamboEmulator]:
    with JamboEmulator(
        api_key="contract-key", deterministic=True, operation_duration=0.0, data_plane="off"
    ) as emulator:
        # A scenario sends well over 40 requests per second to one route; the rate limits have their
        # own behaviour tests, here they would only turn shape checks into 429s.
        emulator.set_rate_limits(enabled=False)
        yield emulator


@pytest.fixture
def api(spec: ApiSpec, emu: JamboEmulator) -> Iterator[ContractClient]:
    client = ContractClient(spec, emu.base_url, emu.api_key)
    yield client
    client.close()


def settle(
    api: ContractClient, emu: JamboEmulator, project_id: str, operations: list[dict[str, Any]]
) -> None:
    """Poll each operation (as a client would) until every one is finished."""
    for op in operations:
        for _ in range(20):
            body = api.call("GET", f"/projects/{project_id}/operations/{op['id']}", expect=200)
            if body["operation"]["status"] == "finished":
                break
            emu.advance(1.0)
        else:
            pytest.fail(f"operation {op['action']} {op['id']} never finished: {body}")


def new_project(api: ContractClient, emu: JamboEmulator, name: str = "contract") -> dict[str, Any]:
    body = api.call("POST", "/projects", json={"project": {"name": name}}, expect=201)
    settle(api, emu, body["project"]["id"], body["operations"])
    return body


def in_days(days: float) -> str:
    when = dt.datetime.now(dt.UTC) + dt.timedelta(days=days)
    return when.replace(microsecond=0).isoformat().replace("+00:00", "Z")


def covered(api: ContractClient, group: tuple[str, ...]) -> None:
    missing = set(group) - api.succeeded()
    assert not missing, f"operations not exercised with a 2xx answer: {sorted(missing)}"


# ---------------------------------------------------------------------------------------------
# the validator itself


def test_validator_accepts_the_specs_own_examples(spec: ApiSpec) -> None:
    checked = 0
    for op_id, status, example in spec.response_examples():
        if op_id in ISSUE_OPERATIONS:
            assert spec.violations(op_id, int(status), example) == []
            checked += 1
    assert checked >= 5


def test_validator_rejects_what_breaks_the_spec(spec: ApiSpec) -> None:
    branch = {"id": "br-a", "project_id": "p", "name": "main"}
    assert any("required" in v for v in spec.violations("getProjectBranch", 200, {"branch": branch}))
    assert any("not documented" in v for v in spec.violations("createProjectBranch", 200, {}))
    assert spec.violations("deleteProjectBranch", 204, None) == []
    assert spec.violations("deleteProjectBranch", 204, {}) != []
    assert spec.violations("getProject", 404, {"code": "", "message": "project not found"}) == []
    assert spec.violations("getProject", 404, {"message": 1}) != []
    found = spec.find("GET", "/api/v2/projects/p-1/branches/count")
    assert found is not None
    assert found.operation_id == "countProjectBranches"
    extra = {"branch": {**branch, "bogus": 1}, "annotation": {"value": {}, "zzz": 1}}
    assert spec.undeclared_fields("getProjectBranch", 200, extra) == ["$.branch.bogus", "$.annotation.zzz"]


# ---------------------------------------------------------------------------------------------
# scenarios per resource group

API_KEY_OPS = ("listApiKeys", "createApiKey", "revokeApiKey")


def test_api_keys(api: ContractClient) -> None:
    before = api.call("GET", "/api_keys", expect=200)
    created = api.call("POST", "/api_keys", json={"key_name": "ci"}, expect=200)
    assert created["name"] == "ci"
    assert created["key"]
    listed = api.call("GET", "/api_keys", expect=200)
    assert len(listed) == len(before) + 1
    assert created["id"] in {k["id"] for k in listed}
    # The new key works, and stops working once revoked.
    api.call("GET", "/users/me", expect=200, auth=created["key"])
    revoked = api.call("DELETE", f"/api_keys/{created['id']}", expect=200)
    assert revoked["id"] == created["id"]
    assert revoked["revoked"] is True
    api.call("GET", "/users/me", expect=401, auth=created["key"])
    covered(api, API_KEY_OPS)


PROJECT_OPS = ("listProjects", "createProject", "getProject", "updateProject", "deleteProject")


def test_projects(api: ContractClient, emu: JamboEmulator) -> None:
    created = new_project(api, emu, "alpha")
    project_id = created["project"]["id"]
    assert created["branch"]["default"] is True
    assert [e["type"] for e in created["endpoints"]] == ["read_write"]
    assert created["databases"][0]["name"] == "neondb"
    assert created["roles"][0]["name"] == "neondb_owner"
    assert created["connection_uris"][0]["connection_uri"].startswith("postgresql://neondb_owner:")
    for name in ("beta", "gamma"):
        new_project(api, emu, name)

    got = api.call("GET", f"/projects/{project_id}", expect=200)
    assert got["project"]["name"] == "alpha"
    # Pagination: limit 1 walks all three projects, one page at a time.
    seen: list[str] = []
    params: dict[str, Any] = {"limit": 1}
    for _ in range(10):
        page = api.call("GET", "/projects", params=params, expect=200)
        seen += [p["id"] for p in page["projects"]]
        if not page["projects"]:
            break
        params = {"limit": 1, "cursor": page["pagination"]["cursor"]}
    assert len(seen) == len(set(seen)) == 3
    found = api.call("GET", "/projects", params={"search": "gam"}, expect=200)
    assert [p["name"] for p in found["projects"]] == ["gamma"]

    updated = api.call("PATCH", f"/projects/{project_id}", json={"project": {"name": "alpha-2"}}, expect=200)
    assert updated["project"]["name"] == "alpha-2"
    settle(api, emu, project_id, updated["operations"])
    deleted = api.call("DELETE", f"/projects/{project_id}", expect=200)
    assert deleted["project"]["id"] == project_id
    api.call("GET", f"/projects/{project_id}", expect=404)
    covered(api, PROJECT_OPS)


BRANCH_OPS = (
    "listProjectBranches",
    "countProjectBranches",
    "getProjectBranch",
    "createProjectBranch",
    "updateProjectBranch",
    "deleteProjectBranch",
    "restoreProjectBranch",
    "setDefaultProjectBranch",
    "getProjectBranchSchema",
    "getProjectBranchSchemaComparison",
)


def test_branches(api: ContractClient, emu: JamboEmulator, spec: ApiSpec) -> None:
    project = new_project(api, emu)
    pid = project["project"]["id"]
    main_id = project["branch"]["id"]
    base = f"/projects/{pid}/branches"

    # The spec's own example body, pointed at this project's default branch.
    body = spec.request_example_bodies("createProjectBranch")["branch_with_endpoint"]
    body = {**body, "branch": {**body["branch"], "parent_id": main_id}}
    dev = api.call("POST", base, json=body, expect=201)
    assert dev["branch"]["name"] == "mybranch"
    assert dev["branch"]["parent_id"] == main_id
    assert dev["branch"]["current_state"] == "init"
    assert dev["branch"]["pending_state"] == "ready"
    assert [e["type"] for e in dev["endpoints"]] == ["read_write"]
    assert {o["action"] for o in dev["operations"]} == {"create_branch", "start_compute"}
    assert dev["connection_uris"]
    settle(api, emu, pid, dev["operations"])
    dev_id = dev["branch"]["id"]
    assert api.call("GET", f"{base}/{dev_id}", expect=200)["branch"]["current_state"] == "ready"

    # Every create option the issue lists; no endpoint means no connection URIs.
    full = api.call(
        "POST",
        base,
        json={
            "branch": {"name": "ttl", "parent_id": dev_id, "expires_at": in_days(2)},
            "annotation_value": {"repo": "jambo", "run": "42"},
        },
        expect=201,
    )
    assert full["endpoints"] == []
    assert "connection_uris" not in full
    settle(api, emu, pid, full["operations"])
    got = api.call("GET", f"{base}/{full['branch']['id']}", expect=200)
    assert got["annotation"]["value"] == {"repo": "jambo", "run": "42"}
    for extra in (
        {"name": "at-lsn", "parent_id": main_id, "parent_lsn": "0/1F4D2E8"},
        # A point in the past, but not before the project existed (that is refused).
        {"name": "at-time", "parent_id": main_id, "parent_timestamp": project["branch"]["created_at"]},
        {"name": "schema", "parent_id": main_id, "init_source": "schema-only"},
        {"name": "guarded", "parent_id": main_id, "protected": True},
    ):
        made = api.call("POST", base, json={"branch": extra}, expect=201)
        settle(api, emu, pid, made["operations"])

    # List: search, sort, and a walk over pages of 2 that sees every branch once.
    everything = api.call("GET", base, params={"limit": 100}, expect=200)["branches"]
    assert len(everything) == 7
    seen: list[str] = []
    params: dict[str, Any] = {"limit": 2, "sort_by": "name", "sort_order": "asc"}
    for _ in range(10):
        page = api.call("GET", base, params=params, expect=200)
        seen += [b["name"] for b in page["branches"]]
        nxt = page.get("pagination", {}).get("next")
        if not nxt:
            break
        params = {**params, "cursor": nxt}
    assert seen == sorted(b["name"] for b in everything)
    hits = api.call("GET", base, params={"search": "at-"}, expect=200)["branches"]
    assert sorted(b["name"] for b in hits) == ["at-lsn", "at-time"]
    assert api.call("GET", f"{base}/count", expect=200)["count"] == 7
    assert api.call("GET", f"{base}/count", params={"search": "at-"}, expect=200)["count"] == 2

    # Update: rename, set and clear expires_at.
    renamed = api.call("PATCH", f"{base}/{dev_id}", json={"branch": {"name": "dev"}}, expect=200)
    assert renamed["branch"]["name"] == "dev"
    ttl_id = full["branch"]["id"]
    cleared = api.call("PATCH", f"{base}/{ttl_id}", json={"branch": {"expires_at": None}}, expect=200)
    assert cleared["branch"].get("expires_at") is None
    settle(api, emu, pid, renamed["operations"] + cleared["operations"])

    # Restore: reset from parent keeping the old state, then point in time.
    reset = api.call(
        "POST",
        f"{base}/{ttl_id}/restore",
        json={"source_branch_id": dev_id, "preserve_under_name": "ttl-old"},
        expect=200,
    )
    settle(api, emu, pid, reset["operations"])
    names = {b["name"] for b in api.call("GET", base, params={"limit": 100}, expect=200)["branches"]}
    assert "ttl-old" in names
    pitr = api.call(
        "POST",
        f"{base}/{dev_id}/restore",
        # dev has a child (ttl), so the spec requires preserve_under_name.
        json={
            "source_branch_id": main_id,
            "source_timestamp": project["branch"]["created_at"],
            "preserve_under_name": "dev-old",
        },
        expect=200,
    )
    settle(api, emu, pid, pitr["operations"])

    # Schema and its comparison with the parent.
    schema = api.call("GET", f"{base}/{dev_id}/schema", params={"db_name": "neondb"}, expect=200)
    assert isinstance(schema.get("sql", ""), str)
    api.call(
        "GET",
        f"{base}/{dev_id}/compare_schema",
        params={"db_name": "neondb", "base_branch_id": main_id},
        expect=200,
    )

    # Make dev the default; then the old default can be deleted (it has children: refused).
    made_default = api.call("POST", f"{base}/{dev_id}/set_as_default", expect=200)
    assert made_default["branch"]["default"] is True
    settle(api, emu, pid, made_default["operations"])
    api.call("DELETE", f"{base}/{dev_id}", expect=(400, 409, 422))  # the default branch
    leaf = api.call("GET", base, params={"search": "at-lsn"}, expect=200)["branches"][0]["id"]
    deleted = api.call("DELETE", f"{base}/{leaf}", expect=200)
    assert deleted["branch"]["id"] == leaf
    settle(api, emu, pid, deleted["operations"])
    api.call("DELETE", f"{base}/{leaf}", expect=204)  # repeated delete
    api.call("GET", f"{base}/{leaf}", expect=404)
    covered(api, BRANCH_OPS)


ENDPOINT_OPS = (
    "listProjectEndpoints",
    "listProjectBranchEndpoints",
    "getProjectEndpoint",
    "createProjectEndpoint",
    "updateProjectEndpoint",
    "deleteProjectEndpoint",
    "startProjectEndpoint",
    "suspendProjectEndpoint",
    "restartProjectEndpoint",
)


def test_endpoints(api: ContractClient, emu: JamboEmulator) -> None:
    project = new_project(api, emu)
    pid = project["project"]["id"]
    main_id = project["branch"]["id"]
    branch = api.call("POST", f"/projects/{pid}/branches", json={"branch": {"name": "b"}}, expect=201)
    settle(api, emu, pid, branch["operations"])
    branch_id = branch["branch"]["id"]

    made = api.call(
        "POST",
        f"/projects/{pid}/endpoints",
        json={
            "endpoint": {
                "branch_id": branch_id,
                "type": "read_write",
                "autoscaling_limit_min_cu": 0.25,
                "autoscaling_limit_max_cu": 2,
                "suspend_timeout_seconds": 300,
            }
        },
        expect=201,
    )
    ep_id = made["endpoint"]["id"]
    assert made["endpoint"]["current_state"] == "init"
    # Observed shape: ep-misty-sea-a5833nbi.us-east-2.aws.neon.tech for region aws-us-east-2.
    assert made["endpoint"]["host"] == f"{ep_id}.us-east-2.aws.neon.tech"
    settle(api, emu, pid, made["operations"])
    # One read_write endpoint per branch.
    api.call(
        "POST",
        f"/projects/{pid}/endpoints",
        json={"endpoint": {"branch_id": branch_id, "type": "read_write"}},
        expect=(400, 409),
    )
    ro = api.call(
        "POST",
        f"/projects/{pid}/endpoints",
        json={"endpoint": {"branch_id": branch_id, "type": "read_only"}},
        expect=201,
    )
    settle(api, emu, pid, ro["operations"])

    all_eps = api.call("GET", f"/projects/{pid}/endpoints", expect=200)["endpoints"]
    assert len(all_eps) == 3
    on_branch = api.call("GET", f"/projects/{pid}/branches/{branch_id}/endpoints", expect=200)["endpoints"]
    assert {e["id"] for e in on_branch} == {ep_id, ro["endpoint"]["id"]}
    on_main = api.call("GET", f"/projects/{pid}/branches/{main_id}/endpoints", expect=200)["endpoints"]
    assert len(on_main) == 1
    got = api.call("GET", f"/projects/{pid}/endpoints/{ep_id}", expect=200)
    assert got["endpoint"]["current_state"] == "active"

    updated = api.call(
        "PATCH",
        f"/projects/{pid}/endpoints/{ep_id}",
        json={"endpoint": {"autoscaling_limit_max_cu": 4}},
        expect=200,
    )
    assert updated["endpoint"]["autoscaling_limit_max_cu"] == 4
    settle(api, emu, pid, updated["operations"])
    suspended = api.call("POST", f"/projects/{pid}/endpoints/{ep_id}/suspend", expect=200)
    settle(api, emu, pid, suspended["operations"])
    assert (
        api.call("GET", f"/projects/{pid}/endpoints/{ep_id}", expect=200)["endpoint"]["current_state"]
        == "idle"
    )
    started = api.call("POST", f"/projects/{pid}/endpoints/{ep_id}/start", expect=200)
    settle(api, emu, pid, started["operations"])
    restarted = api.call("POST", f"/projects/{pid}/endpoints/{ep_id}/restart", expect=200)
    settle(api, emu, pid, restarted["operations"])
    assert (
        api.call("GET", f"/projects/{pid}/endpoints/{ep_id}", expect=200)["endpoint"]["current_state"]
        == "active"
    )

    deleted = api.call("DELETE", f"/projects/{pid}/endpoints/{ep_id}", expect=200)
    settle(api, emu, pid, deleted["operations"])
    api.call("DELETE", f"/projects/{pid}/endpoints/{ep_id}", expect=204)
    api.call("GET", f"/projects/{pid}/endpoints/{ep_id}", expect=404)
    covered(api, ENDPOINT_OPS)


DB_ROLE_OPS = (
    "listProjectBranchDatabases",
    "getProjectBranchDatabase",
    "createProjectBranchDatabase",
    "deleteProjectBranchDatabase",
    "listProjectBranchRoles",
    "getProjectBranchRole",
    "createProjectBranchRole",
    "deleteProjectBranchRole",
    "getProjectBranchRolePassword",
    "resetProjectBranchRolePassword",
)


def test_databases_and_roles(api: ContractClient, emu: JamboEmulator) -> None:
    project = new_project(api, emu)
    pid = project["project"]["id"]
    base = f"/projects/{pid}/branches/{project['branch']['id']}"

    role = api.call("POST", f"{base}/roles", json={"role": {"name": "app"}}, expect=201)
    assert role["role"]["name"] == "app"
    assert role["role"]["password"]
    settle(api, emu, pid, role["operations"])
    roles = api.call("GET", f"{base}/roles", expect=200)["roles"]
    assert {r["name"] for r in roles} >= {"neondb_owner", "app"}
    assert "password" not in api.call("GET", f"{base}/roles/app", expect=200)["role"]
    first = api.call("GET", f"{base}/roles/app/reveal_password", expect=200)["password"]
    assert first == role["role"]["password"]
    reset = api.call("POST", f"{base}/roles/app/reset_password", expect=200)
    settle(api, emu, pid, reset["operations"])
    second = api.call("GET", f"{base}/roles/app/reveal_password", expect=200)["password"]
    assert second == reset["role"]["password"]
    assert second != first

    db = api.call(
        "POST", f"{base}/databases", json={"database": {"name": "app", "owner_name": "app"}}, expect=201
    )
    settle(api, emu, pid, db["operations"])
    api.call(
        "POST",
        f"{base}/databases",
        json={"database": {"name": "app", "owner_name": "app"}},
        expect=409,
    )
    dbs = api.call("GET", f"{base}/databases", expect=200)["databases"]
    assert {d["name"] for d in dbs} == {"neondb", "app"}
    assert api.call("GET", f"{base}/databases/app", expect=200)["database"]["owner_name"] == "app"
    gone = api.call("DELETE", f"{base}/databases/app", expect=200)
    settle(api, emu, pid, gone["operations"])
    api.call("DELETE", f"{base}/databases/app", expect=204)
    api.call("GET", f"{base}/databases/app", expect=404)

    gone = api.call("DELETE", f"{base}/roles/app", expect=200)
    settle(api, emu, pid, gone["operations"])
    api.call("DELETE", f"{base}/roles/app", expect=204)
    api.call("GET", f"{base}/roles/app/reveal_password", expect=404)
    covered(api, DB_ROLE_OPS)


OPERATION_OPS = ("listProjectOperations", "getProjectOperation")


def test_operations(api: ContractClient, emu: JamboEmulator) -> None:
    project = new_project(api, emu)
    pid = project["project"]["id"]
    for name in ("one", "two"):
        made = api.call(
            "POST",
            f"/projects/{pid}/branches",
            json={"branch": {"name": name}, "endpoints": [{"type": "read_write"}]},
            expect=201,
        )
        settle(api, emu, pid, made["operations"])
    everything = api.call("GET", f"/projects/{pid}/operations", expect=200)["operations"]
    assert len(everything) == 6
    created = [o["created_at"] for o in everything]
    assert created == sorted(created, reverse=True)  # newest first
    # Cursor pagination, 4 + 2.
    page = api.call("GET", f"/projects/{pid}/operations", params={"limit": 4}, expect=200)
    rest = api.call(
        "GET",
        f"/projects/{pid}/operations",
        params={"limit": 4, "cursor": page["pagination"]["cursor"]},
        expect=200,
    )
    assert [o["id"] for o in page["operations"] + rest["operations"]] == [o["id"] for o in everything]
    one = api.call("GET", f"/projects/{pid}/operations/{everything[0]['id']}", expect=200)
    assert one["operation"]["status"] == "finished"
    api.call("GET", f"/projects/{pid}/operations/5b3b1b5e-0000-4000-8000-000000000000", expect=404)
    covered(api, OPERATION_OPS)


MISC_OPS = ("getConnectionURI", "getCurrentUserInfo", "getActiveRegions")


def test_connection_uri_user_and_regions(api: ContractClient, emu: JamboEmulator) -> None:
    project = new_project(api, emu)
    pid = project["project"]["id"]
    params = {"database_name": "neondb", "role_name": "neondb_owner"}
    direct = api.call("GET", f"/projects/{pid}/connection_uri", params=params, expect=200)["uri"]
    pooled = api.call(
        "GET", f"/projects/{pid}/connection_uri", params={**params, "pooled": "true"}, expect=200
    )["uri"]
    ep = project["endpoints"][0]["id"]
    assert f"@{ep}." in direct
    assert f"@{ep}-pooler." in pooled
    assert direct.startswith("postgresql://neondb_owner:")
    assert direct.endswith("/neondb?sslmode=require")
    by_branch = api.call(
        "GET",
        f"/projects/{pid}/connection_uri",
        params={**params, "branch_id": project["branch"]["id"], "endpoint_id": ep},
        expect=200,
    )["uri"]
    assert by_branch == direct
    api.call("GET", f"/projects/{pid}/connection_uri", params={**params, "role_name": "nobody"}, expect=404)

    me = api.call("GET", "/users/me", expect=200)
    assert me["id"]
    regions = api.call("GET", "/regions", expect=200)["regions"]
    assert any(r["region_id"] == "aws-us-east-2" for r in regions)
    covered(api, MISC_OPS)


def test_ids_hosts_and_uris_have_the_real_shapes(api: ContractClient, emu: JamboEmulator) -> None:
    project = new_project(api, emu)
    # Observed: old-violet-32930710, br-noisy-breeze-a5e59rrb, ep-misty-sea-a5833nbi, uuid operations.
    assert re.fullmatch(r"[a-z]+-[a-z]+-\d{8}", project["project"]["id"])
    assert re.fullmatch(r"br-[a-z]+-[a-z]+-[a-z0-9]{8}", project["branch"]["id"])
    endpoint = project["endpoints"][0]
    assert re.fullmatch(r"ep-[a-z]+-[a-z]+-[a-z0-9]{8}", endpoint["id"])
    for op in project["operations"]:
        assert str(uuid.UUID(op["id"])) == op["id"]
    assert isinstance(project["databases"][0]["id"], int)
    key = api.call("POST", "/api_keys", json={"key_name": "shape"}, expect=200)
    assert isinstance(key["id"], int)
    uri = project["connection_uris"][0]
    params = uri["connection_parameters"]
    assert params["host"] == endpoint["host"]
    assert params["pooler_host"] == endpoint["host"].replace(endpoint["id"], f"{endpoint['id']}-pooler", 1)
    assert uri["connection_uri"] == (
        f"postgresql://{params['role']}:{params['password']}@{params['host']}/{params['database']}?sslmode=require"
    )
    # Passwords are generated per role.
    other = api.call(
        "POST",
        f"/projects/{project['project']['id']}/branches/{project['branch']['id']}/roles",
        json={"role": {"name": "second"}},
        expect=201,
    )
    assert other["role"]["password"] != params["password"]


def test_groups_cover_every_issue_operation() -> None:
    groups = API_KEY_OPS + PROJECT_OPS + BRANCH_OPS + ENDPOINT_OPS + DB_ROLE_OPS + OPERATION_OPS + MISC_OPS
    assert sorted(groups) == sorted(ISSUE_OPERATIONS)


# ---------------------------------------------------------------------------------------------
# error answers: right status, spec's GeneralError body with code/message/request_id


def test_missing_and_unknown_keys_are_401(api: ContractClient) -> None:
    api.call("GET", "/projects", auth=None, expect=401)
    body = api.call("GET", "/projects", auth="not-a-key-s3cret", expect=401)
    assert "s3cret" not in body["message"]  # the presented key is never echoed
    api.call("POST", "/projects", json={"project": {}}, auth="not-a-key", expect=401)


def test_unknown_resources_are_404_naming_them(api: ContractClient, emu: JamboEmulator) -> None:
    assert api.call("GET", "/projects/no-such-project", expect=404)["message"] == "project not found"
    project = new_project(api, emu)
    pid = project["project"]["id"]
    assert api.call("GET", f"/projects/{pid}/branches/br-none", expect=404)["message"] == "branch not found"
    api.call("GET", f"/projects/{pid}/endpoints/ep-none", expect=404)
    api.call("GET", f"/projects/{pid}/branches/{project['branch']['id']}/databases/none", expect=404)


def test_invalid_requests_are_400_naming_the_field(api: ContractClient, emu: JamboEmulator) -> None:
    project = new_project(api, emu)
    base = f"/projects/{project['project']['id']}/branches"
    body = api.call("POST", base, content=b'{"branch": {', expect=400)
    assert body["message"]
    body = api.call("POST", base, json={"branch": {"name": 7}}, expect=400, valid_request=False)
    assert "name" in body["message"]
    body = api.call(
        "POST", base, json={"branch": {"parent_id": "NOT_AN_ID"}}, expect=400, valid_request=False
    )
    assert "parent_id" in body["message"]
    body = api.call("POST", "/projects", json={}, expect=400, valid_request=False)
    assert "project" in body["message"]
    for path, field_name in (
        ("/projects/Bad_Id!", "project_id"),
        (f"{base}/BR_X", "branch_id"),
        (f"/projects/{project['project']['id']}/endpoints/{'e' * 61}", "endpoint_id"),
    ):
        assert field_name in api.call("GET", path, expect=400)["message"]
    api.call("GET", base, params={"limit": "lots"}, expect=400, valid_request=False)


def test_expires_at_rules_are_400_naming_the_rule(api: ContractClient, emu: JamboEmulator) -> None:
    project = new_project(api, emu)
    base = f"/projects/{project['project']['id']}/branches"
    past = api.call("POST", base, json={"branch": {"name": "p", "expires_at": in_days(-1)}}, expect=400)
    far = api.call("POST", base, json={"branch": {"name": "f", "expires_at": in_days(31)}}, expect=400)
    prot = api.call(
        "POST", base, json={"branch": {"name": "g", "protected": True, "expires_at": in_days(1)}}, expect=400
    )
    assert "expires_at" in past["message"]
    assert "expires_at" in far["message"]
    assert "expires_at" in prot["message"]
    assert len({past["message"], far["message"], prot["message"]}) == 3


def test_duplicate_branch_name_is_409(api: ContractClient, emu: JamboEmulator) -> None:
    project = new_project(api, emu)
    pid = project["project"]["id"]
    made = api.call("POST", f"/projects/{pid}/branches", json={"branch": {"name": "dup"}}, expect=201)
    settle(api, emu, pid, made["operations"])
    body = api.call("POST", f"/projects/{pid}/branches", json={"branch": {"name": "dup"}}, expect=409)
    assert body["message"] == "branch already exists"


def test_conflicting_operation_in_flight_is_423(api: ContractClient, emu: JamboEmulator) -> None:
    project = new_project(api, emu)
    pid = project["project"]["id"]
    emu.set_operation_durations(default=5.0)
    api.call("POST", f"/projects/{pid}/branches", json={"branch": {"name": "slow"}}, expect=201)
    body = api.call("POST", f"/projects/{pid}/branches", json={"branch": {"name": "next"}}, expect=423)
    assert body["message"] == (
        "project already has running conflicting operations, scheduling of new ones is prohibited"
    )


def test_rate_limit_is_429(api: ContractClient, emu: JamboEmulator) -> None:
    emu.set_rate_limits(enabled=True)
    # Past the per-route burst limit within its one-second window (a limit of 5 rather than the
    # real 40, so that a loaded machine still sends them within the second).
    emu.ctx.limiter.per_route_per_second = 5
    for _ in range(8):
        api.call("GET", "/regions", expect=(200, 429))
    assert api.exercised["getActiveRegions"] == {200, 429}


def test_injected_faults_answer_the_error_shape(api: ContractClient, emu: JamboEmulator) -> None:
    statuses = (422, 500, 502, 503, 524)
    emu.inject_fault(
        "GET",
        "/regions",
        faults=[
            {"kind": "rate_limit", "retry_after": "2"},
            {"kind": "rate_limit", "retry_after": None},
            {"kind": "locked"},
            *({"kind": "status", "status": status} for status in statuses),
        ],
    )
    api.call("GET", "/regions", expect=429)
    assert api.last_response.headers.get("retry-after") == "2"
    api.call("GET", "/regions", expect=429)
    assert "retry-after" not in api.last_response.headers
    api.call("GET", "/regions", expect=423)
    for status in statuses:
        api.call("GET", "/regions", expect=status)
    api.call("GET", "/regions", expect=200)  # the sequence is played once


def test_project_scoped_key_sees_only_its_project(spec: ApiSpec) -> None:
    with JamboEmulator(
        api_key="personal",
        project_scoped_keys={"scoped": "old-violet-32930710"},
        deterministic=True,
        data_plane="off",
    ) as emulator:
        emulator.set_rate_limits(enabled=False)
        personal = ContractClient(spec, emulator.base_url, "personal")
        scoped = ContractClient(spec, emulator.base_url, "scoped")
        try:
            other = personal.call("POST", "/projects", json={"project": {"name": "other"}}, expect=201)
            listed = scoped.call("GET", "/projects", expect=200)["projects"]
            assert [p["id"] for p in listed] == ["old-violet-32930710"]
            scoped.call("GET", "/projects/old-violet-32930710", expect=200)
            scoped.call("GET", f"/projects/{other['project']['id']}", expect=(403, 404))
            scoped.call("GET", f"/projects/{other['project']['id']}/branches", expect=(403, 404))
        finally:
            personal.close()
            scoped.close()


def test_client_request_id_is_echoed(api: ContractClient) -> None:
    body = api.call("GET", "/projects/nope", headers={"X-Request-ID": "my-req-1"}, expect=404)
    assert body["request_id"] == "my-req-1"


# ---------------------------------------------------------------------------------------------
# issue 11: organizations and their keys, shared projects, database update, permissions, /auth

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


RECOVERY_OPS = ("recoverProject", "recoverProjectBranch")
WEEK = 7 * 86400


def test_deleted_branches_are_recoverable_for_seven_days(api: ContractClient, emu: JamboEmulator) -> None:
    project = new_project(api, emu, "branch-recovery")
    pid, main = project["project"]["id"], project["branch"]["id"]
    base = f"/projects/{pid}/branches"
    dev = api.call(
        "POST",
        base,
        json={"branch": {"name": "ttl-dev", "expires_at": in_days(1)}, "endpoints": [{"type": "read_write"}]},
        expect=201,
    )
    settle(api, emu, pid, dev["operations"])
    bid, eid = dev["branch"]["id"], dev["endpoints"][0]["id"]
    gone = api.call("DELETE", f"{base}/{bid}", expect=200)
    assert "recovery" not in gone["branch"]  # only the include_deleted listing carries it
    settle(api, emu, pid, gone["operations"])

    # Gone from every other operation; listed only with include_deleted, with its recovery info.
    api.call("GET", f"{base}/{bid}", expect=404)
    api.call("DELETE", f"{base}/{bid}", expect=204)
    assert bid not in [b["id"] for b in api.call("GET", base, expect=200)["branches"]]
    listed = api.call("GET", base, params={"include_deleted": "true"}, expect=200)["branches"]
    (deleted,) = [b for b in listed if b["id"] == bid]
    assert deleted["recovery"]["deletion_method"] == "user"
    window = dt.datetime.fromisoformat(deleted["recovery"]["recoverable_until"].replace("Z", "+00:00"))
    start = dt.datetime.fromisoformat(deleted["recovery"]["deleted_at"].replace("Z", "+00:00"))
    assert window - start == dt.timedelta(days=7)
    assert "recovery" not in next(b for b in listed if b["id"] == main)

    # Recovered: same id, name and compute (idle, same host); a TTL branch becomes non-TTL.
    back = api.call("POST", f"{base}/{bid}/recover", expect=200)
    assert (back["branch"]["id"], back["branch"]["name"]) == (bid, "ttl-dev")
    assert not {"expires_at", "ttl_interval_seconds", "recovery"} & set(back["branch"])
    assert [(e["id"], e["current_state"], e["host"]) for e in back["endpoints"]] == [
        (eid, "idle", dev["endpoints"][0]["host"])
    ]
    assert api.call("GET", f"{base}/{bid}", expect=200)["branch"]["id"] == bid
    assert api.call("GET", f"/projects/{pid}/endpoints/{eid}", expect=200)["endpoint"]["branch_id"] == bid
    assert "not deleted" in api.call("POST", f"{base}/{bid}/recover", expect=400)["message"]
    api.call("POST", f"{base}/br-never-was-1/recover", expect=404)

    # A branch deleted by its TTL says so, and is recoverable too.
    ttl = api.call("POST", base, json={"branch": {"name": "ttl", "expires_at": in_days(0.5)}}, expect=201)
    settle(api, emu, pid, ttl["operations"])
    emu.advance(86400)
    listed = api.call("GET", base, params={"include_deleted": "true"}, expect=200)["branches"]
    assert next(b for b in listed if b["id"] == ttl["branch"]["id"])["recovery"]["deletion_method"] == "ttl"

    # A new branch took the deleted one's name: recovery is a conflict, until it is renamed.
    settle(api, emu, pid, api.call("DELETE", f"{base}/{bid}", expect=200)["operations"])
    other = api.call("POST", base, json={"branch": {"name": "ttl-dev"}}, expect=201)
    settle(api, emu, pid, other["operations"])
    assert "ttl-dev" in api.call("POST", f"{base}/{bid}/recover", expect=409)["message"]
    api.call("PATCH", f"{base}/{other['branch']['id']}", json={"branch": {"name": "renamed"}}, expect=200)
    api.call("POST", f"{base}/{bid}/recover", expect=200)

    # A child cannot come back before its deleted parent.
    child = api.call("POST", base, json={"branch": {"name": "child", "parent_id": bid}}, expect=201)
    settle(api, emu, pid, child["operations"])
    settle(api, emu, pid, api.call("DELETE", f"{base}/{child['branch']['id']}", expect=200)["operations"])
    settle(api, emu, pid, api.call("DELETE", f"{base}/{bid}", expect=200)["operations"])
    parent_first = api.call("POST", f"{base}/{child['branch']['id']}/recover", expect=400)
    assert f"{bid} of branch" in parent_first["message"]
    assert "recover it first" in parent_first["message"]

    # hard_delete: no recovery window at all; past the window: gone for good (404).
    hard = api.call("POST", base, json={"branch": {"name": "hard"}}, expect=201)
    settle(api, emu, pid, hard["operations"])
    hard_id = hard["branch"]["id"]
    api.call("DELETE", f"{base}/{hard_id}", params={"hard_delete": "true"}, expect=200)
    api.call("POST", f"{base}/{hard_id}/recover", expect=404)
    emu.advance(WEEK)
    api.call("POST", f"{base}/{bid}/recover", expect=404)
    listed = api.call("GET", base, params={"include_deleted": "true"}, expect=200)["branches"]
    assert [b["id"] for b in listed if "recovery" in b] == []
    covered(api, ("recoverProjectBranch",))


def test_deleted_projects_are_recoverable_for_seven_days(api: ContractClient, emu: JamboEmulator) -> None:
    project = new_project(api, emu, "project-recovery")
    pid = project["project"]["id"]
    dev = api.call(
        "POST",
        f"/projects/{pid}/branches",
        json={"branch": {"name": "dev"}, "endpoints": [{"type": "read_write"}]},
        expect=201,
    )
    settle(api, emu, pid, dev["operations"])
    api.call("DELETE", f"/projects/{pid}", expect=200)

    api.call("GET", f"/projects/{pid}", expect=404)
    assert pid not in [p["id"] for p in api.call("GET", "/projects", expect=200)["projects"]]
    (listed,) = api.call("GET", "/projects", params={"recoverable": "true"}, expect=200)["projects"]
    assert listed["id"] == pid
    assert listed["deleted_at"] < listed["recoverable_until"]

    back = api.call("POST", f"/projects/{pid}/recover", expect=200)
    assert back["project"]["id"] == pid
    assert sorted(b["name"] for b in back["branches"]) == ["dev", "main"]
    endpoints = api.call("GET", f"/projects/{pid}/endpoints", expect=200)["endpoints"]
    assert sorted(e["id"] for e in endpoints) == sorted(
        [project["endpoints"][0]["id"], dev["endpoints"][0]["id"]]
    )
    assert {e["current_state"] for e in endpoints} == {"idle"}
    uri = api.call(
        "GET",
        f"/projects/{pid}/connection_uri",
        params={"branch_id": project["branch"]["id"], "database_name": "neondb", "role_name": "neondb_owner"},
        expect=200,
    )["uri"]
    assert uri == project["connection_uris"][0]["connection_uri"]  # connection strings stay valid
    assert api.call("GET", "/projects", params={"recoverable": "true"}, expect=200)["projects"] == []
    assert "not deleted" in api.call("POST", f"/projects/{pid}/recover", expect=400)["message"]

    api.call("DELETE", f"/projects/{pid}", expect=200)
    emu.advance(WEEK)
    api.call("POST", f"/projects/{pid}/recover", expect=404)
    assert api.call("GET", "/projects", params={"recoverable": "true"}, expect=200)["projects"] == []
    covered(api, ("recoverProject",))


def test_groups_cover_every_issue_11_operation() -> None:
    assert sorted(ORG_OPS + SHARING_OPS + DATABASE_OPS + RECOVERY_OPS) == sorted(ISSUE_11_OPERATIONS)


def _bucket_names(api: ContractClient, branch_path: str) -> list[str]:
    return [b["name"] for b in api.call("GET", f"{branch_path}/buckets", expect=200)["buckets"]]


def test_buckets_are_inherited_as_they_were_at_the_fork(api: ContractClient, emu: JamboEmulator) -> None:
    body = new_project(api, emu, "buckets")
    pid, main_id = body["project"]["id"], body["branch"]["id"]
    branches, main = f"/projects/{pid}/branches", f"/projects/{pid}/branches/{main_id}"
    assert _bucket_names(api, main) == []
    assets = api.call("POST", f"{main}/buckets", json={"name": "assets"}, expect=201)["bucket"]
    assert assets["access_level"] == "private"
    public = api.call(
        "POST", f"{main}/buckets", json={"name": "public", "access_level": "public_read"}, expect=201
    )["bucket"]
    assert public["access_level"] == "public_read"
    assert "already" in api.call("POST", f"{main}/buckets", json={"name": "assets"}, expect=409)["message"]
    api.call("POST", f"{main}/buckets", json={"name": ""}, expect=400, valid_request=False)
    api.call(
        "POST", f"{main}/buckets", json={"name": "x", "access_level": "open"}, expect=400, valid_request=False
    )

    emu.advance(10)
    dev = api.call("POST", branches, json={"branch": {"name": "dev"}}, expect=201)
    settle(api, emu, pid, dev["operations"])
    dev_path = f"{branches}/{dev['branch']['id']}"
    api.call("POST", f"{main}/buckets", json={"name": "late"}, expect=201)
    # Inherited with the ancestor's creation time; what the parent made after the fork is not.
    inherited = api.call("GET", f"{dev_path}/buckets", expect=200)["buckets"]
    assert inherited == [assets, public]
    assert _bucket_names(api, main) == ["assets", "late", "public"]
    # A point-in-time child sees its parent as of that time.
    at = dt.datetime.fromisoformat(assets["created_at"].replace("Z", "+00:00")) + dt.timedelta(seconds=5)
    pit = api.call(
        "POST",
        branches,
        json={"branch": {"name": "pit", "parent_timestamp": at.isoformat().replace("+00:00", "Z")}},
        expect=201,
    )
    settle(api, emu, pid, pit["operations"])
    assert _bucket_names(api, f"{branches}/{pit['branch']['id']}") == ["assets", "public"]

    # Deleting an inherited bucket hides it on the child only; the name is free there again.
    api.call("DELETE", f"{dev_path}/buckets/assets", expect=204)
    api.call("DELETE", f"{dev_path}/buckets/assets", expect=404)
    assert _bucket_names(api, dev_path) == ["public"]
    assert _bucket_names(api, main) == ["assets", "late", "public"]
    own = api.call("POST", f"{dev_path}/buckets", json={"name": "assets"}, expect=201)["bucket"]
    assert own["created_at"] >= assets["created_at"]
    api.call("DELETE", f"{main}/buckets/late", expect=204)
    assert _bucket_names(api, main) == ["assets", "public"]
    api.call("DELETE", f"{main}/buckets/never-was", expect=404)
    api.call("GET", f"{branches}/br-never-was-1/buckets", expect=404)
    api.call("GET", f"/projects/no-such-project-1/branches/{main_id}/buckets", expect=404)

    # Buckets go and come back with their branch, and with their project.
    api.call("DELETE", dev_path, expect=200)
    api.call("GET", f"{dev_path}/buckets", expect=404)
    api.call("POST", f"{dev_path}/recover", expect=200)
    assert _bucket_names(api, dev_path) == ["assets", "public"]
    api.call("DELETE", f"/projects/{pid}", expect=200)
    gone = api.call("POST", f"{main}/buckets", json={"name": "more"}, expect=410)
    assert "deleted" in gone["message"]
    api.call("GET", f"{main}/buckets", expect=404)
    api.call("POST", f"/projects/{pid}/recover", expect=200)
    assert _bucket_names(api, main) == ["assets", "public"]
    covered(api, BUCKET_OPERATIONS)


def test_a_branch_has_none_of_the_services_the_emulator_lacks(
    api: ContractClient, emu: JamboEmulator
) -> None:
    body = new_project(api, emu, "services")
    branch = f"/projects/{body['project']['id']}/branches/{body['branch']['id']}"
    api.call("GET", f"{branch}/auth", expect=404)
    assert "not enabled" in api.call("GET", f"{branch}/data-api/neondb", expect=404)["message"]
    assert api.call("GET", f"{branch}/data-api/nodb", expect=404)["message"] == "database not found"
    assert api.call("GET", f"{branch}/functions", params={"limit": 10}, expect=200) == {"functions": []}
    api.call("GET", f"{branch}/functions", params={"cursor": "abc"}, expect=400)
    api.call("GET", f"{branch}/functions", params={"limit": 0}, expect=400)
    assert api.call("GET", f"{branch}/credentials", expect=200) == {"credentials": []}
    # The branch itself must exist, as for any branch read.
    missing = f"/projects/{body['project']['id']}/branches/br-never-was-1"
    for path in ("auth", "data-api/neondb", "functions", "credentials"):
        assert api.call("GET", f"{missing}/{path}", expect=404)["message"] == "branch not found"
    # Setting one up is still not emulated.
    api.call("POST", f"{branch}/auth", json={"auth_provider": "better_auth"}, expect=501)
    # The two single-resource reads only ever answer 404 (nothing is there to get).
    covered(api, ("listProjectBranchFunctions", "listCredentials"))
    assert {op for op in BRANCH_SERVICE_READS if 404 in api.exercised.get(op, set())} == set(
        BRANCH_SERVICE_READS
    )


# ---------------------------------------------------------------------------------------------
# snapshots and backup schedules (issue 21)


def test_snapshots_and_backup_schedules(api: ContractClient, emu: JamboEmulator) -> None:
    created = new_project(api, emu, "snapshots")
    pid, main = created["project"]["id"], created["branch"]
    main_path = f"/projects/{pid}/branches/{main['id']}"

    taken = api.call(
        "POST", f"{main_path}/snapshot", params={"name": "nightly", "expires_at": in_days(7)}, expect=200
    )
    snap = taken["snapshot"]
    assert (snap["name"], snap["source_branch_id"], snap["manual"]) == ("nightly", main["id"], True)
    assert snap["id"].startswith("snap-")
    assert "expires_at" in snap
    settle(api, emu, pid, taken["operations"])
    listed = api.call("GET", f"/projects/{pid}/snapshots", expect=200)["snapshots"]
    assert [s["id"] for s in listed] == [snap["id"]]

    renamed = api.call(
        "PATCH", f"/projects/{pid}/snapshots/{snap['id']}", json={"snapshot": {"name": "kept"}}, expect=200
    )
    assert renamed["snapshot"]["name"] == "kept"

    restored = api.call(
        "POST", f"/projects/{pid}/snapshots/{snap['id']}/restore", json={"name": "preview"}, expect=200
    )
    branch = restored["branch"]
    assert (branch["name"], branch["restored_from"], branch["restored_as"]) == (
        "preview",
        snap["id"],
        main["id"],
    )
    assert branch["restore_status"] == "restored"
    assert "parent_id" not in branch
    settle(api, emu, pid, restored["operations"])

    finalized = api.call(
        "POST",
        f"/projects/{pid}/branches/{branch['id']}/finalize_restore",
        json={"name": "main-old"},
        expect=200,
    )
    assert {op["action"] for op in finalized["operations"]} == {"suspend_compute", "start_compute"}
    settle(api, emu, pid, finalized["operations"])
    after = api.call("GET", f"/projects/{pid}/branches/{branch['id']}", expect=200)["branch"]
    assert (after["name"], after["restore_status"], after["default"]) == ("main", "finalized", True)
    old = api.call("GET", main_path, expect=200)["branch"]
    assert (old["name"], old["default"]) == ("main-old", False)
    endpoints = api.call("GET", f"/projects/{pid}/endpoints", expect=200)["endpoints"]
    assert [e["branch_id"] for e in endpoints] == [branch["id"]]
    again = api.call("POST", f"/projects/{pid}/branches/{branch['id']}/finalize_restore", expect=400)
    assert "already finalized" in again["message"]

    # Finalized at once: the computes move in the same request.
    direct = api.call(
        "POST",
        f"/projects/{pid}/snapshots/{snap['id']}/restore",
        json={"target_branch_id": branch["id"], "finalize_restore": True},
        expect=200,
    )
    assert direct["branch"]["restore_status"] == "finalized"
    assert direct["branch"]["name"] == "main"
    settle(api, emu, pid, direct["operations"])

    deleted = api.call("DELETE", f"/projects/{pid}/snapshots/{snap['id']}", expect=202)
    settle(api, emu, pid, deleted["operations"])
    api.call("DELETE", f"/projects/{pid}/snapshots/{snap['id']}", expect=404)
    assert api.call("GET", f"/projects/{pid}/snapshots", expect=200)["snapshots"] == []

    schedule = {"schedule": [{"frequency": "daily", "hour": 3, "retention_seconds": 7 * 86400}]}
    current = f"/projects/{pid}/branches/{direct['branch']['id']}"
    assert api.call("GET", f"{current}/backup_schedule", expect=200) == {"schedule": []}
    assert api.call("PUT", f"{current}/backup_schedule", json=schedule, expect=200) == {}
    assert api.call("GET", f"{current}/backup_schedule", expect=200) == {
        "schedule": [{"frequency": "daily", "hour": 3, "retention_seconds": 7 * 86400}]
    }
    covered(api, SNAPSHOT_OPERATIONS)


def test_snapshot_rules_answer_the_services_errors(api: ContractClient, emu: JamboEmulator) -> None:
    created = new_project(api, emu, "snapshot-rules")
    pid, main = created["project"]["id"], created["branch"]
    main_path = f"/projects/{pid}/branches/{main['id']}"
    child = api.call("POST", f"/projects/{pid}/branches", json={"branch": {"name": "child"}}, expect=201)
    settle(api, emu, pid, child["operations"])
    refused = api.call("POST", f"/projects/{pid}/branches/{child['branch']['id']}/snapshot", expect=400)
    assert "root branches" in refused["message"]
    both = api.call(
        "POST", f"{main_path}/snapshot", params={"lsn": "0/1", "timestamp": in_days(-0.001)}, expect=400
    )
    assert "lsn and timestamp cannot be specified at the same time" in both["message"]
    past = api.call("POST", f"{main_path}/snapshot", params={"expires_at": in_days(-1)}, expect=400)
    assert "expires_at" in past["message"]
    hourly = api.call(
        "PUT", f"{main_path}/backup_schedule", json={"schedule": [{"frequency": "hourly"}]}, expect=400
    )
    assert "daily, weekly, monthly" in hourly["message"]
    api.call("POST", f"/projects/{pid}/snapshots/snap-none-a5000000/restore", expect=404)
    not_restored = api.call("POST", f"{main_path}/finalize_restore", expect=400)
    assert "not restored from a snapshot" in not_restored["message"]


def test_the_manual_snapshot_limit_answers_the_services_error(spec: ApiSpec) -> None:
    from jambo_emulator.state.config import EmulatorConfig

    config = EmulatorConfig(
        api_keys=["free-key"], deterministic=True, operation_duration=0.0, manual_snapshot_limit=1
    )
    with JamboEmulator(config=config, data_plane="off") as emu:
        api = ContractClient(spec, emu.base_url, emu.api_key)
        try:
            created = new_project(api, emu, "free-plan")
            pid, main = created["project"]["id"], created["branch"]["id"]
            first = api.call("POST", f"/projects/{pid}/branches/{main}/snapshot", expect=200)
            settle(api, emu, pid, first["operations"])
            over = api.call("POST", f"/projects/{pid}/branches/{main}/snapshot", expect=422)
            assert over["code"] == "SNAPSHOTS_LIMIT_EXCEEDED"
            assert "manual snapshots limit exceeded" in over["message"]
            # Deleting one frees the slot; scheduled snapshots never count.
            gone = api.call("DELETE", f"/projects/{pid}/snapshots/{first['snapshot']['id']}", expect=202)
            settle(api, emu, pid, gone["operations"])
            api.call("POST", f"/projects/{pid}/branches/{main}/snapshot", expect=200)
        finally:
            api.close()


def test_expired_and_scheduled_snapshots_follow_the_emulator_clock(
    api: ContractClient, emu: JamboEmulator
) -> None:
    created = new_project(api, emu, "snapshot-clock")
    pid, main = created["project"]["id"], created["branch"]["id"]
    main_path = f"/projects/{pid}/branches/{main}"
    short = api.call("POST", f"{main_path}/snapshot", params={"expires_at": in_days(1 / 24)}, expect=200)
    settle(api, emu, pid, short["operations"])
    # Twelve hours away from the (deterministic) clock, which starts at real time.
    hour = (dt.datetime.now(dt.UTC).hour + 12) % 24
    schedule = {"schedule": [{"frequency": "daily", "hour": hour, "retention_seconds": 2 * 86400}]}
    api.call("PUT", f"{main_path}/backup_schedule", json=schedule, expect=200)

    emu.advance(2 * 3600)  # past the expiry, not yet at the schedule's hour
    assert api.call("GET", f"/projects/{pid}/snapshots", expect=200)["snapshots"] == []

    emu.advance(86400)  # the hour came once: one daily snapshot, not manual, kept two days
    listed = api.call("GET", f"/projects/{pid}/snapshots", expect=200)["snapshots"]
    daily = [s for s in listed if not s["manual"]]
    assert len(listed) == len(daily) == 1
    assert "daily" in daily[0]["name"]
    assert daily[0]["timestamp"].endswith(f"T{hour:02d}:00:00Z")
    emu.advance(3 * 86400)  # retention over: that one is gone, the latest midnight's is there
    listed = api.call("GET", f"/projects/{pid}/snapshots", expect=200)["snapshots"]
    assert daily[0]["id"] not in [s["id"] for s in listed]
    assert len(listed) == 1
    assert not listed[0]["manual"]
