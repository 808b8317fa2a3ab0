"""Lineage as a user with the OpenLineage provider gets it: ``airflow dags test`` with a file transport.

The OpenLineage listener extracts each task's lineage in a forked process with a time limit. A
connection lookup made there cannot reach the task's supervisor and blocks until the listener kills
the process ("expired and will be terminated"): ~10 s per event, and no event. The provider's SQL
hook answered OpenLineage's lookups of its in-memory connection id that way, and the SQL operator
built its connection (a lookup of the API connection, then an API call) for the START event. These
tests run the DAGs as a user would and read what reached the transport.

How long lineage takes is measured by ``benchmarks/lineage_cost.py`` (the same DAG with and without
OpenLineage, in one run), not timed here; a stall shows here as the listener's expiry, which the
tests refuse (with the listener's limit lowered to 5 s so a shorter stall shows too).
"""

from __future__ import annotations

import json
import shutil
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dags.runner import EXAMPLE_DAGS, AirflowHome, DagRunResult, demo_project

from jambo_emulator import JamboEmulator

pytest.importorskip(
    "airflow.providers.openlineage", reason="the OpenLineage provider is not installed (a dev dependency)"
)

pytestmark = [pytest.mark.dags, pytest.mark.postgres]

LINEAGE_DAG = Path(__file__).resolve().parent / "dag_files" / "jambo_lineage_sql.py"
PREVIEW = EXAMPLE_DAGS / "example_jambo_preview_environment.py"
EXPIRED = "expired and will be terminated by listener"


@pytest.fixture(scope="module")
def emulator() -> Iterator[JamboEmulator]:
    with JamboEmulator(api_key="lineage-key", operation_duration=0.0, data_plane="auto") as emu:
        if not emu.ctx.data_plane.enabled:
            pytest.skip("PostgreSQL server binaries not found: the emulator's data plane is off")
        yield emu


@pytest.fixture
def project_env(emulator: JamboEmulator, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """A project whose main holds the demo data; the connection env var for its DAG runs."""
    demo = demo_project(emulator, "lineage", monkeypatch.setenv)
    return {"AIRFLOW_CONN_JAMBO_DEFAULT": demo.conn_json}


def _run_with_lineage(
    airflow_home: AirflowHome, dag_file: Path, env: dict[str, str], tmp_path: Path
) -> tuple[DagRunResult, list[dict[str, Any]]]:
    events_file = tmp_path / "openlineage.jsonl"
    lineage_env = {
        **env,
        "AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps(
            {"type": "file", "log_file_path": str(events_file), "append": True}
        ),
        "AIRFLOW__OPENLINEAGE__EXECUTION_TIMEOUT": "5",
    }
    result = airflow_home.run_dag(dag_file, env=lineage_env)
    assert events_file.exists(), f"no OpenLineage event was written\n{result.describe()}"
    events = [json.loads(line) for line in events_file.read_text().splitlines() if line.strip()]
    return result, events


def _task_events(events: list[dict[str, Any]], dag_id: str) -> dict[str, dict[str, dict[str, Any]]]:
    """task id -> event type -> the task's own event (not the per-query child jobs)."""
    found: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    for event in events:
        name = event["job"]["name"]
        prefix = f"{dag_id}."
        if name.startswith(prefix) and ".query." not in name:
            found[name[len(prefix) :]][event["eventType"]] = event
    return found


def _datasets(event: dict[str, Any], side: str) -> set[tuple[str, str]]:
    return {(d["namespace"], d["name"]) for d in event.get(side, [])}


def test_the_three_task_dag_emits_every_event_with_the_sql_datasets_and_never_stalls(
    airflow_home: AirflowHome, emulator: JamboEmulator, project_env: dict[str, str], tmp_path: Path
) -> None:
    result, events = _run_with_lineage(airflow_home, LINEAGE_DAG, project_env, tmp_path)
    assert result.state == "success", result.describe()
    assert EXPIRED not in result.output, result.describe()

    tasks = _task_events(events, "jambo_lineage_sql")
    for task_id in ("create", "sql", "delete"):
        assert set(tasks[task_id]) == {"START", "COMPLETE"}, (task_id, sorted(tasks[task_id]))

    branch = result.xcoms[("create", "return_value")]
    namespace = f"postgres://{branch['host']}"
    complete = tasks["sql"]["COMPLETE"]
    outputs = _datasets(complete, "outputs")
    inputs = _datasets(complete, "inputs")
    # Datasets are named by the branch's endpoint (its host and the proxy's port) and database.
    assert {name for ns, name in outputs if ns.startswith(namespace)} == {"neondb.public.t2"}, outputs
    assert {name for ns, name in inputs if ns.startswith(namespace)} == {"neondb.public.orders"}, inputs
    assert "create table t2" in complete["job"]["facets"]["sql"]["query"].lower()
    # START comes before the task connects: the SQL is there, and nothing was looked up for it.
    assert "create table t2" in tasks["sql"]["START"]["job"]["facets"]["sql"]["query"].lower()
    # Nothing secret reached the lineage backend: no role password (the service's start with
    # "npg_", as the emulator's do) and not the API key.
    text = json.dumps(events)
    assert "npg_" not in text
    assert emulator.api_key not in text


def test_the_preview_example_emits_start_and_complete_for_every_task(
    airflow_home: AirflowHome, project_env: dict[str, str], tmp_path: Path
) -> None:
    shutil.copytree(EXAMPLE_DAGS / "sql", airflow_home.dags_folder / "sql", dirs_exist_ok=True)
    result, events = _run_with_lineage(airflow_home, PREVIEW, project_env, tmp_path)
    assert result.state == "success", result.describe()
    assert EXPIRED not in result.output, result.describe()

    tasks = _task_events(events, "example_jambo_preview_environment")
    assert set(tasks) == set(result.task_states), sorted(tasks)
    for task_id, by_type in tasks.items():
        assert set(by_type) == {"START", "COMPLETE"}, (task_id, sorted(by_type))
    # The transform writes customer_revenue from orders and customers, on the branch's endpoint.
    branch = result.xcoms[("create_branch", "return_value")]
    outputs = _datasets(tasks["transform"]["COMPLETE"], "outputs")
    assert "neondb.public.customer_revenue" in {
        name for ns, name in outputs if ns.startswith(f"postgres://{branch['host']}")
    }, outputs
