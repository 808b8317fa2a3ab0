"""Choosing the data plane, starting and stopping the private server, and leaving nothing behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from jambo_emulator import dataplane
from jambo_emulator.dataplane import DataPlaneError, NullDataPlane, create_data_plane
from jambo_emulator.dataplane import pg_server as server_module
from jambo_emulator.dataplane.postgres import PostgresDataPlane

ROOT = Path(__file__).resolve().parents[3]


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def _wait_gone(pid: int, path: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while (_alive(pid) or os.path.exists(path)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(pid), f"postmaster {pid} still running"
    assert not os.path.exists(path), f"{path} left behind"


def _postmasters(plane: PostgresDataPlane) -> list[tuple[int, str]]:
    """(postmaster pid, directory) of every server the plane runs: the branches' and the pool's."""
    return [
        (int(Path(s.base_dir, "data", "postmaster.pid").read_text().split()[0]), s.base_dir)
        for s in plane.servers
    ]


def test_modes_resolve_to_the_right_plane(capsys: pytest.CaptureFixture[str]) -> None:
    assert isinstance(create_data_plane("off"), NullDataPlane)
    assert isinstance(create_data_plane("auto"), PostgresDataPlane)
    assert isinstance(create_data_plane("on"), PostgresDataPlane)
    assert capsys.readouterr().err == ""
    with pytest.raises(ValueError, match="must be one of auto, on, off, got 'maybe'"):
        create_data_plane("maybe")


def test_auto_without_binaries_says_so_in_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(server_module, "find_binaries", lambda: None)
    plane = create_data_plane("auto")
    assert isinstance(plane, NullDataPlane)
    assert not plane.enabled
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "data plane off" in err
    assert "PostgreSQL" in err
    with pytest.raises(DataPlaneError, match="unavailable: no PostgreSQL"):
        create_data_plane("on")
    assert dataplane.MODES == ("auto", "on", "off")


def test_stop_leaves_no_server_and_no_directory() -> None:
    plane = PostgresDataPlane()
    plane.start()
    plane.create_branch("p", "br-1", None)
    plane.create_branch("p", "br-2", "br-1")
    servers = _postmasters(plane)
    assert len(servers) >= 2  # a server per branch (and the pool's spare, once started)
    assert all(_alive(pid) for pid, _ in servers)
    plane.stop()
    plane.stop()  # idempotent
    for pid, base in servers:
        _wait_gone(pid, base, timeout=5.0)


_ORPHAN_SCRIPT = """
import sys, time
from pathlib import Path
from jambo_emulator.dataplane.postgres import PostgresDataPlane
plane = PostgresDataPlane()
plane.start()
plane.create_branch("p", "br-1", None)
plane.create_branch("p", "br-2", "br-1")
for server in plane.servers:
    pid = Path(server.base_dir, "data", "postmaster.pid").read_text().split()[0]
    print(pid, server.base_dir, end=" ", flush=True)
print(flush=True)
time.sleep(600)
"""


def test_server_dies_with_an_emulator_killed_without_cleanup(tmp_path: Path) -> None:
    env = {**os.environ, "AIRFLOW_HOME": str(tmp_path)}
    child = subprocess.Popen(
        [sys.executable, "-c", _ORPHAN_SCRIPT], stdout=subprocess.PIPE, text=True, cwd=ROOT, env=env
    )
    try:
        assert child.stdout is not None
        words = child.stdout.readline().split()
        servers = [(int(pid), base) for pid, base in zip(words[::2], words[1::2], strict=True)]
        assert len(servers) >= 2
        assert all(_alive(pid) for pid, _ in servers)
    finally:
        child.send_signal(signal.SIGKILL)  # no atexit, no stop(): only the watchdogs are left
        child.wait(10)
    for pid, base in servers:
        _wait_gone(pid, base)


def test_pristine_cluster_is_cached_and_reused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    for _ in range(2):  # first start runs initdb and fills the cache, the second copies it
        plane = PostgresDataPlane()
        plane.start()
        try:
            plane.create_branch("p", "br", None)
            plane.create_role("p", "br", "neondb_owner", "secret-1")
            plane.create_database("p", "br", "neondb", "neondb_owner")
        finally:
            plane.stop()
        cached = list((tmp_path / "jambo-emulator").glob("pgdata-*"))
        assert len(cached) == 1
        assert (cached[0] / "PG_VERSION").is_file()
        assert not list((tmp_path / "jambo-emulator").glob(".staging-*"))
