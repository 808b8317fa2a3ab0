"""Snapshots hold real data (issue 21): a restore made from a snapshot taken before a write reads
the old data while the original keeps the new; finalizing moves the computes onto the restored
branch; the restored branch has no history before the restore. Also the LSN a branch create
answers is one the emulator accepts back."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest

from jambo_emulator import JamboEmulator


class Api:
    def __init__(self, emu: JamboEmulator) -> None:
        self.http = httpx.Client(
            base_url=emu.base_url, headers={"Authorization": f"Bearer {emu.api_key}"}, timeout=60
        )

    def call(self, method: str, path: str, *, expect: int = 200, **kwargs: Any) -> Any:
        response = self.http.request(method, path, **kwargs)
        assert response.status_code == expect, f"{method} {path} -> {response.status_code} {response.text}"
        body = response.json() if response.content else {}
        for op in body.get("operations", []) if expect < 300 else []:
            deadline = time.monotonic() + 60
            while (
                state := self.http.get(f"/projects/{op['project_id']}/operations/{op['id']}").json()[
                    "operation"
                ]["status"]
            ) != "finished":
                assert state in ("scheduling", "running"), state
                assert time.monotonic() < deadline, state
                time.sleep(0.02)
        return body

    def query(
        self, project_id: str, branch_id: str, sql: str, endpoint_id: str | None = None
    ) -> list[tuple[Any, ...]]:
        params = {"branch_id": branch_id, "database_name": "neondb", "role_name": "neondb_owner"}
        if endpoint_id is not None:
            params["endpoint_id"] = endpoint_id
        uri = self.call("GET", f"/projects/{project_id}/connection_uri", params=params)["uri"]
        with psycopg.connect(uri, autocommit=True) as conn:
            cur = conn.execute(sql)
            return cur.fetchall() if cur.description else []


@pytest.fixture(scope="module")
def api() -> Iterator[Api]:
    with JamboEmulator(
        api_key="snap-key", deterministic=True, operation_duration=0.0, data_plane="auto", rate_limits=False
    ) as emu:
        assert emu.ctx.data_plane.enabled
        client = Api(emu)
        yield client
        client.http.close()


def test_a_restore_reads_the_data_of_the_snapshot_while_the_original_keeps_the_new(api: Api) -> None:
    created = api.call("POST", "/projects", json={"project": {"name": "snapshots"}}, expect=201)
    pid, main = created["project"]["id"], created["branch"]["id"]
    api.query(pid, main, "CREATE TABLE t (v text); INSERT INTO t VALUES ('before')")
    (earlier,) = api.query(pid, main, "SELECT pg_current_wal_lsn()::text")[0]
    snap = api.call("POST", f"/projects/{pid}/branches/{main}/snapshot", params={"name": "before"})[
        "snapshot"
    ]
    api.query(pid, main, "UPDATE t SET v = 'after'")

    restored = api.call("POST", f"/projects/{pid}/snapshots/{snap['id']}/restore", json={"name": "check"})
    preview = restored["branch"]["id"]
    # Checked through a read-only compute of its own before it replaces anything.
    reader = api.call(
        "POST",
        f"/projects/{pid}/endpoints",
        json={"endpoint": {"branch_id": preview, "type": "read_only"}},
        expect=201,
    )["endpoint"]["id"]
    assert api.query(pid, preview, "SELECT v FROM t", reader) == [("before",)]
    assert api.query(pid, main, "SELECT v FROM t") == [("after",)]
    # No history before the restore: a position of the project's history before it is refused.
    assert "parent_lsn" not in restored["branch"]
    too_early = api.call(
        "POST",
        f"/projects/{pid}/branches",
        json={"branch": {"parent_id": preview, "parent_lsn": earlier}},
        expect=400,
    )
    assert "has no history before the restore" in too_early["message"]

    # Finalize: the computes move to the restored branch, which takes main's name and place.
    main_endpoint = created["endpoints"][0]["id"]
    api.call("POST", f"/projects/{pid}/branches/{preview}/finalize_restore", json={"name": "main-before"})
    endpoint = api.call("GET", f"/projects/{pid}/endpoints/{main_endpoint}")["endpoint"]
    assert (endpoint["branch_id"], endpoint["current_state"]) == (preview, "active")
    renamed = api.call("GET", f"/projects/{pid}/branches/{preview}")["branch"]
    assert (renamed["name"], renamed["default"]) == ("main", True)
    # The moved compute now serves the snapshot's data.
    params = {"branch_id": preview, "database_name": "neondb", "role_name": "neondb_owner"}
    uri = api.call("GET", f"/projects/{pid}/connection_uri", params=params)["uri"]
    assert main_endpoint in uri
    with psycopg.connect(uri, autocommit=True) as conn:
        assert conn.execute("SELECT v FROM t").fetchall() == [("before",)]


def test_a_snapshot_at_an_lsn_and_the_lsn_a_create_answers(api: Api) -> None:
    created = api.call("POST", "/projects", json={"project": {"name": "lsn"}}, expect=201)
    pid, main = created["project"]["id"], created["branch"]["id"]
    api.query(pid, main, "CREATE TABLE t (v int); INSERT INTO t VALUES (1)")
    (point,) = api.query(pid, main, "SELECT pg_current_wal_lsn()::text")[0]
    api.query(pid, main, "INSERT INTO t VALUES (2)")
    snap = api.call("POST", f"/projects/{pid}/branches/{main}/snapshot", params={"lsn": point})["snapshot"]
    restored = api.call(
        "POST", f"/projects/{pid}/snapshots/{snap['id']}/restore", json={"finalize_restore": True}
    )["branch"]
    assert api.query(pid, restored["id"], "SELECT v FROM t") == [(1,)]

    # The parent_lsn a create answers is a real point: passed back, it is accepted everywhere.
    child = api.call("POST", f"/projects/{pid}/branches", json={"branch": {"name": "c1"}}, expect=201)
    answered = child["branch"]["parent_lsn"]
    again = {"branch": {"name": "c2", "parent_lsn": answered}}
    api.call("POST", f"/projects/{pid}/branches", json=again, expect=201)
    api.call(
        "POST",
        f"/projects/{pid}/branches/{child['branch']['id']}/restore",
        json={"source_branch_id": main, "source_lsn": answered},
    )
    api.call(
        "GET",
        f"/projects/{pid}/branches/{main}/schema",
        params={"db_name": "neondb", "lsn": answered},
    )
