"""The installed provider as Airflow's CLI sees it (subprocesses with a throwaway AIRFLOW_HOME).

Kept to five CLI starts (about 1-2 s each): three `providers` listings and two connection tests
against the in-process emulator (success, then a wrong key).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

AIRFLOW = str(Path(sys.executable).with_name("airflow"))
WRONG_KEY = "wrong-key-7d1e0a4b"


def run_airflow(
    args: list[str], tmp_path: Path, extra_env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW_CONN_")}
    env.update({"AIRFLOW_HOME": str(tmp_path), "AIRFLOW__CORE__LOAD_EXAMPLES": "False"})
    env.update(extra_env or {})
    return subprocess.run([AIRFLOW, *args], env=env, capture_output=True, text=True, timeout=120, check=False)


def json_output(proc: subprocess.CompletedProcess[str]) -> Any:
    assert proc.returncode == 0, proc.stderr
    # Log lines may precede the table; the JSON document is the line starting with "[{".
    (line,) = [line for line in proc.stdout.splitlines() if line.startswith("[{")]
    return json.loads(line)


@pytest.fixture(scope="module")
def airflow_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("airflow-cli-home")


def test_providers_list_hooks_and_behaviours(airflow_home: Path) -> None:
    providers = json_output(run_airflow(["providers", "list", "-o", "json"], airflow_home))
    assert any(p["package_name"] == "airflow-provider-jambo" for p in providers)

    hooks = json_output(run_airflow(["providers", "hooks", "-o", "json"], airflow_home))
    (jambo,) = [h for h in hooks if h["connection_type"] == "jambo"]
    assert jambo["class"] == "airflow_provider_jambo.hooks.jambo.JamboHook"
    assert jambo["conn_id_attribute_name"] == "jambo_conn_id"
    assert jambo["hook_name"] == "Jambo"

    behaviours = json_output(run_airflow(["providers", "behaviours", "-o", "json"], airflow_home))
    assert {"field_behaviours": "jambo"} in behaviours


def test_connections_test_against_the_emulator(airflow_home: Path, jambo_emulator: Any) -> None:
    def conn(key: str) -> dict[str, str]:
        value = {"conn_type": "jambo", "host": jambo_emulator.base_url, "password": key}
        return {"AIRFLOW__CORE__TEST_CONNECTION": "Enabled", "AIRFLOW_CONN_JAMBO_DEFAULT": json.dumps(value)}

    ok = run_airflow(["connections", "test", "jambo_default"], airflow_home, conn(jambo_emulator.api_key))
    assert "Connection success!" in ok.stdout, ok.stdout + ok.stderr
    assert ok.returncode == 0

    bad = run_airflow(["connections", "test", "jambo_default"], airflow_home, conn(WRONG_KEY))
    output = bad.stdout + bad.stderr
    assert "Connection failed!" in output
    assert bad.returncode != 0
    assert "GET /projects -> 401" in output
    assert WRONG_KEY not in output
