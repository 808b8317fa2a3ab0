"""Test support shared by the operator, sensor and trigger tests (imported by their conftest.py).

``jambo_project``: a project on the in-process emulator (deterministic mode) and the default
connection pointing at it through ``AIRFLOW_CONN_JAMBO_DEFAULT``, exactly as a user would set it.
``make_context``: the slice of an Airflow task context the operators use, with a recording ``ti``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from airflow_provider_jambo.hooks.jambo import JamboHook


@dataclass
class JamboProject:
    emu: Any
    project_id: str
    default_branch_id: str

    def hook(self) -> JamboHook:
        return JamboHook()

    def branches(self) -> list[Any]:
        with JamboHook() as hook:
            return list(hook.list_branches(self.project_id))

    def branch_named(self, name: str) -> Any:
        matches = [b for b in self.branches() if b.name == name]
        assert len(matches) <= 1, matches
        return matches[0] if matches else None


def connection_json(emu: Any, project_id: str, api_key: str | None = None) -> str:
    return json.dumps(
        {
            "conn_type": "jambo",
            "host": emu.base_url,
            "password": api_key or emu.api_key,
            "extra": {"project_id": project_id, "max_retries": 4, "retry_max_wait": 20},
        }
    )


@pytest.fixture
def jambo_project(jambo_emulator: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[JamboProject]:
    project = jambo_emulator.create_project(name="operators")
    project_id = project["id"] if "id" in project else project["project"]["id"]
    monkeypatch.setenv("AIRFLOW_CONN_JAMBO_DEFAULT", connection_json(jambo_emulator, project_id))
    with JamboHook() as hook:
        default = hook.get_default_branch(project_id)
    return JamboProject(emu=jambo_emulator, project_id=project_id, default_branch_id=default.id)


@dataclass
class FakeTI:
    """Records XCom pushes; carries the identifiers the operators annotate branches with."""

    dag_id: str = "test_dag"
    run_id: str = "manual__2026-06-01T00:00:00+00:00"
    task_id: str = "test_task"
    try_number: int = 1
    map_index: int = -1
    pushed: dict[str, Any] = field(default_factory=dict)

    def xcom_push(self, key: str, value: Any) -> None:
        json.dumps(value)  # XCom values must be JSON-serialisable
        self.pushed[key] = value

    def xcom_pull(self, task_ids: str | None = None, key: str = "return_value", **kwargs: Any) -> Any:
        assert task_ids == self.task_id, "operators only read their own XCom back"
        return self.pushed.get(key)


def make_context(task_id: str = "test_task", try_number: int = 1) -> dict[str, Any]:
    ti = FakeTI(task_id=task_id, try_number=try_number)
    return {"ti": ti, "task_instance": ti, "run_id": ti.run_id}
