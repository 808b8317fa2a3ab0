"""An emulator on the wall clock (operations take real time), for waits that must end on their own:
a cleanup waiting for the project to be unlocked, an inline grace, runs queued on a locked project.
(The ``jambo_emulator`` fixture's manual clock stands still until a test advances it.)"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from jambo_support import JamboProject, connection_json

from airflow_provider_jambo.hooks.jambo import JamboHook
from jambo_emulator import JamboEmulator

#: Seconds per operation: long enough to be caught in flight, short enough for a quick test.
OPERATION_SECONDS = 0.4


@pytest.fixture(scope="module")
def realtime_emulator() -> Iterator[JamboEmulator]:
    with JamboEmulator(
        api_key="realtime-key",
        deterministic=True,
        manual_clock=False,
        operation_duration=OPERATION_SECONDS,
        data_plane="off",
    ) as emu:
        yield emu


@pytest.fixture
def live_project(realtime_emulator: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[JamboProject]:
    realtime_emulator.reset()
    realtime_emulator.set_operation_durations(default=OPERATION_SECONDS)
    project = realtime_emulator.create_project(name="realtime")
    project_id = project["id"] if "id" in project else project["project"]["id"]
    monkeypatch.setenv("AIRFLOW_CONN_JAMBO_DEFAULT", connection_json(realtime_emulator, project_id))
    with JamboHook() as hook:
        wait = [op.id for op in hook.operations.list(project_id)]
        hook.operations.wait(wait, project_id=project_id, timeout=30).raise_for_status()
        default = hook.branches.get_default(project_id)
    yield JamboProject(emu=realtime_emulator, project_id=project_id, default_branch_id=default.id)
    realtime_emulator.reset()
