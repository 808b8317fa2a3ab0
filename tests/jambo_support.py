"""Test support every test area shares: a project on the emulator, its connection, a task context.

``JamboProject``: a project on an emulator, with the default connection pointing at it.
``connection_json``: that connection as ``AIRFLOW_CONN_*`` holds it, exactly as a user would set it.
``FakeTI``/``make_context``: the slice of an Airflow task context the operators use, with a ``ti``
that keeps XCom pushes as the XCom table would (JSON).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

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
            return list(hook.branches.list(self.project_id))

    def branch_named(self, name: str) -> Any:
        matches = [b for b in self.branches() if b.name == name]
        assert len(matches) <= 1, matches
        return matches[0] if matches else None


def connection_json(
    emu: Any,
    project_id: str,
    api_key: str | None = None,
    *,
    max_retries: int = 4,
    retry_max_wait: float = 20,
) -> str:
    return json.dumps(
        {
            "conn_type": "jambo",
            "host": emu.base_url,
            "password": api_key if api_key is not None else emu.api_key,
            "extra": {"project_id": project_id, "max_retries": max_retries, "retry_max_wait": retry_max_wait},
        }
    )


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
        self.pushed[key] = json.loads(json.dumps(value))  # what the XCom table would hold

    def xcom_pull(self, task_ids: str | None = None, key: str = "return_value", **kwargs: Any) -> Any:
        assert task_ids == self.task_id, "operators only read their own XCom back"
        return self.pushed.get(key)


def make_context(task_id: str = "test_task", try_number: int = 1, **extra: Any) -> dict[str, Any]:
    ti = FakeTI(task_id=task_id, try_number=try_number)
    return {"ti": ti, "task_instance": ti, "run_id": ti.run_id, "params": {}, **extra}
