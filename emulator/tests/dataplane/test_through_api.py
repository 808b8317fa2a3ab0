"""End to end: branches made through the emulator's HTTP API hold real data, and the URIs the API
returns (GET /connection_uri, direct and pooled) connect to exactly that branch."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest

from jambo_emulator import JamboEmulator
from jambo_emulator.dataplane.pg_server import PostgresServer
from jambo_emulator.dataplane.postgres import PostgresDataPlane

from .support import kept_while_paused, server_databases


class Api:
    def __init__(self, emu: JamboEmulator) -> None:
        self.emu = emu
        self.http = httpx.Client(
            base_url=emu.base_url, headers={"Authorization": f"Bearer {emu.api_key}"}, timeout=60
        )

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.http.request(method, path, **kwargs)
        assert response.status_code < 300, f"{method} {path} -> {response.status_code} {response.text}"
        body = response.json() if response.content else {}
        self.wait(body)
        return body

    def wait(self, body: dict[str, Any]) -> None:
        for op in body.get("operations", []):
            deadline = time.monotonic() + 60
            while True:
                response = self.http.get(f"/projects/{op['project_id']}/operations/{op['id']}")
                assert response.status_code == 200, response.text
                status = response.json()
                if status["operation"]["status"] == "finished":
                    break
                assert status["operation"]["status"] in ("scheduling", "running"), status
                assert time.monotonic() < deadline, status
                time.sleep(0.02)

    def uri(
        self,
        project_id: str,
        branch_id: str,
        *,
        role: str = "neondb_owner",
        database: str = "neondb",
        pooled: bool = False,
    ) -> str:
        params = {"branch_id": branch_id, "database_name": database, "role_name": role, "pooled": pooled}
        uri: str = self.call("GET", f"/projects/{project_id}/connection_uri", params=params)["uri"]
        return uri


@pytest.fixture(scope="module")
def api() -> Iterator[Api]:
    with JamboEmulator(
        api_key="dp-key", deterministic=True, operation_duration=0.0, data_plane="auto", rate_limits=False
    ) as emu:
        assert emu.ctx.data_plane.enabled
        client = Api(emu)
        yield client
        client.http.close()


def _query(uri: str, sql: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(uri, autocommit=True) as conn:
        cur = conn.execute(sql)
        return cur.fetchall() if cur.description else []


def _new_project(api: Api) -> tuple[str, str]:
    body = api.call("POST", "/projects", json={"project": {"name": "dp-e2e"}})
    return body["project"]["id"], body["branch"]["id"]


def test_branch_lifecycle_through_the_api(api: Api) -> None:
    pid, main = _new_project(api)
    main_uri = api.uri(pid, main)
    assert "/neondb?" in main_uri
    assert "sslmode=require" in main_uri
    _query(main_uri, "CREATE TABLE events (id int PRIMARY KEY, kind text)")
    _query(main_uri, "INSERT INTO events VALUES (1, 'signup'), (2, 'login')")

    created = api.call(
        "POST",
        f"/projects/{pid}/branches",
        json={"branch": {"name": "preview"}, "endpoints": [{"type": "read_write"}]},
    )
    child = created["branch"]["id"]
    child_direct, child_pooled = api.uri(pid, child), api.uri(pid, child, pooled=True)
    assert "-pooler" in child_pooled
    assert child_direct != main_uri

    # The copy holds the parent's data at creation; later writes on each side stay apart.
    _query(child_pooled, "INSERT INTO events VALUES (3, 'child')")
    _query(main_uri, "INSERT INTO events VALUES (4, 'parent')")
    assert _query(child_direct, "SELECT id FROM events ORDER BY id") == [(1,), (2,), (3,)]
    assert _query(main_uri, "SELECT id FROM events ORDER BY id") == [(1,), (2,), (4,)]

    # compare_schema is a real diff of real DDL.
    _query(child_direct, "ALTER TABLE events ADD COLUMN payload jsonb")
    diff = api.call(
        "GET",
        f"/projects/{pid}/branches/{child}/compare_schema",
        params={"base_branch_id": main, "db_name": "neondb"},
    )["diff"]
    assert "+    payload jsonb" in diff
    schema = api.call("GET", f"/projects/{pid}/branches/{child}/schema", params={"db_name": "neondb"})["sql"]
    assert "CREATE TABLE public.events" in schema

    # Reset from the parent brings the parent's current data.
    api.call("POST", f"/projects/{pid}/branches/{child}/restore", json={"source_branch_id": main})
    assert _query(api.uri(pid, child), "SELECT id FROM events ORDER BY id") == [(1,), (2,), (4,)]

    # Delete drops the data: the URI no longer connects.
    api.call("DELETE", f"/projects/{pid}/branches/{child}")
    with pytest.raises(psycopg.OperationalError):
        _query(child_direct, "SELECT 1")
    assert _query(main_uri, "SELECT count(*) FROM events") == [(3,)]


def test_api_created_role_and_database_connect(api: Api) -> None:
    pid, main = _new_project(api)
    role = api.call("POST", f"/projects/{pid}/branches/{main}/roles", json={"role": {"name": "app_user"}})
    assert role["role"]["password"]
    api.call(
        "POST",
        f"/projects/{pid}/branches/{main}/databases",
        json={"database": {"name": "appdb", "owner_name": "app_user"}},
    )
    uri = api.uri(pid, main, role="app_user", database="appdb")
    _query(uri, "CREATE TABLE t AS SELECT 1 AS x")
    assert _query(uri, "SELECT split_part(current_user, '~', 1)") == [("app_user",)]

    # A new password from the API is the one that works.
    api.call("POST", f"/projects/{pid}/branches/{main}/roles/app_user/reset_password")
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        _query(uri, "SELECT 1")
    assert _query(api.uri(pid, main, role="app_user", database="appdb"), "SELECT x FROM t") == [(1,)]


def test_suspend_and_start_through_the_api(api: Api) -> None:
    pid, main = _new_project(api)
    endpoint = api.call("GET", f"/projects/{pid}/branches/{main}/endpoints")["endpoints"][0]["id"]
    uri = api.uri(pid, main)
    _query(uri, "SELECT 1")
    api.call("POST", f"/projects/{pid}/endpoints/{endpoint}/suspend")
    with pytest.raises(psycopg.OperationalError):
        _query(uri, "SELECT 1")
    api.call("POST", f"/projects/{pid}/endpoints/{endpoint}/start")
    assert _query(api.uri(pid, main), "SELECT 1") == [(1,)]


def test_read_only_endpoint_through_the_api(api: Api) -> None:
    pid, main = _new_project(api)
    body = api.call(
        "POST", f"/projects/{pid}/endpoints", json={"endpoint": {"branch_id": main, "type": "read_only"}}
    )
    endpoint = body["endpoint"]
    params = {"endpoint_id": endpoint["id"], "database_name": "neondb", "role_name": "neondb_owner"}
    uri = api.call("GET", f"/projects/{pid}/connection_uri", params=params)["uri"]
    assert endpoint["host"] in uri  # the API's real-shaped host stays in the URI
    assert _query(uri, "SELECT 1") == [(1,)]
    with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
        _query(uri, "CREATE TABLE nope (x int)")


def _status(api: Api, op: dict[str, Any]) -> str:
    status: str = api.http.get(f"/projects/{op['project_id']}/operations/{op['id']}").json()["operation"][
        "status"
    ]
    return status


def test_uris_in_create_responses_connect_once_the_compute_started(api: Api) -> None:
    """As on the service: the create response's URI is the final one (refused until started)."""
    control = str(api.http.base_url).rstrip("/").replace("/api/v2", "/_emulator")
    project = api.call("POST", "/projects", json={"project": {"name": "dp-uris"}})
    pid = project["project"]["id"]
    project_uri = project["connection_uris"][0]["connection_uri"]
    assert _query(project_uri, "SELECT 1") == [(1,)]
    httpx.put(f"{control}/operation_durations", json={"default": 5.0}).raise_for_status()
    try:
        created = api.http.post(
            f"/projects/{pid}/branches",
            json={"branch": {"name": "uri-now"}, "endpoints": [{"type": "read_write"}]},
        ).json()
        uri = created["connection_uris"][0]["connection_uri"]
        assert uri == api.uri(pid, created["branch"]["id"])
        with pytest.raises(psycopg.OperationalError, match="refused"):
            _query(uri, "SELECT 1")
        # create_branch, then start_compute: each needs the (manual) clock moved past its 5 s.
        deadline = time.monotonic() + 60
        while not all(_status(api, op) == "finished" for op in created["operations"]):
            assert time.monotonic() < deadline
            httpx.post(f"{control}/clock/advance", json={"seconds": 5}).raise_for_status()
            time.sleep(0.02)
    finally:
        httpx.put(f"{control}/operation_durations", json={"default": 0.0}).raise_for_status()
    assert _query(uri, "SELECT split_part(current_user, '~', 1)") == [("neondb_owner",)]
    pooled = uri.replace(".us-east-2", "-pooler.us-east-2", 1)
    assert _query(pooled, "SELECT 1") == [(1,)]


def _server(api: Api, pid: str, bid: str) -> PostgresServer:
    """The data plane's server holding the branch's databases."""
    plane = api.emu.ctx.data_plane
    assert isinstance(plane, PostgresDataPlane)
    return plane.branch_server(pid, bid)


def _physical(api: Api, uri: str) -> str:
    name: str = _query(uri, "SELECT current_database()")[0][0]
    return name


def test_a_recovered_branch_and_project_have_their_data(api: Api) -> None:
    pid, main = _new_project(api)
    created = api.call(
        "POST",
        f"/projects/{pid}/branches",
        json={"branch": {"name": "keep"}, "endpoints": [{"type": "read_write"}]},
    )
    bid = created["branch"]["id"]
    uri = created["connection_uris"][0]["connection_uri"]
    _query(uri, "CREATE TABLE kept AS SELECT 42 AS answer")
    physical = _physical(api, uri)
    assert physical == "neondb"
    server = _server(api, pid, bid)

    # Deleted: unreachable, but the real database is kept for the recovery window.
    api.call("DELETE", f"/projects/{pid}/branches/{bid}")
    with pytest.raises(psycopg.OperationalError):
        _query(uri, "SELECT 1")
    api.emu.ctx.runner.call(lambda: None)
    assert kept_while_paused(server)
    api.call("POST", f"/projects/{pid}/branches/{bid}/recover")
    api.emu.ctx.runner.call(lambda: None)  # the recovery's data-plane side (its compute starts)
    assert _query(uri, "SELECT answer FROM kept") == [(42,)]  # the same URI, the same data

    # The project likewise, with every branch's data.
    main_uri = api.uri(pid, main)
    _query(main_uri, "CREATE TABLE on_main AS SELECT 'main' AS branch")
    api.call("DELETE", f"/projects/{pid}")
    with pytest.raises(psycopg.OperationalError):
        _query(main_uri, "SELECT 1")
    api.call("POST", f"/projects/{pid}/recover")
    api.emu.ctx.runner.call(lambda: None)
    assert _query(main_uri, "SELECT branch FROM on_main") == [("main",)]
    assert _query(uri, "SELECT answer FROM kept") == [(42,)]

    # Once the window is over, the data is dropped for real.
    api.call("DELETE", f"/projects/{pid}/branches/{bid}")
    api.emu.advance(7 * 86400)
    api.emu.ctx.runner.call(lambda: None)
    assert physical not in server_databases(server)
    assert _query(main_uri, "SELECT count(*) FROM on_main") == [(1,)]


def test_database_rename_and_owner_change_reach_the_real_database(api: Api) -> None:
    pid, main = _new_project(api)
    base = f"/projects/{pid}/branches/{main}"
    old_uri = api.uri(pid, main)
    _query(old_uri, "CREATE TABLE t AS SELECT 1 AS x")
    api.call("POST", f"{base}/roles", json={"role": {"name": "sally"}})
    session = psycopg.connect(old_uri, autocommit=True)  # ended by the rename, as by a restart
    try:
        api.call(
            "PATCH", f"{base}/databases/neondb", json={"database": {"name": "appdb", "owner_name": "sally"}}
        )
        with pytest.raises(psycopg.OperationalError):
            session.execute("SELECT 1")
    finally:
        session.close()
    uri = api.uri(pid, main, database="appdb")
    assert _query(uri, "SELECT x FROM t") == [(1,)]
    assert _query(uri, "SELECT split_part(current_database(), '~', 1)") == [("appdb",)]
    owner = (
        "SELECT split_part(pg_get_userbyid(datdba)::text, '~', 1) FROM pg_database "
        "WHERE datname = current_database()"
    )
    assert _query(uri, owner) == [("sally",)]
    with pytest.raises(psycopg.OperationalError):
        _query(old_uri, "SELECT 1")
    # A branch made afterwards copies the renamed database under its new name.
    child = api.call(
        "POST",
        f"/projects/{pid}/branches",
        json={"branch": {"name": "after"}, "endpoints": [{"type": "read_write"}]},
    )
    assert _query(api.uri(pid, child["branch"]["id"], database="appdb"), "SELECT x FROM t") == [(1,)]
