"""Run an example DAG with ``airflow dags test`` in a subprocess and collect what it left behind.

Shared by every example-DAG test (issue 4's and issue 5's). One Airflow home per test session
(``airflow db migrate`` once, ~2.5 s); each run is a subprocess with the connection passed by env
var, so the DAG sees exactly what a user's ``airflow dags test`` would. The result carries the run's
state, every task's state, and everything a secret could leak into: the output (task logs go to
stdout under ``dags test``), the task log files, XCom values and rendered template fields.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_DAGS = ROOT / "example_dags"
AIRFLOW_BIN = Path(sys.executable).with_name("airflow")
# `airflow dags test` names the DAG file `--dagfile-path` from Airflow 3; 2.x only has `--subdir`
# (a file or a folder). Read from the installed metadata: this module must not import Airflow.
AIRFLOW_2 = version("apache-airflow").startswith("2.")
# Airflow 3.0's `dags test` (in-process supervisor; structlog left at debug) logs each request to the
# supervisor verbatim, including the MaskSecret request that carries the very value to mask. That line
# is Airflow's own (real supervisors omit request bodies), so the leak checks leave it out.
_AIRFLOW_MASK_REQUEST = re.compile(r"^.*\[debug\s*\] Sending request\s+msg=MaskSecret\(value=.*$", re.M)
_DAG_FILE_FLAG = "--subdir" if AIRFLOW_2 else "--dagfile-path"


def dag_bag(dag_folder: Path) -> Any:
    """Parse DAG files with Airflow's DagBag (not in common-compat: it moved in Airflow 3.1)."""
    try:
        from airflow.dag_processing.dagbag import DagBag
    except ImportError:  # Airflow < 3.1
        from airflow.models.dagbag import DagBag
    return DagBag(dag_folder=dag_folder)


@dataclass
class DagRunResult:
    dag_id: str
    returncode: int
    #: stdout and stderr of ``airflow dags test`` (task logs included).
    output: str
    #: the dag run's final state (``success``/``failed``), None when no run was recorded.
    state: str | None
    #: task_id -> final state
    task_states: dict[str, str | None] = field(default_factory=dict)
    #: (task_id, key) -> deserialized XCom value
    xcoms: dict[tuple[str, str], Any] = field(default_factory=dict)
    #: task_id -> rendered template fields
    rendered_fields: dict[str, Any] = field(default_factory=dict)
    #: text of every task log file written by the run
    log_files: str = ""

    def everything(self) -> str:
        """All text a secret could leak into, in one string (for "never appears" checks)."""
        return "\n".join(
            [
                _AIRFLOW_MASK_REQUEST.sub("", self.output),
                self.log_files,
                json.dumps({f"{t}:{k}": v for (t, k), v in self.xcoms.items()}, default=str),
                json.dumps(self.rendered_fields, default=str),
            ]
        )

    def flat_output(self) -> str:
        """The output with whitespace and box-drawing runs collapsed to one space: Airflow 3.0 prints
        tracebacks in rich panels that wrap long messages across lines."""
        return re.sub(r"[\s\u2500-\u257f]+", " ", self.output)

    def describe(self) -> str:
        """Short failure context for assertion messages."""
        return (
            f"dag {self.dag_id}: rc={self.returncode} state={self.state} tasks={self.task_states}\n"
            + (self.output[-6000:])
        )


class AirflowHome:
    """A migrated Airflow home used by ``airflow dags test`` subprocesses."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.dags_folder = path / "dags"
        self.dags_folder.mkdir(parents=True, exist_ok=True)

    @classmethod
    def create(cls) -> AirflowHome:
        home = cls(Path(tempfile.mkdtemp(prefix="jambo-dags-airflow-home-")))
        proc = subprocess.run(
            [str(AIRFLOW_BIN), "db", "migrate"],
            env=home.env(),
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"airflow db migrate failed:\n{proc.stdout}\n{proc.stderr}")
        return home

    def env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW_CONN_", "AIRFLOW__"))}
        env.update(
            {
                "AIRFLOW_HOME": str(self.path),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags_folder),
                "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(self.path / "logs"),
                # `airflow dags test` runs triggers inline: no worker report for an event to overtake.
                "AIRFLOW__JAMBO__DEFERRAL_SETTLE_SECONDS": "0",
                # Example DAG files import the provider from the checkout.
                "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH", "")])),
            }
        )
        env.update(extra or {})
        return env

    def run_dag(
        self,
        dag_file: Path | str,
        *,
        dag_id: str | None = None,
        conf: Mapping[str, Any] | None = None,
        env: Mapping[str, str] | None = None,
        timeout: float = 300,
    ) -> DagRunResult:
        """``airflow dags test`` one DAG file; ``dag_id`` defaults to the file's stem."""
        dag_file = Path(dag_file)
        dag_id = dag_id or dag_file.stem
        # Only this file in the dags folder: the run parses nothing else.
        for old in self.dags_folder.iterdir():
            if old.is_file():
                old.unlink()
        shutil.copy(dag_file, self.dags_folder / dag_file.name)
        dag_path = str(self.dags_folder / dag_file.name)
        cmd = [str(AIRFLOW_BIN), "dags", "test", dag_id, _DAG_FILE_FLAG, dag_path]
        if conf:
            cmd += ["--conf", json.dumps(dict(conf))]
        logs_before = set(self._log_paths())
        proc = subprocess.run(
            cmd,
            env=self.env(env),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            cwd=self.path,
        )
        result = DagRunResult(
            dag_id=dag_id, returncode=proc.returncode, output=proc.stdout + proc.stderr, state=None
        )
        self._collect(result)
        result.log_files = "\n".join(
            p.read_text(errors="replace") for p in sorted(set(self._log_paths()) - logs_before)
        )
        return result

    def _log_paths(self) -> list[Path]:
        logs = self.path / "logs"
        return [p for p in logs.rglob("*") if p.is_file()] if logs.exists() else []

    def _collect(self, result: DagRunResult) -> None:
        """State, task states, XComs and rendered fields of the DAG's latest run, from the metadata DB."""
        db = sqlite3.connect(self.path / "airflow.db")
        try:
            row = db.execute(
                "SELECT id, run_id, state FROM dag_run WHERE dag_id = ? ORDER BY id DESC LIMIT 1",
                (result.dag_id,),
            ).fetchone()
            if row is None:
                return
            run_pk, run_id, result.state = row
            for task_id, state in db.execute(
                "SELECT task_id, state FROM task_instance WHERE dag_id = ? AND run_id = ?",
                (result.dag_id, run_id),
            ):
                result.task_states[task_id] = state
            for task_id, key, value in db.execute(
                "SELECT task_id, key, value FROM xcom WHERE dag_run_id = ?", (run_pk,)
            ):
                result.xcoms[(task_id, key)] = _json(value)
            for task_id, fields in db.execute(
                "SELECT task_id, rendered_fields FROM rendered_task_instance_fields"
                " WHERE dag_id = ? AND run_id = ?",
                (result.dag_id, run_id),
            ):
                result.rendered_fields[task_id] = _json(fields)
        finally:
            db.close()


def _json(value: Any) -> Any:
    if isinstance(value, (bytes, str)):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


@dataclass(frozen=True)
class DemoProject:
    """A new emulator project whose ``main`` holds the examples' demo data."""

    project_id: str
    main_branch_id: str
    role: str
    main_uri: str
    #: ``jambo_default`` as Airflow reads it from ``AIRFLOW_CONN_JAMBO_DEFAULT`` (for the DAG runs).
    conn_json: str


def demo_project(emulator: Any, name: str, setenv: Any) -> DemoProject:
    """Create project ``name`` on ``emulator`` (a ``JamboEmulator``), point ``jambo_default`` at it
    through ``setenv(name, value)`` (``monkeypatch.setenv`` in tests, ``os.environ.__setitem__`` in
    benchmarks: this process's hook reads it too), and seed ``main`` with
    ``example_dags/sql/seed_main.sql``, the data every example DAG expects."""
    import psycopg

    from airflow_provider_jambo.hooks.jambo import JamboHook

    body = emulator.create_project(name=name)
    project_id = body["project"]["id"]
    conn = {"conn_type": "jambo", "host": emulator.base_url, "password": emulator.api_key}
    conn_json = json.dumps({**conn, "extra": {"project_id": project_id}})
    setenv("AIRFLOW_CONN_JAMBO_DEFAULT", conn_json)
    hook = JamboHook()
    hook.operations.wait(
        [op["id"] for op in body["operations"]], project_id=project_id, timeout=60
    ).raise_for_status()
    main = hook.branches.get_default(project_id)
    role = hook.roles.list(main.id, project_id=project_id)[0].name
    uri = hook.branches.connection_uri(branch_id=main.id, database="neondb", role=role, project_id=project_id)
    with psycopg.connect(uri, connect_timeout=10) as db:
        db.execute((EXAMPLE_DAGS / "sql" / "seed_main.sql").read_text())
    return DemoProject(project_id, main.id, role, uri, conn_json)
