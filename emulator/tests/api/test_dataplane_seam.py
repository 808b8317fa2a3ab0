"""The control plane's calls into a data plane: order, timing, results and failures."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from typing import Any

import httpx
import pytest

from jambo_emulator import JamboEmulator
from jambo_emulator.dataplane.base import EndpointAddress, NullDataPlane, PointInTime


class RecordingDataPlane(NullDataPlane):
    """Records every call; ``gate`` (when set) holds create_branch until released; can fail."""

    enabled = True

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.gate: threading.Event | None = None
        self.fail_create_branch = False
        self.reserved: list[str] = []

    def start(self) -> None:
        self.calls.append(("start",))

    def stop(self) -> None:
        self.calls.append(("stop",))

    def reset(self) -> None:
        self.calls.append(("reset",))

    def delete_project(self, project_id: str) -> None:
        self.calls.append(("delete_project", project_id))

    def create_branch(
        self,
        project_id: str,
        branch_id: str,
        parent_branch_id: str | None,
        *,
        schema_only: bool = False,
        at: PointInTime | None = None,
    ) -> str | None:
        if self.gate is not None:
            self.gate.wait(10)
        if self.fail_create_branch:
            raise RuntimeError("disk full")
        self.calls.append(("create_branch", branch_id, parent_branch_id))
        return None

    def reset_branch(
        self, project_id: str, branch_id: str, source_branch_id: str, *, at: PointInTime | None = None
    ) -> str | None:
        self.calls.append(("reset_branch", branch_id, source_branch_id))
        return None

    def history_start(self, project_id: str) -> str | None:
        return None

    def latest_lsn(self, project_id: str) -> str | None:
        return None

    def delete_branch(self, project_id: str, branch_id: str) -> None:
        self.calls.append(("delete_branch", branch_id))

    def detach_branch(self, project_id: str, branch_id: str) -> None:
        self.calls.append(("detach_branch", branch_id))

    def attach_branch(self, project_id: str, branch_id: str) -> None:
        self.calls.append(("attach_branch", branch_id))

    def update_database(
        self, project_id: str, branch_id: str, name: str, *, new_name: str | None, owner: str | None
    ) -> None:
        self.calls.append(("update_database", branch_id, name, new_name, owner))

    def create_database(self, project_id: str, branch_id: str, name: str, owner: str) -> None:
        self.calls.append(("create_database", branch_id, name, owner))

    def create_role(self, project_id: str, branch_id: str, name: str, password: str) -> None:
        self.calls.append(("create_role", branch_id, name))

    def set_role_password(self, project_id: str, branch_id: str, name: str, password: str) -> None:
        self.calls.append(("set_role_password", branch_id, name, password))

    def reserve_endpoint(
        self, project_id: str, branch_id: str, endpoint_id: str, *, host: str, read_only: bool = False
    ) -> EndpointAddress | None:
        self.reserved.append(endpoint_id)  # at request time, so not ordered with ``calls``
        return self._address(endpoint_id, host)

    @staticmethod
    def _address(endpoint_id: str, host: str | None) -> EndpointAddress:
        return EndpointAddress(
            host=host or "localhost",
            pooler_host=f"{endpoint_id}-pooler.local",
            port=15432,
            query="sslmode=require&hostaddr=127.0.0.1",
        )

    def start_endpoint(
        self,
        project_id: str,
        branch_id: str,
        endpoint_id: str,
        *,
        host: str | None = None,
        read_only: bool = False,
    ) -> EndpointAddress | None:
        self.calls.append(("start_endpoint", endpoint_id))
        return self._address(endpoint_id, host)

    def delete_endpoint(self, project_id: str, branch_id: str, endpoint_id: str) -> None:
        self.calls.append(("delete_endpoint", endpoint_id))

    def schema_dump(
        self, project_id: str, branch_id: str, database: str, *, at: PointInTime | None = None
    ) -> str | None:
        return f"CREATE TABLE {branch_id.replace('-', '_')} (id int);\n"


def _wait_finished(client: httpx.Client, pid: str, ops: list[dict[str, Any]]) -> list[str]:
    deadline = time.monotonic() + 10
    statuses: list[str] = []
    while time.monotonic() < deadline:
        statuses = [
            client.get(f"/projects/{pid}/operations/{op['id']}").json()["operation"]["status"] for op in ops
        ]
        if all(s not in ("scheduling", "running") for s in statuses):
            break
        time.sleep(0.02)
    return statuses


@pytest.fixture
def plane() -> RecordingDataPlane:
    return RecordingDataPlane()


@pytest.fixture
def emu(plane: RecordingDataPlane) -> Any:
    with JamboEmulator(api_key="k", deterministic=True, rate_limits=False, data_plane=plane) as emulator:
        yield emulator


def test_calls_happen_in_order_and_uris_use_the_address(
    emu: JamboEmulator, plane: RecordingDataPlane
) -> None:
    with emu.client() as client:
        project = client.post("/projects", json={"project": {}}).json()
        pid, main = project["project"]["id"], project["branch"]["id"]
        assert _wait_finished(client, pid, project["operations"]) == ["finished", "finished"]
        branch = client.post(
            f"/projects/{pid}/branches",
            json={"branch": {"name": "dev"}, "endpoints": [{"type": "read_write"}]},
        ).json()
        bid, eid = branch["branch"]["id"], branch["endpoints"][0]["id"]
        assert _wait_finished(client, pid, branch["operations"]) == ["finished", "finished"]
        uri = client.get(
            f"/projects/{pid}/connection_uri",
            params={
                "branch_id": bid,
                "database_name": "neondb",
                "role_name": "neondb_owner",
                "pooled": "true",
            },
        ).json()["uri"]
        assert uri.endswith(f"@{eid}-pooler.local:15432/neondb?sslmode=require&hostaddr=127.0.0.1")
        schema = client.get(f"/projects/{pid}/branches/{bid}/schema", params={"db_name": "neondb"}).json()
        assert schema == {"sql": f"CREATE TABLE {bid.replace('-', '_')} (id int);\n"}
        deleted = client.delete(f"/projects/{pid}/branches/{bid}").json()
        assert _wait_finished(client, pid, deleted["operations"]) == ["finished", "finished"]
        client.delete(f"/projects/{pid}")
    emu.ctx.runner.call(lambda: None)  # the project's data is detached in the background
    root_ep = project["endpoints"][0]["id"]
    assert plane.calls == [
        ("start",),
        ("create_branch", main, None),
        ("create_role", main, "neondb_owner"),
        ("create_database", main, "neondb", "neondb_owner"),
        ("start_endpoint", root_ep),
        ("create_branch", bid, main),
        ("start_endpoint", eid),
        ("delete_endpoint", eid),
        # Soft deletes: the data is kept (unreachable) for the recovery window.
        ("detach_branch", bid),
        ("detach_branch", main),
    ]


def test_recovery_reattaches_the_kept_data_and_the_window_end_drops_it(
    emu: JamboEmulator, plane: RecordingDataPlane
) -> None:
    with emu.client() as client:
        project = client.post("/projects", json={"project": {}}).json()
        pid, main, root_ep = project["project"]["id"], project["branch"]["id"], project["endpoints"][0]["id"]
        _wait_finished(client, pid, project["operations"])
        branch = client.post(
            f"/projects/{pid}/branches",
            json={"branch": {"name": "dev"}, "endpoints": [{"type": "read_write"}]},
        ).json()
        bid, eid = branch["branch"]["id"], branch["endpoints"][0]["id"]
        _wait_finished(client, pid, branch["operations"])
        deleted = client.delete(f"/projects/{pid}/branches/{bid}").json()
        _wait_finished(client, pid, deleted["operations"])
        assert client.post(f"/projects/{pid}/branches/{bid}/recover").status_code == 200
        patched = client.patch(
            f"/projects/{pid}/branches/{main}/databases/neondb", json={"database": {"name": "appdb"}}
        ).json()
        _wait_finished(client, pid, patched["operations"])
        client.delete(f"/projects/{pid}")
        assert client.post(f"/projects/{pid}/recover").status_code == 200
        client.delete(f"/projects/{pid}")
        emu.ctx.runner.call(lambda: None)
        mark = len(plane.calls)
        emu.advance(7 * 86400)  # the recovery window ends: the kept data goes
        emu.ctx.runner.call(lambda: None)
    start = plane.calls.index(("detach_branch", bid))
    assert plane.calls[start:mark] == [
        ("detach_branch", bid),
        ("attach_branch", bid),
        ("start_endpoint", eid),
        ("update_database", main, "neondb", "appdb", None),
        ("detach_branch", main),
        ("detach_branch", bid),
        ("attach_branch", main),
        ("attach_branch", bid),
        ("start_endpoint", root_ep),
        ("start_endpoint", eid),
        ("detach_branch", main),
        ("detach_branch", bid),
    ]
    assert plane.calls[mark:] == [("delete_project", pid)]


def test_create_responses_carry_the_reserved_address(emu: JamboEmulator, plane: RecordingDataPlane) -> None:
    with emu.client() as client:
        project = client.post("/projects", json={"project": {}}).json()
        pid, root_ep = project["project"]["id"], project["endpoints"][0]["id"]
        uri = project["connection_uris"][0]["connection_uri"]
        assert uri.endswith(".aws.neon.tech:15432/neondb?sslmode=require&hostaddr=127.0.0.1")
        assert f"@{root_ep}." in uri
        _wait_finished(client, pid, project["operations"])
        branch = client.post(
            f"/projects/{pid}/branches",
            json={"branch": {"name": "dev"}, "endpoints": [{"type": "read_write"}]},
        ).json()
        eid = branch["endpoints"][0]["id"]
        assert branch["connection_uris"][0]["connection_uri"].endswith(
            ":15432/neondb?sslmode=require&hostaddr=127.0.0.1"
        )
        assert plane.reserved == [root_ep, eid]


def test_operation_waits_for_the_data_plane_call(emu: JamboEmulator, plane: RecordingDataPlane) -> None:
    with emu.client() as client:
        project = client.post("/projects", json={"project": {}}).json()
        pid = project["project"]["id"]
        _wait_finished(client, pid, project["operations"])
        plane.gate = threading.Event()
        created = client.post(f"/projects/{pid}/branches", json={}).json()
        op_id = created["operations"][0]["id"]
        time.sleep(0.1)
        # The duration (0) has passed, but the copy is still running: so is the operation.
        assert client.get(f"/projects/{pid}/operations/{op_id}").json()["operation"]["status"] == "running"
        assert client.get("/regions").status_code == 200  # other requests are not blocked
        plane.gate.set()
        assert _wait_finished(client, pid, created["operations"]) == ["finished"]


def test_data_plane_failure_ends_the_operation_with_error_not_a_500(
    emu: JamboEmulator, plane: RecordingDataPlane
) -> None:
    with emu.client() as client:
        project = client.post("/projects", json={"project": {}}).json()
        pid = project["project"]["id"]
        _wait_finished(client, pid, project["operations"])
        plane.fail_create_branch = True
        created = client.post(f"/projects/{pid}/branches", json={"endpoints": [{"type": "read_write"}]})
        assert created.status_code == 201
        assert _wait_finished(client, pid, created.json()["operations"]) == ["error", "cancelled"]
        op = client.get(f"/projects/{pid}/operations/{created.json()['operations'][0]['id']}").json()
        assert "disk full" in op["operation"]["error"]
        assert "Traceback" not in op["operation"]["error"]


def test_reset_resets_the_data_plane(emu: JamboEmulator, plane: RecordingDataPlane) -> None:
    emu.reset()
    assert plane.calls[-1] == ("reset",)


def test_plugin_module_does_not_import_airflow() -> None:
    code = (
        "import sys; import jambo_emulator.pytest_plugin; "
        "bad = [m for m in sys.modules if m == 'airflow' or m.startswith('airflow.')]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_a_password_in_a_data_plane_error_is_redacted(emu: JamboEmulator, plane: RecordingDataPlane) -> None:
    def leaky(project_id: str, branch_id: str, name: str, password: str) -> None:
        raise RuntimeError(f"ALTER ROLE {name} PASSWORD '{password}' failed")

    plane.set_role_password = leaky  # type: ignore[method-assign]
    with emu.client() as client:
        project = client.post("/projects", json={"project": {}}).json()
        pid, bid = project["project"]["id"], project["branch"]["id"]
        _wait_finished(client, pid, project["operations"])
        reset = client.post(f"/projects/{pid}/branches/{bid}/roles/neondb_owner/reset_password").json()
        password = reset["role"]["password"]
        assert _wait_finished(client, pid, reset["operations"]) == ["error", "cancelled"]
        error = client.get(f"/projects/{pid}/operations/{reset['operations'][0]['id']}").json()["operation"][
            "error"
        ]
        assert password not in error
        assert "PASSWORD '***'" in error
