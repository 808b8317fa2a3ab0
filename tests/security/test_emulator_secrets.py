"""The emulator is a tool users run: its request log, its control API and its own output (at
``--log-level debug``) never show an API key or a role password, except the one key it generates
and prints once on purpose."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
from typing import Any

import httpx
from security_support import LeakWatch, SecProject

LISTENING = re.compile(r"listening on (http://127\.0\.0\.1:\d+/api/v2)")


def test_request_log_and_control_api_hold_no_secret(sec_project: SecProject, leak_watch: LeakWatch) -> None:
    emu = sec_project.emu
    with sec_project.hook() as hook:
        main = sec_project.default_branch_id
        leak_watch.remember(hook.roles.reveal_password(main, "neondb_owner"))
        leak_watch.remember(hook.roles.reset_password(main, "neondb_owner").resource.password)
        leak_watch.remember(
            hook.branches.connection_uri(branch_id=main, database="neondb", role="neondb_owner")
        )
    with httpx.Client(base_url=emu.base_url, headers={"Authorization": "Bearer not-a-key-6a1f0c"}) as bad:
        assert bad.get("/projects").status_code == 401
    leak_watch.remember("not-a-key-6a1f0c")
    with httpx.Client(base_url=emu.control_url) as control:
        leak_watch.see("control config", control.get("/config").json())
        leak_watch.see("control request log", control.get("/requests").json())
    leak_watch.see("request log", emu.requests())
    with emu.client() as api:
        listed = api.get("/api_keys").json()
    leak_watch.see("GET /api_keys", listed)
    assert len(emu.requests()) >= 5
    leak_watch.assert_clean(expect=("reveal_password", "reset_password"), min_passwords=2)


def test_emulator_cli_output_at_debug_shows_no_secret() -> None:
    key = "cli-secret-key-3c9d1e7f"
    env = {**os.environ, "AIRFLOW_HOME": tempfile.mkdtemp(prefix="jambo-sec-cli-")}
    cmd = [sys.executable, "-m", "jambo_emulator", "--port", "0", "--api-key", key]
    proc = subprocess.Popen(
        [*cmd, "--postgres", "off", "--log-level", "debug", "--operation-duration", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    secrets: set[str] = {key, "wrong-cli-key-0b8a"}
    try:
        assert proc.stdout is not None
        first = ""
        found = None
        while found is None and proc.poll() is None:  # uvicorn's debug lines come first
            line = proc.stdout.readline()
            first += line
            found = LISTENING.search(line)
        assert found, first
        headers = {"Authorization": f"Bearer {key}"}
        with httpx.Client(base_url=found.group(1), headers=headers, timeout=30) as api:
            body: dict[str, Any] = api.post("/projects", json={"project": {"name": "cli"}}).json()
            project_id, branch_id = body["project"]["id"], body["branch"]["id"]
            secrets.update(role["password"] for role in body["roles"] if role.get("password"))
            roles = f"/projects/{project_id}/branches/{branch_id}/roles"
            secrets.add(api.get(f"{roles}/neondb_owner/reveal_password").json()["password"])
            secrets.add(api.post(f"{roles}/neondb_owner/reset_password").json()["role"]["password"])
            assert (
                api.get("/projects", headers={"Authorization": "Bearer wrong-cli-key-0b8a"}).status_code
                == 401
            )
            assert api.get(f"{roles}/nobody/reveal_password").status_code == 404
    finally:
        proc.send_signal(signal.SIGINT)
        output, _ = proc.communicate(timeout=30)
    output = first + output
    assert proc.returncode == 0, output
    assert "Started server process" in output, "the emulator's log output was not captured"
    assert len(secrets) >= 4
    leaked = [f"secret #{i} ({len(s)} chars)" for i, s in enumerate(sorted(secrets)) if s in output]
    assert not leaked, f"{leaked} in the emulator's output"
