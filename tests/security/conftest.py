"""Fixtures of the secret-leak tests: a project on the in-process emulator and the leak watch."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from security_support import LeakWatch, SecProject, connection_json

from airflow_provider_jambo.hooks.jambo import JamboHook


@pytest.fixture
def sec_project(jambo_emulator: Any, monkeypatch: pytest.MonkeyPatch) -> SecProject:
    body = jambo_emulator.create_project(name="security")
    project_id = body["project"]["id"]
    monkeypatch.setenv("AIRFLOW_CONN_JAMBO_DEFAULT", connection_json(jambo_emulator, project_id))
    with JamboHook() as hook:
        hook.operations.wait([op["id"] for op in body.get("operations", [])], project_id=project_id)
        default = hook.branches.get_default(project_id)
    return SecProject(emu=jambo_emulator, project_id=project_id, default_branch_id=default.id)


@pytest.fixture
def leak_watch(
    jambo_emulator: Any, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> Iterator[LeakWatch]:
    watch = LeakWatch(jambo_emulator, caplog, capfd)
    watch.start()
    yield watch
    watch.stop()
