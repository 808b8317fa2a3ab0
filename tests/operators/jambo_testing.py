"""The ``jambo_project`` fixture of the operator, sensor and trigger tests (their conftest.py
imports it): a project on the in-process emulator (deterministic mode) and the default connection
pointing at it through ``AIRFLOW_CONN_JAMBO_DEFAULT``. The helpers are ``tests/jambo_support.py``'s.
"""

from __future__ import annotations

from typing import Any

import pytest
from jambo_support import JamboProject, connection_json

from airflow_provider_jambo.hooks.jambo import JamboHook


@pytest.fixture
def jambo_project(jambo_emulator: Any, monkeypatch: pytest.MonkeyPatch) -> JamboProject:
    project = jambo_emulator.create_project(name="operators")
    project_id = project["id"] if "id" in project else project["project"]["id"]
    monkeypatch.setenv("AIRFLOW_CONN_JAMBO_DEFAULT", connection_json(jambo_emulator, project_id))
    with JamboHook() as hook:
        default = hook.branches.get_default(project_id)
    return JamboProject(emu=jambo_emulator, project_id=project_id, default_branch_id=default.id)
