"""The README's quickstart, run as a pip user would run it, from freshly built wheels.

The commands and the DAG come from the README itself: every fenced block that follows a
``<!-- quickstart:NAME -->`` marker. So the quickstart cannot drift from the code: a renamed
parameter, a changed start-up line or a wrong connection form fails here.

What the test changes, and why:
- ``pip install`` runs as ``uv pip install`` into a fresh virtualenv (uv's cache makes it fast), with
  the provider and the emulator taken from the wheels just built (``name[extras] @ file://...``)
  instead of the package index, and with the repository's lock as constraints, so the versions are
  the tested ones.
- Port 8080 becomes a free port (the machine may be running something there).
- The emulator block runs in the background instead of a second terminal.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import socket
import subprocess
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path

import httpx
import pytest
from distribution_support import ROOT, build_wheels, run, uv

MARKER = re.compile(r"<!-- quickstart:(\w+) -->\n```\w*\n(.*?)\n```", re.DOTALL)
LISTENING = re.compile(r"^Jambo API emulator listening on (http://127\.0\.0\.1:\d+/api/v2)$")
PORT = "8080"


def quickstart_blocks() -> dict[str, str]:
    blocks = dict(MARKER.findall((ROOT / "README.md").read_text()))
    assert set(blocks) == {"install", "emulator", "shell", "dag", "run"}, sorted(blocks)
    return blocks


def free_port() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return str(sock.getsockname()[1])


def test_the_quickstart_is_at_the_top_and_the_package_description_stops_before_scripts() -> None:
    readme = (ROOT / "README.md").read_text()
    sections = re.findall(r"^## (.+)$", readme, re.MULTILINE)
    assert sections[:3] == [
        "Quickstart (pip)",
        '"Jambo" and the host names you will see',
        "Contributing / developing",
    ]
    description = readme.split("<!-- package description ends -->")[0]
    assert "scripts/" not in description
    assert "bash scripts/main-job" in readme.split("## Contributing / developing")[1].split("\n## ")[0]


@pytest.fixture(scope="module")
def blocks() -> dict[str, str]:
    return quickstart_blocks()


@pytest.fixture(scope="module")
def venv(blocks: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtualenv with the README's install command run in it (from the built wheels)."""
    from jambo_emulator.dataplane.pg_server import find_binaries

    if find_binaries() is None:
        pytest.skip("the quickstart runs SQL on a branch: it needs PostgreSQL server binaries")
    work = tmp_path_factory.mktemp("quickstart")
    wheels = build_wheels(work / "dist")
    command = shlex.split(blocks["install"])
    assert command[:2] == ["pip", "install"], blocks["install"]
    # The README installs the Airflow this repository is developed and locked on.
    assert f"apache-airflow=={version('apache-airflow')}" in command
    requirements = [
        f"{arg} @ {wheels['airflow_provider_jambo'].as_uri()}"
        if arg.startswith("airflow-provider-jambo")
        else arg
        for arg in command[2:]
    ]
    assert requirements != command[2:], "the README no longer installs airflow-provider-jambo"
    constraints = work / "constraints.txt"
    run(uv(), "export", "--frozen", "--no-hashes", "--no-emit-workspace", "--all-extras", "-o", constraints)
    env_dir = work / "venv"
    run(uv(), "venv", "--quiet", "-p", "3.11", env_dir)
    run(
        uv(), "pip", "install", "--quiet", "-p", env_dir / "bin" / "python", "-c", constraints,
        *requirements, f"jambo-emulator @ {wheels['jambo_emulator'].as_uri()}",
    )  # fmt: skip
    return env_dir


def clean_env(venv: Path, cwd: Path) -> dict[str, str]:
    """A shell as a new user has it: the virtualenv activated, nothing of this test session's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "PYTHONPATH", "VIRTUAL_ENV"))}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["VIRTUAL_ENV"] = str(venv)
    env["HOME"] = str(cwd)
    return env


@pytest.fixture
def emulator(venv: Path, blocks: dict[str, str], tmp_path: Path) -> Iterator[tuple[str, str]]:
    """The README's emulator command, in the background; (its base URL, its other start-up lines)."""
    port = free_port()
    command = shlex.split(blocks["emulator"].replace(PORT, port))
    assert command[0] == "jambo-emulator", blocks["emulator"]
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        env=clean_env(venv, tmp_path),
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline().rstrip("\n")
        match = LISTENING.match(first)
        assert match, f"{first!r}; stderr: {process.stderr.read() if process.stderr else ''}"
        rest = "".join(process.stdout.readline() for _ in range(3))
        yield match.group(1), rest
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=60) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_the_readme_quickstart_runs_from_the_wheels(
    venv: Path, blocks: dict[str, str], emulator: tuple[str, str], tmp_path: Path
) -> None:
    base_url, startup = emulator
    port = base_url.split(":")[2].split("/")[0]
    assert startup.startswith("Data plane: on, PostgreSQL"), startup
    assert f'"host": "http://127.0.0.1:{port}/api/v2"' in startup

    dag_file = tmp_path / "airflow-home" / "dags" / "jambo_quickstart.py"
    dag_file.parent.mkdir(parents=True)
    dag_file.write_text(blocks["dag"])
    script = "\n".join(
        [
            "set -euo pipefail",
            blocks["shell"].replace(PORT, port),
            'echo "project: $JAMBO_PROJECT_ID"',
            blocks["run"].replace(PORT, port),
        ]
    )
    result = subprocess.run(
        ["bash", "-c", script],
        cwd=tmp_path,
        env=clean_env(venv, tmp_path),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    assert "Connection success!" in output, output[-3000:]
    project_id = re.search(r"^project: (\S+)$", result.stdout, re.MULTILINE)
    assert project_id, output[-3000:]
    # The SQL ran on the branch (its result logged), and the run ended in success.
    assert "Operator output is: [None, None, [(2,)]]" in output, output[-3000:]
    finished = re.search(r"DagRun Finished: dag_id=jambo_quickstart, .*", output)
    assert finished, output[-3000:]
    assert "state=success" in finished.group(0)

    # What the DAG did, read from the API: a branch was created and deleted, main is left alone.
    headers = {"Authorization": "Bearer local-dev-key"}
    with httpx.Client(base_url=base_url, headers=headers, timeout=30) as api:
        branches = api.get(f"/projects/{project_id.group(1)}/branches").json()["branches"]
        operations = api.get(f"/projects/{project_id.group(1)}/operations").json()["operations"]
    assert [b["name"] for b in branches] == ["main"]
    actions = {op["action"] for op in operations}
    assert {"create_branch", "delete_timeline"} <= actions, actions
