"""Helpers of the deployment cases: run a DAG through the REST API and check what it left behind."""

from __future__ import annotations

import importlib.util
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from airflow_stack import DBT_VENV_EXECUTABLE, AirflowStack

#: "<executor> <dag_id> <run state> <seconds>" per run, printed in the terminal summary.
TIMINGS: list[str] = []


def fresh_case(stack: AirflowStack) -> Iterator[AirflowStack]:
    """A case's view of the shared stack: every component up, the emulator reset and re-seeded."""
    stack.check_running()
    stack.reset_emulator()
    yield stack
    stack.check_running()


@dataclass
class Run:
    dag_id: str
    run_id: str
    state: str
    tasks: dict[str, dict[str, Any]]
    seconds: float

    @property
    def task_states(self) -> dict[str, str | None]:
        return {task_id: ti["state"] for task_id, ti in self.tasks.items()}

    def describe(self) -> str:
        return f"{self.dag_id} {self.run_id}: {self.state} {self.task_states}"


def trigger(stack: AirflowStack, dag_id: str, conf: Mapping[str, Any] | None = None) -> tuple[str, float]:
    started = time.monotonic()
    return stack.trigger(dag_id, conf), started


def finish(stack: AirflowStack, dag_id: str, run_id: str, started: float, timeout: float = 300) -> Run:
    """Wait for the run's final state; the DAG is paused again (no scheduled runs between cases)."""
    run = stack.wait_for_run(dag_id, run_id, timeout=timeout)
    seconds = time.monotonic() - started
    result = Run(dag_id, run_id, run["state"], stack.task_instances(dag_id, run_id), seconds)
    TIMINGS.append(f"{stack.options.executor:<7} {dag_id:<36} {result.state:<8} {seconds:6.1f} s")
    return result


def run_dag(
    stack: AirflowStack, dag_id: str, conf: Mapping[str, Any] | None = None, timeout: float = 300
) -> Run:
    """Trigger a manual run (REST API, no logical date) and wait for it."""
    run_id, started = trigger(stack, dag_id, conf)
    try:
        return finish(stack, dag_id, run_id, started, timeout)
    finally:
        stack.unpause(dag_id, paused=True)


def branch_names(stack: AirflowStack) -> list[str]:
    return sorted(b["name"] for b in stack.branches())


def assert_only_main(stack: AirflowStack, timeout: float = 30) -> None:
    """Only ``main`` is left on the emulator (deletes may still be finishing: allow a few seconds)."""
    deadline = time.monotonic() + timeout
    while (names := branch_names(stack)) != ["main"] and time.monotonic() < deadline:
        time.sleep(1)
    assert names == ["main"], f"branches left on the emulator: {names}"


def branch_posts(stack: AirflowStack) -> list[dict[str, Any]]:
    """Branch-create requests in the emulator's request log."""
    return [
        r
        for r in stack.control("GET", "requests")["requests"]
        if r["method"] == "POST" and r["route"] == "/projects/{project_id}/branches"
    ]


DBT_PREVIEW = "example_jambo_dbt_preview"


def dbt_ready(stack: AirflowStack) -> None:
    """Skip a dbt case where it cannot run: no Cosmos or no dbt virtualenv."""
    if importlib.util.find_spec("cosmos") is None:
        pytest.skip("needs the cosmos extra (astronomer-cosmos)")
    if not DBT_VENV_EXECUTABLE.exists() and "JAMBO_DBT_EXECUTABLE" not in stack.options.extra_env:
        pytest.skip("dbt's virtualenv is missing: run scripts/bootstrap")


def main_has_dbt_relations(stack: AirflowStack) -> bool:
    """Whether anything dbt builds (the ``analytics`` schema) reached ``main``."""
    with psycopg.connect(stack.main_connection_uri(), connect_timeout=20) as conn:
        row = conn.execute("SELECT to_regnamespace('analytics') IS NOT NULL").fetchone()
    return bool(row and row[0])
