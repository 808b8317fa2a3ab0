"""The repository's two distributions, built as a release would build them.

- ``airflow-provider-jambo``: the provider's wheel holds no emulator code, and its ``emulator`` extra
  installs ``jambo-emulator`` at the same version.
- ``jambo-emulator``: its wheel holds the emulator alone and, installed into a fresh virtualenv with
  neither Airflow nor the provider, imports every module and serves a branch lifecycle from the
  ``jambo-emulator`` command.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
import tomllib
import zipfile
from collections.abc import Iterator
from email.parser import Parser
from pathlib import Path
from typing import Any

import httpx
import pytest
from distribution_support import ROOT, build_wheels, run, uv

LISTENING = re.compile(r"^Jambo API emulator listening on (http://127\.0\.0\.1:\d+/api/v2)$")
API_KEY = "wheel-test-key"


def _version(pyproject: Path) -> str:
    with pyproject.open("rb") as f:
        return str(tomllib.load(f)["project"]["version"])


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return build_wheels(tmp_path_factory.mktemp("dist"))


def _metadata(wheel: Path) -> Any:
    with zipfile.ZipFile(wheel) as z:
        name = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
        return Parser().parsestr(z.read(name).decode())


def _top_levels(wheel: Path) -> set[str]:
    with zipfile.ZipFile(wheel) as z:
        return {n.split("/")[0] for n in z.namelist() if not n.split("/")[0].endswith(".dist-info")}


def test_the_provider_wheel_holds_no_emulator(wheels: dict[str, Path]) -> None:
    wheel = wheels["airflow_provider_jambo"]
    assert _top_levels(wheel) == {"airflow_provider_jambo"}
    with zipfile.ZipFile(wheel) as z:
        emulator_files = [n for n in z.namelist() if "emulator" in n.split("/")[-1] or "/emulator/" in n]
        entry_points = next(n for n in z.namelist() if n.endswith("entry_points.txt"))
        entry_text = z.read(entry_points).decode()
    assert emulator_files == []
    # The command and the pytest fixtures are the emulator's, not the provider's.
    assert "jambo-emulator" not in entry_text
    assert "pytest11" not in entry_text
    assert "apache_airflow_provider" in entry_text


def test_the_long_description_is_the_quickstart_without_scripts(wheels: dict[str, Path]) -> None:
    """pip users read it on the package index: nothing in it may need a clone (scripts/)."""
    metadata = _metadata(wheels["airflow_provider_jambo"])
    assert metadata["Description-Content-Type"] == "text/markdown"
    description = metadata.get_payload()
    assert "## Quickstart (pip)" in description
    assert 'pip install "apache-airflow==' in description
    assert "scripts/" not in description
    assert "Contributing / developing" not in description


def test_the_emulator_extra_pins_the_emulator_at_the_providers_version(wheels: dict[str, Path]) -> None:
    provider_version = _version(ROOT / "pyproject.toml")
    assert _version(ROOT / "emulator" / "pyproject.toml") == provider_version
    requires = _metadata(wheels["airflow_provider_jambo"]).get_all("Requires-Dist")
    assert f"jambo-emulator=={provider_version}; extra == 'emulator'" in requires
    assert _metadata(wheels["jambo_emulator"])["Version"] == provider_version


def test_the_emulator_wheel_holds_the_emulator_alone(wheels: dict[str, Path]) -> None:
    wheel = wheels["jambo_emulator"]
    assert _top_levels(wheel) == {"jambo_emulator"}
    requires = _metadata(wheel).get_all("Requires-Dist")
    assert not [r for r in requires if r.startswith(("apache-airflow", "airflow-provider-jambo"))]
    with zipfile.ZipFile(wheel) as z:
        entry_text = z.read(next(n for n in z.namelist() if n.endswith("entry_points.txt"))).decode()
    assert "jambo-emulator = jambo_emulator.cli:main" in entry_text
    assert "jambo_emulator = jambo_emulator.pytest_plugin" in entry_text


@pytest.fixture(scope="module")
def emulator_venv(wheels: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    venv = tmp_path_factory.mktemp("emulator-venv") / "venv"
    run(uv(), "venv", "--quiet", "-p", "3.11", venv)
    run(uv(), "pip", "install", "--quiet", "-p", venv / "bin" / "python", wheels["jambo_emulator"])
    return venv


def test_the_emulator_installs_without_airflow_and_imports_every_module(emulator_venv: Path) -> None:
    out = run(
        emulator_venv / "bin" / "python",
        "-W",
        "error",
        "-c",
        "import importlib, importlib.util, pkgutil, jambo_emulator as pkg\n"
        "names = [m.name for m in pkgutil.walk_packages(pkg.__path__, 'jambo_emulator.')]\n"
        # __main__ would serve; the pytest plugin is loaded by pytest, which is not installed here.
        "for name in names:\n"
        "    if not name.endswith(('__main__', 'pytest_plugin')):\n"
        "        importlib.import_module(name)\n"
        "print(len(names), importlib.util.find_spec('airflow'), "
        "importlib.util.find_spec('airflow_provider_jambo'))",
        cwd=emulator_venv,
    )
    count, airflow, provider = out.split()
    assert int(count) > 20
    assert (airflow, provider) == ("None", "None")


@pytest.fixture
def served(emulator_venv: Path) -> Iterator[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "PYTHONPATH"))}
    command = [emulator_venv / "bin" / "jambo-emulator", "--port", "0", "--api-key", API_KEY]
    process = subprocess.Popen(
        [*command, "--operation-duration", "0.1", "--postgres", "off"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=emulator_venv,
        env=env,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        match = LISTENING.match(line)
        if not match:
            process.kill()
            pytest.fail(f"unexpected first line {line!r}; stderr: {process.communicate()[1]}")
        yield match.group(1)
        process.terminate()
        assert process.wait(timeout=30) == 0, "SIGTERM should end the emulator with exit 0"
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def _settle(api: httpx.Client, project_id: str, operations: list[dict[str, Any]]) -> None:
    deadline = time.monotonic() + 30
    for op in operations:
        while True:
            status = api.get(f"/projects/{project_id}/operations/{op['id']}").json()["operation"]["status"]
            if status == "finished":
                break
            assert status in ("scheduling", "running"), status
            assert time.monotonic() < deadline, f"operation {op['id']} still {status}"
            time.sleep(0.05)


def test_the_installed_command_serves_a_branch_lifecycle(served: str) -> None:
    headers = {"Authorization": f"Bearer {API_KEY}"}
    with httpx.Client(base_url=served, headers=headers, timeout=10) as api:
        created = api.post("/projects", json={"project": {"name": "wheel"}})
        assert created.status_code == 201, created.text
        pid = created.json()["project"]["id"]
        _settle(api, pid, created.json()["operations"])

        branch = api.post(
            f"/projects/{pid}/branches",
            json={"branch": {"name": "preview"}, "endpoints": [{"type": "read_write"}]},
        )
        assert branch.status_code == 201, branch.text
        bid = branch.json()["branch"]["id"]
        _settle(api, pid, branch.json()["operations"])
        assert api.get(f"/projects/{pid}/branches/{bid}").json()["branch"]["current_state"] == "ready"

        deleted = api.delete(f"/projects/{pid}/branches/{bid}")
        assert deleted.status_code == 200, deleted.text
        _settle(api, pid, deleted.json()["operations"])
        assert api.get(f"/projects/{pid}/branches/{bid}").status_code == 404
