"""Users' own test suites get the fixtures from the installed plugin (no conftest needed)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

USER_TEST = """
import httpx


def test_uses_the_emulator(jambo_emulator):
    project = jambo_emulator.create_project(name="mine")
    headers = {"Authorization": f"Bearer {jambo_emulator.api_key}"}
    response = httpx.get(f"{jambo_emulator.base_url}/projects/{project['project']['id']}", headers=headers)
    assert response.status_code == 200


def test_starts_fresh(jambo_emulator):
    with jambo_emulator.client() as client:
        assert client.get("/projects").json()["projects"] == []
"""


def _run_pytest(*args: str) -> subprocess.CompletedProcess[str]:
    workdir = Path(tempfile.mkdtemp(prefix="jambo-user-tests-"))
    (workdir / "test_user.py").write_text(USER_TEST)
    env = {**os.environ, "AIRFLOW_HOME": str(workdir / "airflow")}
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "--rootdir",
            str(workdir),
            *args,
            str(workdir),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=workdir,
        env=env,
    )


def test_fixture_comes_from_the_installed_plugin() -> None:
    result = _run_pytest("--jambo-emulator-postgres=off")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed" in result.stdout


def test_bad_postgres_mode_is_a_usage_error() -> None:
    result = _run_pytest("-o", "jambo_emulator_postgres=sometimes")
    assert result.returncode != 0
    assert "jambo_emulator_postgres must be one of auto, on, off" in result.stdout + result.stderr
