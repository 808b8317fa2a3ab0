"""A real local Airflow deployment against the Jambo emulator: every component its own process.

``bash scripts/airflow-stack up|down|status|trigger|wait`` (see ``--help``) or, from Python (the
deployment tests, or your own)::

    from airflow_stack import AirflowStack, StackOptions

    with AirflowStack(StackOptions(executor="celery", dags_folder=Path("my_dags"))) as stack:
        run_id = stack.trigger("my_dag", conf={"x": 1})
        run = stack.wait_for_run("my_dag", run_id)

What ``start()`` brings up, all on loopback, each with its log file in ``<dir>/logs/``:

* a private PostgreSQL server as the metadata database (the emulator's throw-away server: a temp
  dir, Unix socket only, run as ``postgres`` when root), then ``airflow db migrate``;
* ``jambo-emulator --postgres on`` (real PostgreSQL behind its branches) with operations that take
  ``operation_duration`` seconds, a project-scoped key whose project survives ``reset``; ``main``
  loaded with ``example_dags/sql/seed_main.sql`` (``seed_sql``), the project back-dated by
  ``backdate`` seconds (created that long ago, holding the seed since);
* ``airflow api-server``, ``scheduler``, ``dag-processor`` and ``triggerer``, and with
  ``executor="celery"`` a ``redis-server`` broker (installed with apt-get when missing and root) and
  ``celery_workers`` ``airflow celery worker`` processes, each reporting its own host name
  (``worker1.stack``, ...) so task instances show where they ran.

Every Airflow process gets the connection ``jambo_default`` (``AIRFLOW_CONN_JAMBO_DEFAULT``) and
``[operators] default_deferrable = True``. Runs are triggered through the REST API as a user would
(no logical date), authenticated with SimpleAuthManager's token endpoint. Each component runs in its
own process group; ``stop()`` (and a failed ``start()``) ends every group it started.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

SCRIPTS = Path(__file__).resolve().parent
ROOT = SCRIPTS.parent
sys.path.insert(0, str(SCRIPTS))
from main_job import _tail, _wait_for_address  # noqa: E402 - scripts/ is not a package

BIN = Path(sys.executable).parent
DBT_VENV_EXECUTABLE = ROOT / ".venv-dbt" / "bin" / "dbt"
EXAMPLE_DAGS = ROOT / "example_dags"
SEED_SQL = EXAMPLE_DAGS / "sql" / "seed_main.sql"
#: The emulator project every DAG of the stack works on (kept by the emulator's ``reset``).
PROJECT_ID = "stack-project"
API_USER = "admin"
TERMINAL_RUN_STATES = ("success", "failed")
STATE_FILE = "stack.json"
_WORKER_NAME_ENV = "AIRFLOW_STACK_WORKER_NAME"


class StackError(RuntimeError):
    """The stack could not do what was asked; the message says which component and why."""


def worker_hostname() -> str:
    """``[core] hostname_callable`` of the Celery workers: the name the stack gave this worker.

    Both workers run on one machine; a real deployment's workers have their own hosts. This makes the
    task instances' ``hostname`` tell them apart the same way."""
    return os.environ.get(_WORKER_NAME_ENV) or socket.getfqdn()


@dataclass
class StackOptions:
    executor: str = "local"  # "local" (LocalExecutor) or "celery" (CeleryExecutor + Redis)
    dags_folder: Path = EXAMPLE_DAGS
    #: Seconds every emulator operation takes (real suspend/start operations are about that short).
    operation_duration: float = 3.0
    celery_workers: int = 2
    celery_concurrency: int = 2
    #: SQL loaded into ``main`` after start and after every ``reset_emulator`` (None: nothing).
    seed_sql: Path | None = SEED_SQL
    #: Seconds the stack's project existed before the stack started, holding its seed data all that
    #: time: the emulator's clock starts this far behind, ``main`` is seeded, then the clock catches
    #: up. A scheduled run then can branch ``main`` at its data interval's end (yesterday's midnight
    #: is before the stack started). 0: the project's history begins when the stack starts.
    backdate: float = 2 * 86400.0
    #: The stack's directory (logs, AIRFLOW_HOME, state); a fresh temp dir when None.
    workdir: Path | None = None
    #: Extra environment for every Airflow process (e.g. ``AIRFLOW__CORE__PARALLELISM``).
    extra_env: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.executor not in ("local", "celery"):
            raise StackError(f"executor must be 'local' or 'celery', got {self.executor!r}")
        self.dags_folder = Path(self.dags_folder).resolve()
        if not self.dags_folder.is_dir():
            raise StackError(f"dags_folder {self.dags_folder} is not a directory")
        if not 0 <= self.backdate <= 30 * 86400:
            raise StackError(f"backdate must be between 0 and 30 days (in seconds), got {self.backdate}")


#: The job each long-running Airflow component heartbeats in the metadata database.
HEARTBEAT_JOBS = {
    "scheduler": "SchedulerJob",
    "triggerer": "TriggererJob",
    "dag-processor": "DagProcessorJob",
}


@dataclass
class Component:
    name: str
    argv: list[str]
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    #: runs once and exits (``airflow db migrate``): its exit is no failure
    oneshot: bool = False
    #: when it was started (``time.monotonic()``)
    started_at: float = 0.0

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def ensure_redis_server() -> str:
    """Path of ``redis-server``; installs Debian's package when it is missing and we are root (CI)."""
    found = shutil.which("redis-server")
    if found:
        return found
    if os.geteuid() != 0:
        raise StackError("redis-server is not installed (as root: apt-get install redis-server)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for argv in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "redis-server"]):
        result = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise StackError(f"{' '.join(argv)} failed: {result.stderr[-1500:]}")
    # The package starts a system-wide server on 6379; the stack runs its own, so stop that one.
    subprocess.run(["service", "redis-server", "stop"], capture_output=True, check=False)
    found = shutil.which("redis-server") or (
        "/usr/bin/redis-server" if Path("/usr/bin/redis-server").exists() else None
    )
    if not found:
        raise StackError("apt-get installed redis-server, but it is not on PATH")
    return found


def _fernet_key() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()


class AirflowStack:
    """The deployment. ``start()``/``stop()`` or ``with AirflowStack(...) as stack``."""

    def __init__(self, options: StackOptions | None = None) -> None:
        self.options = options or StackOptions()
        self.workdir = Path(self.options.workdir or tempfile.mkdtemp(prefix="airflow-stack-")).resolve()
        self.logs = self.workdir / "logs"
        self.home = self.workdir / "airflow-home"
        self.api_key = "stack-" + secrets.token_hex(16)
        self.api_password = secrets.token_urlsafe(16)
        self.api_port = free_port()
        self.api_url = f"http://127.0.0.1:{self.api_port}"
        self.emulator_url = ""  # http://127.0.0.1:PORT/api/v2 once started
        self.components: dict[str, Component] = {}
        self._metadata_server: Any = None
        self._token: str | None = None
        self._airflow_env: dict[str, str] = {}

    # -- lifecycle ---------------------------------------------------------------------------
    def __enter__(self) -> AirflowStack:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def start(self) -> None:
        """Bring everything up; on any failure stop what was started and raise StackError."""
        self.logs.mkdir(parents=True, exist_ok=True)
        self.home.mkdir(parents=True, exist_ok=True)
        if self.options.executor == "celery" and self.options.celery_workers > 1:
            self._write_worker_spreading_policy()
        os.chmod(self.workdir, 0o700)  # the state file holds the stack's (local, throw-away) keys
        try:
            self._start_metadata_db()
            emulator = self._start_emulator()
            migrate = self._run_airflow_once("db-migrate", ["db", "migrate"], timeout=600, wait=False)
            self.emulator_url = _wait_for_address(emulator.process, emulator.log_path)  # type: ignore[arg-type]
            self._airflow_env = self._build_airflow_env()
            if self.options.executor == "celery":
                self._start_redis()
            self._finish(migrate, "airflow db migrate")
            self.start_component("api-server")
            self.start_component("scheduler")
            self.start_component("dag-processor")
            self.start_component("triggerer")
            for index in range(
                1, self.options.celery_workers + 1 if self.options.executor == "celery" else 1
            ):
                self.start_component(f"worker{index}")
            self._wait_for_api()
            self.seed_main()
        except BaseException:
            self.stop()
            raise

    def stop(self, grace: float = 10.0) -> None:
        """End every process group the stack started, then the metadata database.

        All groups get SIGTERM at once (Airflow's components shut down gracefully in parallel), and
        what is still there after ``grace`` seconds gets SIGKILL."""
        started = [c for c in self.components.values() if c.process is not None]
        for component in started:
            _signal_group(component.process.pid, signal.SIGTERM)  # type: ignore[union-attr]
        deadline = time.monotonic() + grace
        for component in started:
            with contextlib.suppress(subprocess.TimeoutExpired):
                component.process.wait(max(0.1, deadline - time.monotonic()))  # type: ignore[union-attr]
        for component in started:
            _signal_group(component.process.pid, signal.SIGKILL)  # type: ignore[union-attr]
            component.process.wait(10)  # type: ignore[union-attr]
        if self._metadata_server is not None:
            self._metadata_server.stop()
            self._metadata_server = None

    # -- components ----------------------------------------------------------------------------
    def airflow_env(self, *, with_connection: bool = True, **extra: str) -> dict[str, str]:
        env = dict(self._airflow_env)
        if not with_connection:
            env.pop("AIRFLOW_CONN_JAMBO_DEFAULT", None)
        env.update(extra)
        return env

    def start_component(
        self, name: str, *, with_connection: bool = True, extra_env: Mapping[str, str] | None = None
    ) -> Component:
        """Start (or start again, after ``stop_component``/``kill_component``) one Airflow process:
        ``api-server``, ``scheduler``, ``dag-processor``, ``triggerer`` or ``worker<N>``."""
        old = self.components.get(name)
        if old is not None and old.running:
            raise StackError(f"{name} is already running (pid {old.process.pid})")  # type: ignore[union-attr]
        env = self.airflow_env(with_connection=with_connection, **dict(extra_env or {}))
        argv = self._component_argv(name, env)
        # A new log file per start, so a restarted component's log is its own.
        starts = len(list(self.logs.glob(f"{name}*.log")))
        log_path = self.logs / (f"{name}.log" if not starts else f"{name}.{starts + 1}.log")
        component = Component(name, argv, env, log_path)
        self._spawn(component)
        return component

    def _component_argv(self, name: str, env: dict[str, str]) -> list[str]:
        airflow = str(BIN / "airflow")
        if name == "api-server":
            return [
                airflow,
                "api-server",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.api_port),
                "--workers",
                "1",
            ]
        if name == "scheduler":
            # Task logs are files on this machine; no log-serving process (and no port 8793 clash).
            return [airflow, "scheduler", "--skip-serve-logs"]
        if name == "dag-processor":
            return [airflow, "dag-processor"]
        if name == "triggerer":
            return [airflow, "triggerer", "--skip-serve-logs"]
        if name.startswith("worker") and self.options.executor == "celery":
            hostname = f"{name}.stack"
            env[_WORKER_NAME_ENV] = hostname
            env["AIRFLOW__CORE__HOSTNAME_CALLABLE"] = "airflow_stack.worker_hostname"
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SCRIPTS), env.get("PYTHONPATH")]))
            return [
                airflow,
                "celery",
                "worker",
                "--celery-hostname",
                f"{name}@{hostname}",
                "--concurrency",
                str(self.options.celery_concurrency),
                "--queues",
                f"{env.get('AIRFLOW__OPERATORS__DEFAULT_QUEUE', 'default')},stack-{name}",
                "--skip-serve-logs",
                "--without-mingle",
                "--without-gossip",
            ]
        raise StackError(f"unknown component {name!r}")

    def _spawn(self, component: Component) -> None:
        with open(component.log_path, "wb") as log:
            component.process = subprocess.Popen(
                component.argv,
                env=component.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.workdir,
                start_new_session=True,  # its own process group: stop/kill reaches its children too
            )
        component.started_at = time.monotonic()
        self.components[component.name] = component
        self.write_state()

    def stop_component(self, name: str, timeout: float = 20.0) -> None:
        """SIGTERM the component's process group, SIGKILL what is left after ``timeout``."""
        component = self.components.get(name)
        if component is None or component.process is None:
            return
        process = component.process
        _signal_group(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            _signal_group(process.pid, signal.SIGKILL)
            process.wait(10)
        _signal_group(process.pid, signal.SIGKILL)  # children that outlived their leader

    def kill_component(self, name: str) -> None:
        """SIGKILL the component's whole process group at once (a crashed host, an OOM kill)."""
        component = self.components[name]
        assert component.process is not None
        _signal_group(component.process.pid, signal.SIGKILL)
        component.process.wait(10)

    def restart_metadata_db(self, down_seconds: float) -> None:
        """Stop the metadata database (fast shutdown: every session ends) and start it again after
        ``down_seconds``, with its data: a database restart or fail-over under a running stack."""
        server = self._metadata_server
        if server is None:
            raise StackError("the metadata database is not running")
        server.pause()
        time.sleep(down_seconds)
        server.resume()

    def supervise(self, stale_after: float = 60.0) -> list[str]:
        """One pass of a process supervisor (systemd, Kubernetes with Airflow's Helm chart): a
        component alive whose job has not heartbeat for ``stale_after`` seconds is killed (the
        chart's liveness probe, ``airflow jobs check``), then every component that exited is
        started again. Returns the names started again."""
        for name in self.unresponsive(stale_after):
            self.kill_component(name)
        exited = [n for n, c in self.components.items() if c.process and not c.running and not c.oneshot]
        for name in exited:
            self.start_component(name)
        return exited

    def unresponsive(self, stale_after: float) -> list[str]:
        """The scheduler, triggerer or dag-processor that runs but has not heartbeat its job in the
        metadata database for ``stale_after`` seconds (and was started longer ago than that): hung,
        where a crashed one would have exited."""
        if self._metadata_server is None or self._metadata_server.paused:
            return []
        rows = self.metadata_rows(
            "SELECT job_type, extract(epoch FROM now() - max(latest_heartbeat)) FROM job "
            "WHERE state = 'running' GROUP BY job_type"
        )
        silent_for = {job_type: float(age) for job_type, age in rows if job_type and age is not None}
        now = time.monotonic()
        return [
            name
            for name, job_type in HEARTBEAT_JOBS.items()
            if (component := self.components.get(name)) is not None
            and component.running
            and now - component.started_at > stale_after
            and silent_for.get(job_type, float("inf")) > stale_after
        ]

    def check_running(self) -> None:
        dead = {
            n: c.process.returncode
            for n, c in self.components.items()
            if c.process and not c.running and not c.oneshot
        }
        if dead:
            raise StackError(f"stack components exited: {dead}; logs in {self.logs}")

    def diagnostics(self, lines: int = 15) -> str:
        """What a stuck run needs explained: the metadata database's sessions (who waits on a lock,
        who sits idle in a transaction) and the end of every Airflow component's newest log."""
        out = []
        if self._metadata_server is not None and not self._metadata_server.paused:
            sessions = self.metadata_rows(
                "SELECT pid, application_name, state, wait_event_type, wait_event, "
                "now() - xact_start, left(query, 160) FROM pg_stat_activity "
                "WHERE datname = 'airflow' AND pid <> pg_backend_pid() ORDER BY xact_start"
            )
            # A DAG the scheduler skips: paused, or marked stale by the dag-processor.
            dags = self.metadata_rows(
                "SELECT dag_id, is_paused, is_stale, last_parsed_time, now() FROM dag ORDER BY dag_id"
            )
            out.append("metadata DB sessions (pid, app, state, wait type, wait, in transaction for, query):")
            out += [f"  {row}" for row in sessions]
            out.append("DAGs (dag_id, is_paused, is_stale, last_parsed_time, now):")
            out += [f"  {row}" for row in dags]
        for component in self.components.values():
            if component.oneshot or not component.log_path.exists():
                continue
            tail = component.log_path.read_text(errors="replace").splitlines()[-lines:]
            code = component.process.returncode if component.process else None
            state = "running" if component.running else f"exited {code}"
            out.append(f"-- {component.log_path.name} ({state}):")
            out += [f"  {line[:300]}" for line in tail]
        return "\n".join(out)

    # -- pieces of start() ------------------------------------------------------------------------
    def _start_metadata_db(self) -> None:
        from jambo_emulator.dataplane.pg_server import PostgresServer, find_binaries

        binaries = find_binaries()
        if binaries is None:
            raise StackError("no PostgreSQL server binaries (/usr/lib/postgresql/*/bin) for the metadata DB")
        server = PostgresServer(binaries)
        server.start()
        self._metadata_server = server
        admin = server.admin()
        try:
            admin.execute("CREATE DATABASE airflow")
        finally:
            admin.close()

    def metadata_rows(self, sql: str) -> list[tuple[str | None, ...]]:
        """The rows of one query on the metadata database (as text), through the harness's own
        connection: the stack's state as Airflow stored it, without an Airflow import."""
        if self._metadata_server is None:
            raise StackError("the metadata database is not running")
        admin = self._metadata_server.admin("airflow")
        try:
            return admin.execute(sql)
        finally:
            admin.close()

    @property
    def metadata_db_url(self) -> str:
        from jambo_emulator.dataplane.pg_server import ADMIN_USER

        return f"postgresql+psycopg://{ADMIN_USER}@/airflow?host={self._metadata_server.socket_dir}"

    def _start_emulator(self) -> Component:
        argv = [
            str(BIN / "jambo-emulator"),
            "--port",
            "0",
            "--project-scoped-key",
            f"{self.api_key}={PROJECT_ID}",
            "--postgres",
            "on",
            "--operation-duration",
            str(self.options.operation_duration),
            "--clock-start-offset",
            str(-self.options.backdate),
        ]
        component = Component("emulator", argv, dict(os.environ), self.logs / "emulator.log")
        self._spawn(component)
        return component

    def _write_worker_spreading_policy(self) -> None:
        """A cluster policy (``$AIRFLOW_HOME/config/airflow_local_settings.py``) that sends a run's
        tasks to the workers in turn (``worker<N>`` also consumes the queue ``stack-worker<N>``).

        Left to Celery, which idle worker takes a task is chance: all three tasks of a run landed on
        one worker in 1 of 8 runs. The stack exists to show that nothing depends on tasks sharing a
        host, so it places them. Only tasks on the default queue are moved; DAGs naming a queue keep it."""
        config = self.home / "config"
        config.mkdir(parents=True, exist_ok=True)
        (config / "airflow_local_settings.py").write_text(
            f"""\"\"\"airflow-stack: a run's tasks go to the Celery workers in turn (airflow_stack.py).\"\"\"

WORKERS = {self.options.celery_workers}


def task_instance_mutation_hook(task_instance, dag_run=None):
    from airflow.configuration import conf

    if task_instance.queue != conf.get("operators", "default_queue"):
        return
    task = getattr(task_instance, "task", None)
    dag = getattr(task, "dag", None)
    if dag is None:
        return
    index = sorted(dag.task_ids).index(task_instance.task_id)
    task_instance.queue = f"stack-worker{{index % WORKERS + 1}}"
"""
        )

    def _start_redis(self) -> None:
        port = free_port()
        argv = [
            ensure_redis_server(),
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.workdir),
        ]
        component = Component("redis", argv, dict(os.environ), self.logs / "redis.log")
        self._spawn(component)
        _wait_for_text(component, "Ready to accept connections", 30)
        broker = f"redis://127.0.0.1:{port}/0"
        self._airflow_env["AIRFLOW__CELERY__BROKER_URL"] = broker

    def _build_airflow_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW_CONN_", "AIRFLOW__"))}
        passwords = self.home / "simple_auth_manager_passwords.json"
        passwords.write_text(json.dumps({API_USER: self.api_password}))
        connection = {
            "conn_type": "jambo",
            "host": self.emulator_url,
            "password": self.api_key,
            "extra": {"project_id": PROJECT_ID},
        }
        env.update(
            {
                "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
                "AIRFLOW_HOME": str(self.home),
                "AIRFLOW__CORE__DAGS_FOLDER": str(self.options.dags_folder),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor"
                if self.options.executor == "celery"
                else "LocalExecutor",
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.metadata_db_url,
                "AIRFLOW__CORE__FERNET_KEY": _fernet_key(),
                # Shared by every component: the scheduler signs task tokens the api-server checks.
                "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
                "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(32),
                "AIRFLOW__API__BASE_URL": self.api_url,
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.api_url}/execution/",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{API_USER}:admin",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
                "AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE": "True",
                "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
                "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
                "AIRFLOW__LOGGING__COLORED_CONSOLE_LOG": "False",
                # New DAG files show up within seconds; re-parsing unchanged ones costs CPU.
                "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "10",
                "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "60",
                # A killed triggerer's triggers move to a live one after this many seconds (default 30).
                "AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD": "15",
                "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
                "AIRFLOW__CELERY__WORKER_PREFETCH_MULTIPLIER": "1",
                # Task supervisors' calls to the execution API (default 5 s): on a busy 2-core box
                # with every component on it, 5 s is too short and a task fails before it starts.
                "AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT": "30",
                "AIRFLOW_CONN_JAMBO_DEFAULT": json.dumps(connection),
                # The dbt example's Cosmos tasks: nothing is reported home from an offline stack.
                "AIRFLOW__COSMOS__ENABLE_TELEMETRY": "False",
            }
        )
        # The dbt example runs dbt from the virtualenv scripts/bootstrap makes (unless told otherwise).
        if DBT_VENV_EXECUTABLE.exists():
            env.setdefault("JAMBO_DBT_EXECUTABLE", str(DBT_VENV_EXECUTABLE))
        env.update(self.options.extra_env)
        return env

    def _run_airflow_once(
        self, name: str, args: list[str], *, timeout: float, wait: bool = True
    ) -> subprocess.Popen[bytes]:
        env = self._airflow_env or self._build_migrate_env()
        log_path = self.logs / f"{name}.log"
        with open(log_path, "wb") as log:
            process = subprocess.Popen(
                [str(BIN / "airflow"), *args], env=env, stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir
            )
        self.components[name] = Component(
            name, [str(BIN / "airflow"), *args], env, log_path, process, oneshot=True
        )
        if wait:
            self._finish(process, f"airflow {' '.join(args)}", timeout)
        return process

    def _build_migrate_env(self) -> dict[str, str]:
        """``db migrate`` runs while the emulator starts: it needs only the database and the home."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW_CONN_", "AIRFLOW__"))}
        env.update(
            {
                "AIRFLOW_HOME": str(self.home),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.metadata_db_url,
            }
        )
        return env

    def _finish(self, process: subprocess.Popen[bytes], what: str, timeout: float = 600) -> None:
        name = next(n for n, c in self.components.items() if c.process is process)
        try:
            code = process.wait(timeout)
        except subprocess.TimeoutExpired:
            raise StackError(f"{what} did not finish in {timeout:.0f} s") from None
        if code != 0:
            raise StackError(f"{what} failed (exit {code}):\n{_tail(self.components[name].log_path)}")

    def _wait_for_api(self, timeout: float = 240.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_running()
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.api_url}/api/v2/monitor/health", timeout=5).status_code == 200:
                    # The execution API (what task supervisors call) builds its versioned routes on
                    # its first request, which took 40 s on a busy machine: warm it up now.
                    httpx.get(f"{self.api_url}/execution/health", timeout=180).raise_for_status()
                    return
            time.sleep(0.5)
        raise StackError(
            f"api-server not healthy after {timeout:.0f} s:\n{_tail(self.components['api-server'].log_path)}"
        )

    # -- the Jambo emulator ---------------------------------------------------------------------------
    @property
    def control_url(self) -> str:
        return self.emulator_url.removesuffix("/api/v2") + "/_emulator"

    def emulator_api(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.emulator_url, headers={"Authorization": f"Bearer {self.api_key}"}, timeout=30
        )

    def control(self, method: str, path: str, body: Mapping[str, Any] | None = None) -> Any:
        """One call to the emulator's control API (``/_emulator/<path>``); returns the JSON body."""
        # The control API takes every change as application/json, an empty one included.
        payload = body if body is not None or method == "GET" else {}
        response = httpx.request(method, f"{self.control_url}/{path.lstrip('/')}", json=payload, timeout=30)
        if response.status_code >= 300:
            raise StackError(f"{method} /_emulator/{path} -> {response.status_code} {response.text[:300]}")
        return response.json() if response.content else None

    def reset_emulator(self) -> None:
        """The emulator back to its start (the stack's project with an empty ``main``), then ``seed_sql``
        (written ``backdate`` seconds ago, as far as the project's history goes)."""
        self.control("POST", "reset")
        self.seed_main()

    def branches(self) -> list[dict[str, Any]]:
        with self.emulator_api() as api:
            response = api.get(f"/projects/{PROJECT_ID}/branches")
            response.raise_for_status()
            branches: list[dict[str, Any]] = response.json()["branches"]
            return branches

    def main_connection_uri(self) -> str:
        with self.emulator_api() as api:
            main = next(b for b in self.branches() if b.get("default"))
            wait_until(lambda: self.operations_done(api), 120, "main's operations to finish")
            database = api.get(f"/projects/{PROJECT_ID}/branches/{main['id']}/databases").json()["databases"][
                0
            ]
            params = {
                "branch_id": main["id"],
                "database_name": database["name"],
                "role_name": database["owner_name"],
            }
            response = api.get(f"/projects/{PROJECT_ID}/connection_uri", params=params)
            response.raise_for_status()
            return str(response.json()["uri"])

    def operations_done(self, api: httpx.Client) -> bool:
        ops = api.get(f"/projects/{PROJECT_ID}/operations").json()["operations"]
        return all(op["status"] in ("finished", "skipped", "failed", "error", "cancelled") for op in ops)

    def seed_main(self) -> None:
        """Load ``seed_sql`` into ``main`` (the demo "production" data the example DAGs read) while
        the emulator's clock still runs ``backdate`` behind, then bring its clock to real time.

        The emulator (re)starts its clock that far behind, so its project was created ``backdate``
        ago; the catch-up makes every point between then and now read ``main`` as seeded (the
        emulator maps its clock's readings to the wall-clock moment they were read at)."""
        if self.options.seed_sql is not None:
            import psycopg

            with psycopg.connect(self.main_connection_uri(), connect_timeout=20) as conn:
                conn.execute(self.options.seed_sql.read_text())
        if self.options.backdate:
            self.control("POST", "clock/advance", {"seconds": self.options.backdate})

    # -- the Airflow REST API ------------------------------------------------------------------------
    def token(self) -> str:
        """A bearer token from SimpleAuthManager's token endpoint, as a user's script would get one."""
        if self._token is None:
            response = httpx.post(
                f"{self.api_url}/auth/token",
                json={"username": API_USER, "password": self.api_password},
                timeout=30,
            )
            if response.status_code not in (200, 201):
                raise StackError(f"POST /auth/token -> {response.status_code} {response.text[:300]}")
            self._token = str(response.json()["access_token"])
        return self._token

    def api(self) -> httpx.Client:
        return httpx.Client(
            base_url=f"{self.api_url}/api/v2", headers={"Authorization": f"Bearer {self.token()}"}, timeout=60
        )

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        with self.api() as api:
            response = api.request(method, path, **kwargs)
        if response.status_code >= 300:
            raise StackError(f"{method} /api/v2{path} -> {response.status_code} {response.text[:500]}")
        return response.json() if response.content else None

    def wait_for_dag(self, dag_id: str, timeout: float = 180.0) -> None:
        """Until the dag-processor has parsed ``dag_id`` (a new file takes a refresh interval)."""

        def parsed() -> bool:
            with self.api() as api:
                return api.get(f"/dags/{dag_id}").status_code == 200

        wait_until(parsed, timeout, f"DAG {dag_id} to be parsed", self.check_running)

    def unpause(self, dag_id: str, paused: bool = False) -> None:
        self.wait_for_dag(dag_id)
        self._call("PATCH", f"/dags/{dag_id}", json={"is_paused": paused})

    def trigger(self, dag_id: str, conf: Mapping[str, Any] | None = None) -> str:
        """A manual run through the REST API, without a logical date (Airflow 3's default); unpauses
        the DAG first (new DAGs start paused). Returns the run id."""
        self.unpause(dag_id)
        run = self._call(
            "POST", f"/dags/{dag_id}/dagRuns", json={"logical_date": None, "conf": dict(conf or {})}
        )
        return str(run["dag_run_id"])

    def dag_run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        run: dict[str, Any] = self._call("GET", f"/dags/{dag_id}/dagRuns/{run_id}")
        return run

    def dag_runs(self, dag_id: str) -> list[dict[str, Any]]:
        runs: list[dict[str, Any]] = self._call("GET", f"/dags/{dag_id}/dagRuns", params={"limit": 100})[
            "dag_runs"
        ]
        return runs

    def task_instances(self, dag_id: str, run_id: str) -> dict[str, dict[str, Any]]:
        """task_id -> the task instance as the REST API shows it (``state``, ``hostname``, ...)."""
        body = self._call("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances", params={"limit": 100})
        return {ti["task_id"]: ti for ti in body["task_instances"]}

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float = 300.0) -> dict[str, Any]:
        """Until the run is ``success`` or ``failed``; returns it. Raises StackError on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            run = self.dag_run(dag_id, run_id)
            if run["state"] in TERMINAL_RUN_STATES:
                return run
            if time.monotonic() > deadline:
                states = {t: ti["state"] for t, ti in self.task_instances(dag_id, run_id).items()}
                raise StackError(
                    f"run {dag_id}/{run_id} still {run['state']} after {timeout:.0f} s: {states}\n"
                    + self.diagnostics()
                )
            self.check_running()
            time.sleep(1)

    def set_task_state(self, dag_id: str, run_id: str, task_id: str, state: str) -> None:
        """Mark a task instance ``failed``/``success``/``skipped``, as a user does in the UI."""
        self._call(
            "PATCH",
            f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}",
            json={"new_state": state},
        )

    def clear_task(self, dag_id: str, run_id: str, task_id: str) -> None:
        """Clear one task instance of a run (only it, not its downstream), as a user does in the UI."""
        self._call(
            "POST",
            f"/dags/{dag_id}/clearTaskInstances",
            json={
                "dry_run": False,
                "dag_run_id": run_id,
                "task_ids": [task_id],
                "only_failed": False,
                "include_downstream": False,
                "include_upstream": False,
                "reset_dag_runs": True,
            },
        )

    def xcom(self, dag_id: str, run_id: str, task_id: str, key: str = "return_value") -> Any:
        body = self._call(
            "GET",
            f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/{key}",
            params={"deserialize": "true", "stringify": "false"},
        )
        return body["value"]

    # -- state file (the CLI's `down`/`status`/`trigger` find a running stack by it) ------------------
    def write_state(self, status: str = "starting", error: str | None = None) -> None:
        state = {
            "status": status,
            "error": error,
            "supervisor_pid": os.getpid(),
            "executor": self.options.executor,
            "dags_folder": str(self.options.dags_folder),
            "airflow_home": str(self.home),
            "api_url": self.api_url,
            "api_user": API_USER,
            "api_password": self.api_password,
            "emulator_url": self.emulator_url,
            "control_url": self.control_url if self.emulator_url else "",
            "jambo_api_key": self.api_key,
            "project_id": PROJECT_ID,
            "airflow_env": {
                k: v for k, v in self._airflow_env.items() if k.startswith(("AIRFLOW", "PYTHONPATH"))
            },
            "components": {
                n: {"pid": c.process.pid if c.process else None, "log": str(c.log_path)}
                for n, c in self.components.items()
            },
        }
        path = self.workdir / STATE_FILE
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=2))
        tmp.replace(path)


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _wait_for_text(component: Component, text: str, timeout: float) -> None:
    wait_until(
        lambda: text in component.log_path.read_text(errors="replace"),
        timeout,
        f"{component.name} to start",
        lambda: _raise_if_exited(component),
    )


def _raise_if_exited(component: Component) -> None:
    if not component.running:
        raise StackError(f"{component.name} exited:\n{_tail(component.log_path)}")


def wait_until(predicate: Any, timeout: float, what: str, check: Any = None, interval: float = 0.5) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if check is not None:
            check()
        if time.monotonic() > deadline:
            raise StackError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


# -- the command line -------------------------------------------------------------------------------
def _default_dir() -> Path:
    return Path(os.environ.get("AIRFLOW_STACK_DIR") or Path(tempfile.gettempdir()) / "airflow-stack")


def _read_state(workdir: Path) -> dict[str, Any]:
    path = workdir / STATE_FILE
    if not path.exists():
        raise StackError(f"no stack in {workdir} (start one with `airflow-stack up`)")
    state: dict[str, Any] = json.loads(path.read_text())
    return state


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _client_stack(workdir: Path) -> AirflowStack:
    """An AirflowStack object that talks to the stack running in ``workdir`` (starts nothing)."""
    state = _read_state(workdir)
    if state["status"] != "ready" or not _alive(state["supervisor_pid"]):
        raise StackError(f"the stack in {workdir} is not running (status {state['status']})")
    options = StackOptions(
        executor=state["executor"], dags_folder=Path(state["dags_folder"]), workdir=workdir
    )
    stack = AirflowStack(options)
    stack.home = Path(state["airflow_home"])
    stack.api_url, stack.api_password = state["api_url"], state["api_password"]
    stack.emulator_url, stack.api_key = state["emulator_url"], state["jambo_api_key"]
    return stack


def _serve(args: argparse.Namespace) -> int:
    """The supervisor behind ``up``: owns every process, stops them all on SIGTERM/SIGINT."""
    stack = AirflowStack(_options(args))
    stopping = False

    def on_signal(signum: int, frame: Any) -> None:
        nonlocal stopping
        stopping = True
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        stack.start()
        stack.write_state("ready")
        reported: set[str] = set()
        while True:
            time.sleep(2)
            for name, component in stack.components.items():
                exited = component.process is not None and component.process.poll() is not None
                if exited and not component.oneshot and name not in reported:
                    reported.add(name)
                    print(f"[airflow-stack] {name} exited with {component.process.returncode}", flush=True)
    except KeyboardInterrupt:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        stack.stop()
        stack.write_state("stopped")
        return 0
    except BaseException as err:  # noqa: BLE001 - reported in the state file for `up` to print
        stack.write_state("failed", error=str(err))
        return 1


def _options(args: argparse.Namespace) -> StackOptions:
    return StackOptions(
        executor=args.executor,
        dags_folder=Path(args.dags_folder),
        operation_duration=args.operation_duration,
        celery_workers=args.celery_workers,
        seed_sql=None if args.no_seed else SEED_SQL,
        backdate=args.backdate_days * 86400,
        workdir=args.dir,
    )


def _up(args: argparse.Namespace) -> int:
    workdir: Path = args.dir
    if (workdir / STATE_FILE).exists():
        state = _read_state(workdir)
        if _alive(state.get("supervisor_pid")) and state["status"] in ("starting", "ready"):
            raise StackError(f"a stack is already running in {workdir} (`airflow-stack down` first)")
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    argv = [sys.executable, __file__, "--dir", str(workdir), "_serve", *args.serve_args]
    with open(workdir / "supervisor.log", "wb") as log:
        supervisor = subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
        )
    print(f"[airflow-stack] starting in {workdir} (supervisor pid {supervisor.pid}) ...", flush=True)
    deadline = time.monotonic() + args.timeout
    while time.monotonic() < deadline:
        state = json.loads((workdir / STATE_FILE).read_text()) if (workdir / STATE_FILE).exists() else {}
        if state.get("status") == "ready":
            _print_status(workdir)
            return 0
        if state.get("status") == "failed" or supervisor.poll() is not None:
            print(f"[airflow-stack] start failed: {state.get('error')}\n{_tail(workdir / 'supervisor.log')}")
            return 1
        time.sleep(1)
    _down(workdir)
    print(f"[airflow-stack] not ready after {args.timeout:.0f} s; stopped. Logs: {workdir / 'logs'}")
    return 1


def _down(workdir: Path) -> int:
    state = _read_state(workdir)
    pid = state.get("supervisor_pid")
    if _alive(pid):
        os.kill(pid, signal.SIGTERM)
        with contextlib.suppress(StackError):
            wait_until(lambda: not _alive(pid), 90, "the supervisor to stop everything")
    # Whatever is left (a killed supervisor): every process group it had started.
    for component in state["components"].values():
        if component.get("pid"):
            _signal_group(component["pid"], signal.SIGKILL)
    if _alive(pid):
        _signal_group(pid, signal.SIGKILL)
    print(f"[airflow-stack] stopped; logs kept in {workdir / 'logs'}")
    return 0


def _print_status(workdir: Path) -> int:
    state = _read_state(workdir)
    running = state["status"] == "ready" and _alive(state["supervisor_pid"])
    print(f"[airflow-stack] {state['status'] if running else 'not running'} ({state['executor']} executor)")
    print(
        f"  Airflow UI/API  {state['api_url']}  (user {state['api_user']}; password: {workdir / STATE_FILE})"
    )
    print(
        f"  Jambo emulator  {state['emulator_url']}  project {state['project_id']}"
        f"  control {state['control_url']}"
    )
    print(f"  DAGs folder     {state['dags_folder']}")
    for name, component in state["components"].items():
        alive = "up" if running and _alive(component["pid"]) else "down"
        if name != "db-migrate":
            print(f"  {name:<14}  {alive:<4}  pid {component['pid']:<8} {component['log']}")
    return 0 if running else 1


def _trigger(args: argparse.Namespace) -> int:
    stack = _client_stack(args.dir)
    run_id = stack.trigger(args.dag_id, json.loads(args.conf))
    print(run_id, flush=True)
    return _wait(args, run_id) if args.wait else 0


def _wait(args: argparse.Namespace, run_id: str | None = None) -> int:
    stack = _client_stack(args.dir)
    run_id = run_id or args.run_id
    run = stack.wait_for_run(args.dag_id, run_id, timeout=args.timeout)
    print(f"{args.dag_id} {run_id}: {run['state']}")
    for task_id, ti in stack.task_instances(args.dag_id, run_id).items():
        print(f"  {task_id:<28} {ti['state'] or 'none':<16} {ti.get('hostname') or ''}")
    return 0 if run["state"] == "success" else 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="airflow-stack", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--dir",
        type=Path,
        default=_default_dir(),
        help="the stack's directory (default $AIRFLOW_STACK_DIR or <tmp>/airflow-stack)",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="start the stack in the background; returns once it is ready")
    serve = commands.add_parser("_serve", help=argparse.SUPPRESS)
    for sub in (up, serve):
        sub.add_argument("--executor", choices=("local", "celery"), default="local")
        sub.add_argument(
            "--dags-folder", default=str(EXAMPLE_DAGS), help="DAGs to run (default: the example DAGs)"
        )
        sub.add_argument(
            "--operation-duration", type=float, default=3.0, help="seconds each emulator operation takes"
        )
        sub.add_argument("--celery-workers", type=int, default=2)
        sub.add_argument(
            "--no-seed", action="store_true", help="leave main empty (default: load the demo data)"
        )
        sub.add_argument(
            "--backdate-days",
            type=float,
            default=2.0,
            help="days the project existed (with its seed data) before the stack started (default 2)",
        )
    up.add_argument("--timeout", type=float, default=400.0, help="seconds to wait for the stack to be ready")
    commands.add_parser("down", help="stop everything the stack started")
    commands.add_parser("status", help="what is running, where, and its log files")
    trigger = commands.add_parser(
        "trigger", help="trigger a manual run (no logical date) through the REST API"
    )
    trigger.add_argument("dag_id")
    trigger.add_argument("--conf", default="{}", help="the run's conf, as JSON")
    trigger.add_argument("--wait", action="store_true", help="wait for the run and print its task states")
    trigger.add_argument("--timeout", type=float, default=600.0)
    wait = commands.add_parser("wait", help="wait for a run to finish; exit 0 if it succeeded")
    wait.add_argument("dag_id")
    wait.add_argument("run_id")
    wait.add_argument("--timeout", type=float, default=600.0)
    args = parser.parse_args(argv)
    args.dir = args.dir.resolve()
    try:
        if args.command == "up":
            args.serve_args = [
                "--executor",
                args.executor,
                "--dags-folder",
                str(Path(args.dags_folder).resolve()),
                "--operation-duration",
                str(args.operation_duration),
                "--celery-workers",
                str(args.celery_workers),
                *(["--no-seed"] if args.no_seed else []),
                "--backdate-days",
                str(args.backdate_days),
            ]
            return _up(args)
        if args.command == "_serve":
            return _serve(args)
        if args.command == "down":
            return _down(args.dir)
        if args.command == "status":
            return _print_status(args.dir)
        if args.command == "trigger":
            return _trigger(args)
        return _wait(args)
    except StackError as err:
        print(f"[airflow-stack] {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
