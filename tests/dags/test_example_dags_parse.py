"""The example DAGs import cleanly, and parsing them makes no connection lookup, API call or DB query."""

from __future__ import annotations

import os
import runpy
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from airflow.providers.common.compat.sdk import BaseHook, Connection, Variable
from runner import AIRFLOW_2, EXAMPLE_DAGS, dag_bag
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine

EXAMPLES = {
    "example_jambo_ephemeral_branch.py": "example_jambo_ephemeral_branch",
    "example_jambo_compute.py": "example_jambo_compute",
    "example_jambo_operation_sensor.py": "example_jambo_operation_sensor",
    "example_jambo_preview_environment.py": "example_jambo_preview_environment",
    "example_jambo_scheduled_report.py": "example_jambo_scheduled_report",
    "example_jambo_janitor.py": "example_jambo_janitor",
    "example_jambo_anonymized_preview.py": "example_jambo_anonymized_preview",
    "example_jambo_nightly_snapshot.py": "example_jambo_nightly_snapshot",
    "example_jambo_branch_task.py": "example_jambo_branch_task",
}
if not AIRFLOW_2:  # asset watchers: Airflow 3 only
    EXAMPLES["example_jambo_branch_events.py"] = "example_jambo_branch_events"
try:  # the dbt example needs the cosmos extra (the lock has it; the compat lines do not)
    import cosmos.profiles  # noqa: F401
except ImportError:
    COSMOS = False
else:
    COSMOS = True
    EXAMPLES["example_jambo_dbt_preview.py"] = "example_jambo_dbt_preview"


class Forbidden(AssertionError):
    pass


@pytest.fixture
def no_io(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Any connection lookup, HTTP request or SQL statement while parsing is recorded and raises."""
    calls: list[str] = []

    def refuse(what: str) -> Any:
        def _refuse(*args: Any, **kwargs: Any) -> Any:
            calls.append(what)
            raise Forbidden(f"{what} during DAG parsing")

        return _refuse

    monkeypatch.setattr(BaseHook, "get_connection", classmethod(refuse("connection lookup")))
    # Airflow 2 has no Connection.get; its lookups all go through get_connection_from_secrets.
    lookup = "get" if hasattr(Connection, "get") else "get_connection_from_secrets"
    monkeypatch.setattr(Connection, lookup, classmethod(refuse("connection lookup")))
    monkeypatch.setattr(Variable, "get", staticmethod(refuse("variable lookup")))
    if hasattr(BaseHook, "aget_connection"):
        monkeypatch.setattr(BaseHook, "aget_connection", classmethod(refuse("connection lookup")))
    monkeypatch.setattr(httpx.HTTPTransport, "handle_request", refuse("HTTP request"))
    monkeypatch.setattr(httpx.AsyncHTTPTransport, "handle_async_request", refuse("HTTP request"))

    def on_sql(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        calls.append(f"SQL: {statement[:80]}")
        raise Forbidden(f"DB query during DAG parsing: {statement[:80]}")

    event.listen(Engine, "before_cursor_execute", on_sql)
    yield calls
    event.remove(Engine, "before_cursor_execute", on_sql)


def test_the_guards_do_catch_io(no_io: list[str]) -> None:
    """The guards are live: a lookup and a request both get caught (so the next test can fail)."""
    with pytest.raises(Forbidden):
        BaseHook.get_connection("jambo_default")
    with pytest.raises(Forbidden), httpx.Client() as client:
        client.get("http://127.0.0.1:9/")
    with pytest.raises(Forbidden), create_engine("sqlite://").connect() as conn:
        conn.execute(text("SELECT 1"))
    assert no_io[:2] == ["connection lookup", "HTTP request"]
    assert no_io[2].startswith("SQL: SELECT 1")


def test_example_dags_parse_without_io(no_io: list[str], tmp_path: Path) -> None:
    for name in EXAMPLES:
        shutil.copy(EXAMPLE_DAGS / name, tmp_path / name)
    # The dbt example renders its task group from the project's `dbt ls` file beside it.
    shutil.copytree(EXAMPLE_DAGS / "dbt", tmp_path / "dbt")
    bag = dag_bag(tmp_path)
    assert bag.import_errors == {}
    assert no_io == []
    assert set(bag.dag_ids) == set(EXAMPLES.values())
    for dag_id in EXAMPLES.values():
        dag = bag.dags[dag_id]
        assert dag.tags
        assert "jambo" in dag.tags
        assert dag.task_dict  # has tasks


@pytest.mark.skipif(AIRFLOW_2, reason="asset watchers need Airflow 3")
def test_branch_events_example_is_scheduled_on_a_watched_asset() -> None:
    example = runpy.run_path(str(EXAMPLE_DAGS / "example_jambo_branch_events.py"))
    asset = example["PREVIEW_BRANCHES"]
    dag = dag_bag(EXAMPLE_DAGS / "example_jambo_branch_events.py").dags["example_jambo_branch_events"]
    assert [a.name for a in dag.timetable.asset_condition.objects] == [asset.name]
    [watcher] = asset.watchers
    classpath, kwargs = watcher.trigger.serialize()
    assert classpath == "airflow_provider_jambo.triggers.events.JamboBranchEventTrigger"
    assert kwargs["name_prefix"] == "preview/"


@pytest.mark.skipif(AIRFLOW_2, reason="asset watchers need Airflow 3")
def test_branch_events_example_reads_several_events_of_one_run() -> None:
    example = runpy.run_path(str(EXAMPLE_DAGS / "example_jambo_branch_events.py"))
    asset = example["PREVIEW_BRANCHES"]
    dag = dag_bag(EXAMPLE_DAGS / "example_jambo_branch_events.py").dags["example_jambo_branch_events"]

    def event(kind: str, branch_id: str, name: str) -> SimpleNamespace:
        payload = {"event": kind, "branch_id": branch_id, "branch_name": name, "project_id": "p-1", "at": "t"}
        return SimpleNamespace(extra={"from_trigger": True, "payload": payload})

    batch = [
        event("created", "br-1", "preview/1"),
        event("created", "br-2", "preview/2"),
        SimpleNamespace(extra={}),  # an asset event from elsewhere
        event("reset", "br-1", "preview/1"),
    ]

    class TriggeringEvents:
        """Airflow's accessor, looked up by asset (an Asset is not hashable on every line)."""

        def __getitem__(self, key: Any) -> list[SimpleNamespace]:
            assert key.name == asset.name
            return batch

    read = dag.task_dict["branches_from_events"].python_callable(triggering_asset_events=TriggeringEvents())
    assert [(b["branch_id"], b["event"]) for b in read] == [("br-1", "reset"), ("br-2", "created")]


def test_ephemeral_branch_example_uses_setup_and_teardown() -> None:
    bag = dag_bag(EXAMPLE_DAGS / "example_jambo_ephemeral_branch.py")
    dag = bag.dags["example_jambo_ephemeral_branch"]
    assert dag.task_dict["create_branch"].is_setup
    assert dag.task_dict["delete_branch"].is_teardown
    assert dag.task_dict["delete_branch"].upstream_task_ids >= {"create_branch", "work"}


#: Imported only when a task runs: the hook and its HTTP client, the SQL hook (and with it psycopg),
#: the models, the triggers. Only our modules are listed: httpx and tenacity are imported by
#: Airflow's task SDK itself, and airflow.triggers.base by Airflow 2.11's BaseOperator and 3.0's
#: standard operators.
RUN_TIME_MODULES = (
    "airflow_provider_jambo.hooks.jambo",
    "airflow_provider_jambo.hooks.settings",
    "airflow_provider_jambo.hooks.client",
    "airflow_provider_jambo.hooks.retry",
    "airflow_provider_jambo.hooks.project_lock",
    "airflow_provider_jambo.hooks.waiting",
    "airflow_provider_jambo.hooks.poller",
    "airflow_provider_jambo.hooks.branch_feed",
    "airflow_provider_jambo.hooks.resources.resource_group",
    "airflow_provider_jambo.hooks.resources.branches",
    "airflow_provider_jambo.hooks.resources.computes",
    "airflow_provider_jambo.hooks.resources.operations",
    "airflow_provider_jambo.hooks.resources.anonymization",
    "airflow_provider_jambo.hooks.branch_postgres",
    "airflow_provider_jambo.api_models",
    "airflow_provider_jambo.create_branch_request",
    "airflow_provider_jambo.triggers.wait_trigger",
    "airflow_provider_jambo.triggers.operation_trigger",
    "airflow_provider_jambo.triggers.operation_events",
)


def test_parsing_the_examples_imports_no_run_time_module(tmp_path: Path) -> None:
    """What keeps a DAG of our operators about as cheap to parse as Airflow's own
    (benchmarks/dag_parse_cost.py). A fresh process: this one has imported everything already."""
    files = [str(EXAMPLE_DAGS / name) for name in EXAMPLES]
    code = (
        "import importlib.util, sys\n"
        "for i, path in enumerate(sys.argv[1:]):\n"
        "    spec = importlib.util.spec_from_file_location(f'dag_{i}', path)\n"
        "    spec.loader.exec_module(importlib.util.module_from_spec(spec))\n"
        f"print(sorted(m for m in {RUN_TIME_MODULES!r} if m in sys.modules))\n"
    )
    env = {**os.environ, "AIRFLOW_HOME": str(tmp_path), "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
    done = subprocess.run(
        [sys.executable, "-c", code, *files], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert len(files) == len(EXAMPLES) == (9 if AIRFLOW_2 else 10) + COSMOS
    assert done.stdout.strip().splitlines()[-1] == "[]"
