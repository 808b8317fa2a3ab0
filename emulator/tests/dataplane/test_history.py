"""Real history: branches, restores and schemas at a past point see the data exactly as it was.

Each test writes a first state, takes a point (a wall-clock or emulator-clock time, or an LSN a
client read with ``pg_current_wal_lsn()``), writes a second state, then asks for the point.
"""

from __future__ import annotations

import calendar
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from jambo_emulator import EmulatorConfig, JamboEmulator
from jambo_emulator.dataplane.base import DataPlaneError, PointInTime
from jambo_emulator.state.clock import iso

from .support import Project, scalar
from .test_through_api import Api


def _rows(project: Project, branch_id: str) -> list[int]:
    with project.connect(project.endpoint(branch_id)) as conn:
        return [row[0] for row in conn.execute("SELECT id FROM items ORDER BY id")]


def _two_states(project: Project) -> tuple[str, float]:
    """Row 1, then the point (an LSN read by the client, and a wall-clock time), then row 2."""
    with project.connect(project.endpoint("br-main")) as conn:
        conn.execute("CREATE TABLE items (id int PRIMARY KEY)")
        conn.execute("INSERT INTO items VALUES (1)")
        lsn = str(scalar(conn, "SELECT pg_current_wal_lsn()::text"))
        time.sleep(0.05)
        point = time.time()
        time.sleep(0.05)
        conn.execute("INSERT INTO items VALUES (2)")
    return lsn, point


def test_branch_at_a_timestamp_sees_only_the_first_write(project: Project) -> None:
    _, point = _two_states(project)
    lsn = project.plane.create_branch(project.id, "br-then", "br-main", at=PointInTime(timestamp=point))
    assert _rows(project, "br-then") == [1]
    assert _rows(project, "br-main") == [1, 2]
    # The reported position is a real one: branching from it gives the same state again.
    assert lsn is not None
    project.plane.create_branch(project.id, "br-again", "br-main", at=PointInTime(lsn=lsn))
    assert _rows(project, "br-again") == [1]


def test_branch_at_an_lsn_sees_only_the_first_write(project: Project) -> None:
    lsn, _ = _two_states(project)
    project.plane.create_branch(project.id, "br-then", "br-main", at=PointInTime(lsn=lsn))
    assert _rows(project, "br-then") == [1]


def test_plain_branch_reports_a_real_lsn_that_can_be_branched_from(project: Project) -> None:
    _two_states(project)
    lsn = project.plane.create_branch(project.id, "br-now", "br-main")
    with project.connect(project.endpoint("br-main")) as conn:
        conn.execute("INSERT INTO items VALUES (3)")
    assert lsn is not None
    project.plane.create_branch(project.id, "br-at-parent-lsn", "br-main", at=PointInTime(lsn=lsn))
    assert _rows(project, "br-at-parent-lsn") == [1, 2]


def test_reset_to_a_timestamp_of_the_branch_itself_brings_the_first_state_back(project: Project) -> None:
    _, point = _two_states(project)
    project.branch("br-backup")  # what preserve_under_name does first: a copy of the current data
    project.plane.reset_branch(project.id, "br-main", "br-main", at=PointInTime(timestamp=point))
    assert _rows(project, "br-main") == [1]
    assert _rows(project, "br-backup") == [1, 2]


def test_point_after_a_database_was_dropped_and_before_still_finds_it(project: Project) -> None:
    """History follows the branch's own databases: one dropped later is still there at the point."""
    _, point = _two_states(project)
    project.plane.create_database(project.id, "br-main", "later", "neondb_owner")
    project.plane.delete_database(project.id, "br-main", "neondb")
    project.plane.create_branch(project.id, "br-then", "br-main", at=PointInTime(timestamp=point))
    assert _rows(project, "br-then") == [1]
    with pytest.raises(psycopg.OperationalError, match="does not exist"):
        project.connect(project.endpoint("br-then"), database="later")


def test_schema_at_a_point_in_time(project: Project) -> None:
    _, point = _two_states(project)
    with project.connect(project.endpoint("br-main")) as conn:
        conn.execute("CREATE TABLE added_later (id int)")
    now = project.plane.schema_dump(project.id, "br-main", "neondb")
    then = project.plane.schema_dump(project.id, "br-main", "neondb", at=PointInTime(timestamp=point))
    assert now is not None
    assert "added_later" in now
    assert then is not None
    assert "items" in then
    assert "added_later" not in then


def test_point_before_the_branch_existed_fails_clearly(project: Project) -> None:
    before = time.time() - 3600
    with pytest.raises(DataPlaneError, match="did not exist yet"):
        project.plane.create_branch(project.id, "br-x", "br-main", at=PointInTime(timestamp=before))


def test_api_points_at_the_reported_creation_second_on_a_real_clock() -> None:
    """A client passes a ``created_at`` back (whole seconds, so up to a second before the branch
    existed): the branch and the restore from that point finish, holding the state as created."""
    with JamboEmulator(
        api_key="hist-real-clock", operation_duration=0.0, data_plane="on", rate_limits=False
    ) as emu:
        api = Api(emu)
        body = api.call("POST", "/projects", json={"project": {"name": "created-second"}})
        pid, main, created_at = body["project"]["id"], body["branch"]["id"], body["project"]["created_at"]
        _sql(api.uri(pid, main), "CREATE TABLE items (id int)")
        child = api.call(
            "POST",
            f"/projects/{pid}/branches",
            json={"branch": {"parent_timestamp": created_at}, "endpoints": [{"type": "read_write"}]},
        )  # Api.call waits for its operations and fails unless they finish
        assert _sql(api.uri(pid, child["branch"]["id"]), "SELECT to_regclass('public.items') IS NULL") == [
            (True,)
        ]
        api.call(
            "POST",
            f"/projects/{pid}/branches/{main}/restore",
            json={
                "source_branch_id": main,
                "source_timestamp": created_at,
                "preserve_under_name": "main-old",
            },
        )
        assert _sql(api.uri(pid, main), "SELECT to_regclass('public.items') IS NULL") == [(True,)]
        api.http.close()


# -- through the API, on the emulator's (manual) clock --------------------------------------------


@pytest.fixture(scope="module")
def emu() -> Iterator[JamboEmulator]:
    with JamboEmulator(
        api_key="hist-key", deterministic=True, operation_duration=0.0, data_plane="auto", rate_limits=False
    ) as emulator:
        assert emulator.ctx.data_plane.enabled
        yield emulator


@pytest.fixture
def api(emu: JamboEmulator) -> Iterator[Api]:
    client = Api(emu)
    yield client
    client.http.close()


def _project(api: Api, **fields: Any) -> tuple[str, str, float]:
    body = api.call("POST", "/projects", json={"project": {"name": "history", **fields}})
    return body["project"]["id"], body["branch"]["id"], _parse(body["project"]["created_at"])


def _parse(text: str) -> float:
    return float(calendar.timegm(time.strptime(text, "%Y-%m-%dT%H:%M:%SZ")))


def _sql(uri: str, sql: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(uri, autocommit=True) as conn:
        cur = conn.execute(sql)
        return cur.fetchall() if cur.description else []


def test_api_branch_and_restore_at_known_emulator_times(api: Api, emu: JamboEmulator) -> None:
    pid, main, created = _project(api)
    main_uri = api.uri(pid, main)
    _sql(main_uri, "CREATE TABLE items (id int); INSERT INTO items VALUES (1)")
    emu.advance(60)
    point = created + 60  # the emulator clock reads this between the two writes
    emu.advance(60)
    _sql(main_uri, "INSERT INTO items VALUES (2); CREATE TABLE later (id int)")

    child = api.call(
        "POST",
        f"/projects/{pid}/branches",
        json={
            "branch": {"name": "then", "parent_timestamp": iso(point)},
            "endpoints": [{"type": "read_write"}],
        },
    )
    assert _sql(api.uri(pid, child["branch"]["id"]), "SELECT id FROM items") == [(1,)]
    reported = api.call("GET", f"/projects/{pid}/branches/{child['branch']['id']}")["branch"]["parent_lsn"]
    assert reported != "0/1F4A3B8"  # a real position, not the placeholder

    schema = api.call(
        "GET",
        f"/projects/{pid}/branches/{main}/schema",
        params={"db_name": "neondb", "timestamp": iso(point)},
    )
    assert "TABLE public.items" in schema["sql"]
    assert "later" not in schema["sql"]

    api.call(
        "POST",
        f"/projects/{pid}/branches/{main}/restore",
        json={"source_branch_id": main, "source_timestamp": iso(point), "preserve_under_name": "main-old"},
    )
    assert _sql(main_uri, "SELECT id FROM items ORDER BY id") == [(1,)]
    branches = api.call("GET", f"/projects/{pid}/branches")["branches"]
    old = next(b for b in branches if b["name"] == "main-old")
    api.call(
        "POST",
        f"/projects/{pid}/endpoints",
        json={"endpoint": {"branch_id": old["id"], "type": "read_write"}},
    )
    assert _sql(api.uri(pid, old["id"]), "SELECT id FROM items ORDER BY id") == [(1,), (2,)]


def test_api_branch_at_a_client_read_lsn(api: Api) -> None:
    pid, main, _ = _project(api)
    main_uri = api.uri(pid, main)
    _sql(main_uri, "CREATE TABLE items (id int); INSERT INTO items VALUES (1)")
    lsn = _sql(main_uri, "SELECT pg_current_wal_lsn()::text")[0][0]
    _sql(main_uri, "INSERT INTO items VALUES (2)")
    child = api.call(
        "POST",
        f"/projects/{pid}/branches",
        json={"branch": {"parent_lsn": lsn}, "endpoints": [{"type": "read_write"}]},
    )
    assert child["branch"]["parent_lsn"] == lsn
    assert _sql(api.uri(pid, child["branch"]["id"]), "SELECT id FROM items") == [(1,)]


def _refused(api: Api, pid: str, branch: dict[str, Any]) -> str:
    response = api.http.post(f"/projects/{pid}/branches", json={"branch": branch})
    assert response.status_code == 400, response.text
    message: str = response.json()["message"]
    return message


def test_api_refuses_points_before_the_project_or_outside_the_window(api: Api, emu: JamboEmulator) -> None:
    pid, _, created = _project(api, history_retention_seconds=3600)
    assert "before the project was created" in _refused(api, pid, {"parent_timestamp": iso(created - 10)})
    assert "before the project's history begins" in _refused(api, pid, {"parent_lsn": "0/1"})
    assert "parent_lsn" in _refused(api, pid, {"parent_lsn": "yesterday"})
    emu.advance(7200)
    message = _refused(api, pid, {"parent_timestamp": iso(created + 60)})
    assert "history retention window" in message
    assert "3600" in message
    restore = api.http.post(
        f"/projects/{pid}/branches/{_project_main(api, pid)}/restore",
        json={
            "source_branch_id": _project_main(api, pid),
            "source_timestamp": iso(created + 60),
            "preserve_under_name": "x",
        },
    )
    assert restore.status_code == 400
    assert "source_timestamp" in restore.json()["message"]


def _project_main(api: Api, pid: str) -> str:
    branches = api.call("GET", f"/projects/{pid}/branches")["branches"]
    return str(next(b["id"] for b in branches if b["default"]))


# -- a back-dated project: the clock starts behind real time, then catches up ---------------------

TWO_DAYS = 2 * 86400.0


def test_back_dated_project_holds_its_first_data_through_the_back_dated_span() -> None:
    """What the deployment stack does (``--clock-start-offset -172800``, seed, advance): a project
    made while the clock ran two days behind existed two days ago, and a real-time point in that
    span (a scheduled run's last interval end) reads the data written before the clock caught up."""
    config = EmulatorConfig(
        api_keys=["backdated-key"], operation_duration=0.0, rate_limits=False, clock_start_offset=-TWO_DAYS
    )
    with JamboEmulator(config=config, data_plane="auto") as emu:
        assert emu.ctx.data_plane.enabled
        api = Api(emu)
        try:
            pid, main, created = _project(api)
            assert abs(created - (time.time() - TWO_DAYS)) < 60
            main_uri = api.uri(pid, main)
            _sql(main_uri, "CREATE TABLE items (id int); INSERT INTO items VALUES (1)")
            emu.advance(TWO_DAYS)  # back at real time: what follows is written "now"
            _sql(main_uri, "INSERT INTO items VALUES (2)")
            an_hour_ago = float(int(time.time()) - 3600)  # real time, before the project really existed
            child = api.call(
                "POST",
                f"/projects/{pid}/branches",
                json={
                    "branch": {"name": "then", "parent_timestamp": iso(an_hour_ago)},
                    "endpoints": [{"type": "read_write"}],
                },
            )
            assert _sql(api.uri(pid, child["branch"]["id"]), "SELECT id FROM items") == [(1,)]
            before = _refused(api, pid, {"parent_timestamp": iso(created - 10)})
            assert "before the project was created" in before
        finally:
            api.http.close()
