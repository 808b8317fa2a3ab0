"""The README's main job: the preview-environment example DAG end to end, against the local emulator.

Run through ``bash scripts/main-job`` (which builds the venv first). Steps, each printed:

1. a throw-away Airflow home and ``airflow db migrate``;
2. ``jambo-emulator`` on a free port with its data plane (a private PostgreSQL) on;
3. a project created through the API, its ``main`` branch loaded with the demo data
   (``example_dags/sql/seed_main.sql``);
4. ``airflow dags test example_jambo_preview_environment`` with ``AIRFLOW_CONN_JAMBO_DEFAULT``
   pointing at the emulator;
5. what the run did, read from its task states and XComs: branch created, rows transformed, checks
   passed, schema diff, branch deleted;
6. checks through the API and on ``main`` itself: the branch is gone, production is untouched.

Exit status 0 only if all of that holds. ``--bad-data`` feeds the data-quality check a bad row: the
job then succeeds only if the run *failed* at that check and the branch was still deleted.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
DAG_ID = "example_jambo_preview_environment"
DAG_FILE = ROOT / "example_dags" / f"{DAG_ID}.py"
SEED_SQL = ROOT / "example_dags" / "sql" / "seed_main.sql"
BIN = Path(sys.executable).parent
API_KEY = "main-job-key"
#: Seconds the DAG run may take (it takes well under a minute).
DAG_TIMEOUT = 600


class JobFailed(Exception):
    """A step did not do what it should; the message says which and why."""


def say(message: str) -> None:
    print(f"[main-job] {message}", flush=True)


@dataclass
class Emulator:
    base_url: str
    api_key: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def client(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.base_url, headers={"Authorization": f"Bearer {self.api_key}"}, timeout=30.0
        )


@contextmanager
def running_emulator(workdir: Path) -> Iterator[Emulator]:
    """``jambo-emulator`` on a free port with its data plane; stopped (and its PostgreSQL) on exit."""
    log_path = workdir / "emulator.log"
    cmd = [str(BIN / "jambo-emulator"), "--port", "0", "--api-key", API_KEY, "--postgres", "auto"]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=workdir)
    try:
        base_url = _wait_for_address(process, log_path)
        yield Emulator(base_url, API_KEY, process, log_path)
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _wait_for_address(process: subprocess.Popen[bytes], log_path: Path, timeout: float = 60.0) -> str:
    """The API base URL the emulator prints once it accepts connections."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        match = re.search(r"listening on (http://\S+/api/v2)", log_path.read_text(errors="replace"))
        if match:
            return match.group(1)
        if process.poll() is not None:
            raise JobFailed(f"jambo-emulator exited with {process.returncode}:\n{_tail(log_path)}")
        time.sleep(0.1)
    raise JobFailed(f"jambo-emulator did not start within {timeout:.0f} s:\n{_tail(log_path)}")


def _tail(path: Path, lines: int = 40) -> str:
    if not path.exists():
        return "(no output)"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def wait_for_operations(client: httpx.Client, project_id: str, operations: list[Mapping[str, Any]]) -> None:
    deadline = time.monotonic() + 120
    for op in operations:
        while True:
            status = client.get(f"/projects/{project_id}/operations/{op['id']}").json()["operation"]["status"]
            if status in ("finished", "skipped"):
                break
            if status in ("error", "cancelled") or time.monotonic() > deadline:
                raise JobFailed(f"operation {op['action']} {op['id']} ended {status}")
            time.sleep(0.1)


def create_project(emulator: Emulator) -> dict[str, Any]:
    """A project through the API, ready to use; returns the create response."""
    with emulator.client() as client:
        response = client.post("/projects", json={"project": {"name": "main-job"}})
        if response.status_code != 201:
            raise JobFailed(f"POST /projects -> {response.status_code} {response.text[:300]}")
        body: dict[str, Any] = response.json()
        wait_for_operations(client, body["project"]["id"], body.get("operations", []))
    return body


def main_connection_uri(emulator: Emulator, body: Mapping[str, Any]) -> str:
    """main's URI, asked once its compute has started (the create response's may predate that)."""
    project_id = body["project"]["id"]
    params = {
        "branch_id": body["branch"]["id"],
        "database_name": body["databases"][0]["name"],
        "role_name": body["roles"][0]["name"],
    }
    with emulator.client() as client:
        response = client.get(f"/projects/{project_id}/connection_uri", params=params)
    if response.status_code != 200:
        raise JobFailed(f"GET /projects/{project_id}/connection_uri -> {response.status_code}")
    return str(response.json()["uri"])


def seed_main(connection_uri: str) -> tuple[int, int]:
    """Load the demo "production" data into main; returns (customers, orders)."""
    import psycopg

    try:
        conn = psycopg.connect(connection_uri, connect_timeout=20)
    except psycopg.OperationalError as err:
        raise JobFailed(
            f"cannot connect to main's database ({err}); the emulator's data plane needs PostgreSQL "
            "server binaries (/usr/lib/postgresql/*/bin or $JAMBO_PG_BINDIR)"
        ) from None
    with conn:
        conn.execute(SEED_SQL.read_text())
        customers = conn.execute("SELECT count(*) FROM customers").fetchone()
        orders = conn.execute("SELECT count(*) FROM orders").fetchone()
    return (customers[0] if customers else 0, orders[0] if orders else 0)


def main_branch_state(connection_uri: str) -> tuple[int, bool]:
    """(orders on main, whether main has the preview's customer_revenue table)."""
    import psycopg

    with psycopg.connect(connection_uri, connect_timeout=20) as conn:
        row = conn.execute("SELECT count(*) FROM orders").fetchone()
        table = conn.execute("SELECT to_regclass('public.customer_revenue')").fetchone()
    return (row[0] if row else -1, bool(table and table[0]))


@dataclass
class RunReport:
    returncode: int
    state: str | None
    task_states: dict[str, str | None]
    xcoms: dict[tuple[str, str], Any]
    output_path: Path


def airflow_env(home: Path, jambo_connection: Mapping[str, Any] | None = None) -> dict[str, str]:
    """The environment of the Airflow commands: a private home, this checkout's DAG, the connection."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW_CONN_", "AIRFLOW__"))}
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": str(DAG_FILE.parent),
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        }
    )
    if jambo_connection is not None:
        # What a user would export for their own Airflow: the API base URL, key and project.
        env["AIRFLOW_CONN_JAMBO_DEFAULT"] = json.dumps(jambo_connection)
    return env


def start_db_migrate(home: Path) -> subprocess.Popen[bytes]:
    """``airflow db migrate`` in the background (it takes seconds; the emulator starts meanwhile)."""
    with open(home / "db-migrate.log", "wb") as log:
        return subprocess.Popen(
            [str(BIN / "airflow"), "db", "migrate"],
            env=airflow_env(home),
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def finish_db_migrate(process: subprocess.Popen[bytes], home: Path) -> None:
    if process.wait(timeout=300) != 0:
        raise JobFailed(
            f"airflow db migrate failed (exit {process.returncode}):\n{_tail(home / 'db-migrate.log')}"
        )


def run_dag(env: Mapping[str, str], home: Path, conf: Mapping[str, Any]) -> RunReport:
    output_path = home / "dags-test.log"
    cmd = [
        str(BIN / "airflow"),
        "dags",
        "test",
        DAG_ID,
        "--dagfile-path",
        str(DAG_FILE),
        "--conf",
        json.dumps(conf),
    ]
    try:
        with open(output_path, "w") as out:
            proc = subprocess.run(
                cmd,
                env=dict(env),
                stdout=out,
                stderr=subprocess.STDOUT,
                check=False,
                cwd=home,
                timeout=DAG_TIMEOUT,
            )
    except subprocess.TimeoutExpired:
        raise JobFailed(
            f"airflow dags test did not finish within {DAG_TIMEOUT} s:\n{_tail(output_path, 80)}"
        ) from None
    report = RunReport(proc.returncode, None, {}, {}, output_path)
    db = sqlite3.connect(home / "airflow.db")
    try:
        row = db.execute(
            "SELECT id, run_id, state FROM dag_run WHERE dag_id = ? ORDER BY id DESC LIMIT 1", (DAG_ID,)
        ).fetchone()
        if row is None:
            return report
        run_pk, run_id, report.state = row
        for task_id, state in db.execute(
            "SELECT task_id, state FROM task_instance WHERE dag_id = ? AND run_id = ?", (DAG_ID, run_id)
        ):
            report.task_states[task_id] = state
        for task_id, key, value in db.execute(
            "SELECT task_id, key, value FROM xcom WHERE dag_run_id = ?", (run_pk,)
        ):
            report.xcoms[(task_id, key)] = _json(value)
    finally:
        db.close()
    return report


def _json(value: Any) -> Any:
    try:
        return json.loads(value) if isinstance(value, (str, bytes)) else value
    except ValueError:
        return value


def describe_run(report: RunReport) -> dict[str, Any]:
    """Print the run's story; return the create_branch XCom (the branch's coordinates)."""
    states = report.task_states
    xcom = report.xcoms
    branch: dict[str, Any] = xcom.get(("create_branch", "return_value")) or {}
    say(f"dag run {DAG_ID}: {report.state} (airflow dags test exit {report.returncode})")

    def line(task_id: str, detail: str = "") -> None:
        print(f"    {task_id:<20} {states.get(task_id) or 'not run':<16} {detail}".rstrip(), flush=True)

    created = f"branch {branch.get('branch_name')} ({branch.get('branch_id')})"
    line("create_branch", f"{created} from main ({branch.get('parent_id')})" if branch else "")
    line("migrate")
    rows = xcom.get(("transform", "return_value"))
    line("transform", f"rows transformed: {rows}" if rows is not None else "")
    checks = xcom.get(("check_data_quality", "return_value"))
    if isinstance(checks, dict):
        line("check_data_quality", f"{len(checks)} checks passed: {', '.join(checks)}")
    else:
        found = re.search(
            r"data-quality checks failed on branch [^:]+: ([^\n\[]+)", report.output_path.read_text()
        )
        line("check_data_quality", found.group(1).strip() if found else "(no result: see the run's log)")
    diff = xcom.get(("schema_diff", "return_value"))
    line("schema_diff", f"{len(str(diff).splitlines())} diff lines" if diff is not None else "")
    if diff:
        for diff_line in str(diff).splitlines():
            print(f"        | {diff_line}", flush=True)
    deleted = xcom.get(("delete_branch", "return_value")) or {}
    line("delete_branch", "branch deleted" if deleted.get("deleted") else "")
    return branch


def verify(report: RunReport, branch: Mapping[str, Any], *, expect_failure: bool) -> None:
    states = report.task_states
    if not branch.get("branch_id"):
        raise JobFailed("create_branch left no branch coordinates in XCom")
    if states.get("delete_branch") != "success":
        raise JobFailed(f"teardown delete_branch ended {states.get('delete_branch')}")
    if expect_failure:
        if report.state != "failed" or states.get("check_data_quality") != "failed":
            raise JobFailed(
                f"with bad data the run should fail at check_data_quality; got run {report.state}, "
                f"check {states.get('check_data_quality')}"
            )
        return
    failed = {t: s for t, s in states.items() if s != "success"}
    if report.state != "success" or report.returncode != 0 or failed:
        raise JobFailed(f"the run did not succeed: run {report.state}, tasks not successful: {failed}")


def verify_branch_gone(emulator: Emulator, project_id: str, branch: Mapping[str, Any]) -> None:
    with emulator.client() as client:
        got = client.get(f"/projects/{project_id}/branches/{branch['branch_id']}")
        if got.status_code != 404:
            raise JobFailed(f"branch {branch['branch_id']} still exists: GET -> {got.status_code}")
        names = [b["name"] for b in client.get(f"/projects/{project_id}/branches").json()["branches"]]
    if branch.get("branch_name") in names:
        raise JobFailed(f"a branch named {branch['branch_name']!r} is still listed: {names}")
    say(f"API: branch {branch['branch_id']} is gone (GET -> 404); branches left: {', '.join(names)}")


def job(args: argparse.Namespace, workdir: Path) -> None:
    home = workdir / "airflow-home"
    home.mkdir()
    started = time.monotonic()
    say(f"working directory {workdir}")
    say("airflow db migrate (a temporary AIRFLOW_HOME), in the background")
    migrate = start_db_migrate(home)
    try:
        with running_emulator(workdir) as emulator:
            _run(args, home, emulator, migrate, started)
    finally:
        if migrate.poll() is None:
            migrate.kill()
            migrate.wait()


def _run(
    args: argparse.Namespace, home: Path, emulator: Emulator, migrate: subprocess.Popen[bytes], started: float
) -> None:
    say(f"jambo-emulator up at {emulator.base_url}")
    body = create_project(emulator)
    project_id = body["project"]["id"]
    main_uri = main_connection_uri(emulator, body)
    customers, orders = seed_main(main_uri)
    say(f"project {project_id} created; main seeded: {customers} customers, {orders} orders")
    env = airflow_env(
        home,
        {
            "conn_type": "jambo",
            "host": emulator.base_url,
            "password": emulator.api_key,
            "extra": {"project_id": project_id},
        },
    )
    finish_db_migrate(migrate, home)

    conf = {"inject_bad_data": bool(args.bad_data)}
    say(f"airflow dags test {DAG_ID} --conf '{json.dumps(conf)}'")
    report = run_dag(env, home, conf)
    branch = describe_run(report)
    try:
        verify(report, branch, expect_failure=args.bad_data)
    except JobFailed:
        say(f"last lines of the run's output ({report.output_path}):\n{_tail(report.output_path, 80)}")
        raise
    verify_branch_gone(emulator, project_id, branch)
    main_orders, leaked_table = main_branch_state(main_uri)
    if main_orders != orders or leaked_table:
        raise JobFailed(
            f"main changed: {main_orders} orders (expected {orders}), "
            f"customer_revenue present: {leaked_table}"
        )
    say(f"main untouched: still {main_orders} orders, no customer_revenue table")
    outcome = "failed at the data-quality check as expected, branch deleted" if args.bad_data else "succeeded"
    say(f"OK: the preview run {outcome} ({time.monotonic() - started:.1f} s)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--bad-data",
        action="store_true",
        help="feed the data-quality check a bad row; succeed only if the run fails there "
        "and the branch is still deleted",
    )
    parser.add_argument("--keep", action="store_true", help="keep the working directory (logs, Airflow home)")
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="jambo-main-job-"))
    try:
        job(args, workdir)
    except JobFailed as err:
        say(f"FAILED: {err}")
        say(f"logs kept in {workdir}")
        return 1
    if not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
