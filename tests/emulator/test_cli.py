"""``jambo-emulator`` from a shell: the listening line, a curl-like session, exit 0 on signals."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator

import httpx
import pytest

LINE = re.compile(r"^Jambo API emulator listening on (http://127\.0\.0\.1:(\d+)/api/v2)$")


def _start(*args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "AIRFLOW_HOME": tempfile.mkdtemp(prefix="jambo-cli-")}
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "airflow_provider_jambo.emulator",
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
        "--api-key", "cli-key", "--operation-duration", "0.2", "--project-scoped-key", "pk=my-project"
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
    assert cli.stdout.read() == ""  # exactly one line on stdout


def test_cli_generates_and_prints_a_key_and_exits_0_on_sigint() -> None:
    process = _start("--deterministic")
    try:
        assert process.stdout is not None
        match = LINE.match(process.stdout.readline().rstrip("\n"))
        assert match
        key_line = process.stdout.readline().rstrip("\n")
        assert key_line.startswith("API key: ")
        key = key_line.removeprefix("API key: ")
        response = httpx.get(f"{match.group(1)}/projects", headers={"Authorization": f"Bearer {key}"})
        assert response.status_code == 200
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=15) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_cli_rejects_a_malformed_scoped_key() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "airflow_provider_jambo.emulator", "--project-scoped-key", "no-equals"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "AIRFLOW_HOME": tempfile.mkdtemp(prefix="jambo-cli-")},
    )
    assert result.returncode == 2
    assert "KEY=PROJECT_ID" in result.stderr
