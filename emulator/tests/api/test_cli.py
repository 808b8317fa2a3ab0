"""``jambo-emulator`` from a shell: the listening line, a curl-like session, exit 0 on signals."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

LINE = re.compile(r"^Jambo API emulator listening on (http://127\.0\.0\.1:(\d+)/api/v2)$")


def _start(*args: str, env_extra: dict[str, str] | None = None) -> subprocess.Popen[str]:
    env = {**os.environ, "AIRFLOW_HOME": tempfile.mkdtemp(prefix="jambo-cli-"), **(env_extra or {})}
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jambo_emulator",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            *args,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


@pytest.fixture
def cli() -> Iterator[subprocess.Popen[str]]:
    process = _start(
        "--api-key",
        "cli-key",
        "--operation-duration",
        "0.2",
        "--project-scoped-key",
        "pk=my-project",
        "--postgres",
        "off",
    )
    yield process
    if process.poll() is None:
        process.kill()
        process.wait()


def test_cli_serves_until_sigterm_and_exits_0(cli: subprocess.Popen[str]) -> None:
    assert cli.stdout is not None
    line = cli.stdout.readline().rstrip("\n")
    match = LINE.match(line)
    assert match, line
    base = match.group(1)
    headers = {"Authorization": "Bearer cli-key"}
    project = httpx.post(f"{base}/projects", json={"project": {"name": "shell"}}, headers=headers).json()
    pid = project["project"]["id"]
    time.sleep(0.5)  # the project's operations take 0.2 s each
    created = httpx.post(
        f"{base}/projects/{pid}/branches",
        json={"branch": {"name": "dev"}, "endpoints": [{"type": "read_write"}]},
        headers=headers,
    )
    assert created.status_code == 201
    deadline = time.monotonic() + 10
    statuses: set[str] = set()
    while time.monotonic() < deadline:
        statuses = {
            httpx.get(f"{base}/projects/{pid}/operations/{op['id']}", headers=headers).json()["operation"][
                "status"
            ]
            for op in created.json()["operations"]
        }
        if statuses == {"finished"}:
            break
        time.sleep(0.1)
    assert statuses == {"finished"}
    scoped = httpx.get(f"{base}/projects", headers={"Authorization": "Bearer pk"}).json()["projects"]
    assert [p["id"] for p in scoped] == ["my-project"]
    cli.send_signal(signal.SIGTERM)
    assert cli.wait(timeout=15) == 0
    port = match.group(2)
    # After the listening line: the data plane, and the connection with the given key left out.
    assert cli.stdout.read().splitlines() == [
        "Data plane: off (--postgres off): the API works, connection URIs do not connect",
        'Connect Airflow to it (add "extra": {"project_id": "..."} for a default project):',
        "export AIRFLOW_CONN_JAMBO_DEFAULT='"
        f'{{"conn_type": "jambo", "host": "http://127.0.0.1:{port}/api/v2", "password": "<your --api-key>"}}'
        "'",
    ]
    assert cli.stderr is not None
    assert "data plane" not in cli.stderr.read()  # off: no PostgreSQL search, nothing to say


def test_cli_generates_and_prints_a_key_and_exits_0_on_sigint(tmp_path: Path) -> None:
    # Default --postgres auto on a machine without PostgreSQL (the binary search sees an empty dir):
    # one line on stderr says so, and the control plane runs.
    process = _start("--deterministic", env_extra={"JAMBO_PG_BINDIR": str(tmp_path)})
    try:
        assert process.stdout is not None
        match = LINE.match(process.stdout.readline().rstrip("\n"))
        assert match
        key_line = process.stdout.readline().rstrip("\n")
        assert key_line.startswith("API key: ")
        key = key_line.removeprefix("API key: ")
        response = httpx.get(f"{match.group(1)}/projects", headers={"Authorization": f"Bearer {key}"})
        assert response.status_code == 200
        plane, hint, export = (process.stdout.readline().rstrip("\n") for _ in range(3))
        assert plane == (
            "Data plane: off (no PostgreSQL 14+ server binaries (initdb, postgres, pg_dump, pg_restore) "
            f"found in $JAMBO_PG_BINDIR ({tmp_path})): the API works, connection URIs do not connect"
        )
        assert hint.startswith("Connect Airflow to it")
        # Ready to paste: the shell line sets a connection whose host and password reach this API.
        prefix = "export AIRFLOW_CONN_JAMBO_DEFAULT="
        assert export.startswith(prefix)
        conn = json.loads(shlex.split(export.removeprefix("export "))[0].split("=", 1)[1])
        assert conn == {"conn_type": "jambo", "host": match.group(1), "password": key}
        listed = httpx.get(
            f"{conn['host']}/projects", headers={"Authorization": f"Bearer {conn['password']}"}
        )
        assert listed.status_code == 200
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=15) == 0
        assert process.stderr is not None
        notes = [line for line in process.stderr.read().splitlines() if "data plane" in line]
        assert notes == [
            "jambo-emulator: data plane off (no PostgreSQL 14+ server binaries (initdb, postgres, "
            f"pg_dump, pg_restore) found in $JAMBO_PG_BINDIR ({tmp_path})); the API works, "
            "connection URIs do not connect"
        ]
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_cli_rejects_a_malformed_scoped_key() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "jambo_emulator", "--project-scoped-key", "no-equals"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "AIRFLOW_HOME": tempfile.mkdtemp(prefix="jambo-cli-")},
    )
    assert result.returncode == 2
    assert "KEY=PROJECT_ID" in result.stderr


def test_postgres_defaults_to_auto() -> None:
    from jambo_emulator.cli import build_parser

    assert build_parser().parse_args([]).postgres == "auto"


def test_clock_start_offset_takes_seconds_behind_and_refuses_nan_and_centuries() -> None:
    from jambo_emulator.cli import build_parser

    parser = build_parser()
    assert parser.parse_args([]).clock_start_offset == 0.0
    assert parser.parse_args(["--clock-start-offset", "-172800"]).clock_start_offset == -172800.0
    for bad in ("nan", "-1e12"):
        with pytest.raises(SystemExit):
            parser.parse_args(["--clock-start-offset", bad])


def test_data_plane_line_names_the_postgresql_found() -> None:
    from jambo_emulator.cli import data_plane_line
    from jambo_emulator.dataplane.pg_server import find_binaries
    from jambo_emulator.dataplane.postgres import PostgresDataPlane

    found = find_binaries()
    if found is None:
        pytest.skip("no PostgreSQL server binaries on this machine")
    plane = PostgresDataPlane(found)  # not started: the line is printed while it starts
    assert data_plane_line(plane, "auto") == (
        f"Data plane: on, PostgreSQL {found.major} ({found.bindir}), starting in the background: "
        "connection URIs connect"
    )


def test_connection_line_reaches_an_emulator_bound_to_all_interfaces_on_loopback() -> None:
    from jambo_emulator.cli import connection_line

    def conn(line: str) -> dict[str, str]:
        value: dict[str, str] = json.loads(shlex.split(line.removeprefix("export "))[0].split("=", 1)[1])
        return value

    assert conn(connection_line("0.0.0.0", 8080, "k"))["host"] == "http://127.0.0.1:8080/api/v2"
    assert conn(connection_line("::1", 8080, "k"))["host"] == "http://[::1]:8080/api/v2"
    assert conn(connection_line("127.0.0.1", 8080, None))["password"] == "<your --api-key>"
