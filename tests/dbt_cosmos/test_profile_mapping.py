"""JamboBranchProfileMapping: a Cosmos profile for a branch made earlier in the run.

Parse time: the arguments are checked, the mock profile renders, nothing is looked up or sent.
Run time (against the emulator and its data plane): the create task's XCom or a templated name
becomes a dbt ``postgres`` profile whose password is only an ``env_var`` reference, the password
and libpq's ``PGHOSTADDR`` travel in the environment, and dbt itself connects with them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx
import pytest
import yaml

pytest.importorskip("cosmos.profiles", reason="needs the cosmos extra (astronomer-cosmos)")

from airflow.providers.common.compat.sdk import BaseHook, BaseOperator
from cosmos.config import ProfileConfig

import airflow_provider_jambo.cosmos as jambo_cosmos
from airflow_provider_jambo.cosmos import JamboBranchProfileMapping
from airflow_provider_jambo.exceptions import JamboConfigError, JamboRefusedError
from airflow_provider_jambo.hooks.jambo import JamboHook
from airflow_provider_jambo.operators.branch_operators import JamboCreateBranchOperator
from jambo_emulator import JamboEmulator

ROOT = Path(__file__).resolve().parents[2]
DBT = ROOT / ".venv-dbt" / "bin" / "dbt"
SECRET_VAR = "DBT_ENV_SECRET_JAMBO_PASSWORD"


# --- parse time -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "exactly one of branch_task_id= .* or branch_name="),
        ({"branch_task_id": "a", "branch_name": "b"}, "exactly one of branch_task_id="),
        ({"branch_task_id": " "}, "branch_task_id must be a non-empty string"),
        ({"branch_name": "b", "database": ""}, "database must be"),
        ({"branch_name": "b", "project_id": "Not An Id"}, "project_id must be"),
        ({"branch_name": "b", "pooled": "yes"}, "pooled must be True or False"),
        ({"branch_name": "b", "profile_args": {"password": "x"}}, "must not carry a password"),
    ],
)
def test_bad_arguments_are_refused_when_the_dag_is_parsed(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(JamboConfigError, match=message):
        JamboBranchProfileMapping(**kwargs)


@pytest.fixture
def no_io(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []

    def refuse(what: str) -> Any:
        def _refuse(*args: Any, **kwargs: Any) -> Any:
            calls.append(what)
            raise AssertionError(f"{what} at parse time")

        return _refuse

    monkeypatch.setattr(BaseHook, "get_connection", classmethod(refuse("connection lookup")))
    monkeypatch.setattr(httpx.HTTPTransport, "handle_request", refuse("HTTP request"))
    return calls


def test_parse_uses_the_mock_profile_and_asks_nothing(no_io: list[str]) -> None:
    mapping = JamboBranchProfileMapping(branch_task_id="preview.create_branch", profile_args={"schema": "x"})
    config = ProfileConfig(profile_name="shop", target_name="preview", profile_mapping=mapping)
    assert config.get_profile_type() == "postgres"
    mock = yaml.safe_load(mapping.get_profile_file_contents("shop", "preview", use_mock_values=True))
    target = mock["shop"]["outputs"]["preview"]
    assert target["type"] == "postgres"
    assert target["schema"] == "x"
    assert target["password"] == "mock_value"
    mapping.version("shop", "preview", mock_profile=True)
    with config.ensure_profile(use_mock_values=True) as (path, env):
        assert env == {}
        assert Path(path).is_file()
    assert no_io == []


def test_outside_a_task_the_real_profile_says_why() -> None:
    mapping = JamboBranchProfileMapping(branch_task_id="create_branch")
    with pytest.raises(JamboConfigError, match="only inside a running task"):
        _ = mapping.profile


def test_without_cosmos_the_module_imports_and_the_class_names_the_extra() -> None:
    script = textwrap.dedent(
        """
        import sys
        from importlib.abc import MetaPathFinder

        class NoCosmos(MetaPathFinder):
            # Cosmos's provider metadata stays discoverable (installed here); its mappings do not.
            def find_spec(self, name, path=None, target=None):
                if name.startswith("cosmos.profiles"):
                    raise ModuleNotFoundError(f"No module named {name!r}")
                return None

        sys.meta_path.insert(0, NoCosmos())
        import airflow_provider_jambo.cosmos
        print("module: ok")
        try:
            from airflow_provider_jambo.cosmos import JamboBranchProfileMapping
        except Exception as err:
            print(f"class: {type(err).__name__}: {err}")
        """
    )
    env = {**os.environ, "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
    proc = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "module: ok" in proc.stdout.splitlines()
    assert (
        "class: AirflowOptionalProviderFeatureException: dbt with Cosmos needs the cosmos extra: "
        "pip install 'airflow-provider-jambo[cosmos]'"
    ) in proc.stdout.splitlines(), proc.stdout


# --- run time, against the emulator ---------------------------------------------------------------

pg = pytest.mark.postgres


class _TI:
    dag_id, run_id, task_id, try_number, map_index = "dbt_tests", "manual__1", "dbt_run", 1, -1

    def __init__(self, xcom: dict[str, Any] | None = None) -> None:
        self.xcom = xcom or {}
        self.pushed: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.pushed[key] = json.loads(json.dumps(value))

    def xcom_pull(self, task_ids: str) -> Any:
        return self.xcom.get(task_ids)


def _context(xcom: dict[str, Any] | None = None, run_id: str = "manual__1") -> dict[str, Any]:
    ti = _TI(xcom)
    ti.run_id = run_id
    return {"ti": ti, "task_instance": ti, "run_id": run_id, "task": BaseOperator(task_id="dbt_run")}


@pytest.fixture(scope="module")
def emulator() -> Iterator[JamboEmulator]:
    with JamboEmulator(api_key="dbt-test-key", operation_duration=0.0, data_plane="auto") as emu:
        if not emu.ctx.data_plane.enabled:
            pytest.skip("PostgreSQL server binaries not found: the emulator's data plane is off")
        yield emu


@pytest.fixture
def project(emulator: JamboEmulator, monkeypatch: pytest.MonkeyPatch) -> str:
    body = emulator.create_project(name="dbt")
    project_id: str = body["id"] if "id" in body else body["project"]["id"]
    monkeypatch.setenv(
        "AIRFLOW_CONN_JAMBO_DEFAULT",
        json.dumps(
            {
                "conn_type": "jambo",
                "host": emulator.base_url,
                "password": emulator.api_key,
                "extra": {"project_id": project_id},
            }
        ),
    )
    hook = JamboHook()
    hook.operations.wait([op["id"] for op in body.get("operations", [])], timeout=60).raise_for_status()
    return project_id


def _create(name: str) -> dict[str, Any]:
    result = JamboCreateBranchOperator(task_id="create_branch", branch_name=name).execute(_context())
    assert result is not None
    return dict(json.loads(json.dumps(result)))


def _password(branch: dict[str, Any]) -> str:
    uri = JamboHook().branches.connection_uri(
        branch_id=branch["branch_id"], database=branch["database"], role=branch["role"]
    )
    return unquote(urlsplit(uri).password or "")


def _running(monkeypatch: pytest.MonkeyPatch, context: dict[str, Any]) -> None:
    # What Airflow's task runner sets while a task executes (the mapping reads it as Cosmos runs).
    monkeypatch.setattr(jambo_cosmos, "get_current_context", lambda: context)


@pg
def test_run_time_profile_from_the_create_tasks_xcom(
    emulator: JamboEmulator, project: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    branch = _create("dbt-xcom")
    password = _password(branch)
    _running(monkeypatch, _context({"preview.create_branch": branch}))
    mapping = JamboBranchProfileMapping(
        branch_task_id="preview.create_branch", profile_args={"schema": "dbt"}
    )
    emulator.clear_requests()
    contents = mapping.get_profile_file_contents("shop", "preview")
    env = mapping.env_vars
    mapping.version("shop", "preview")
    # Profile, environment and hash: one API lookup for the task instance.
    assert sum(r["path"].endswith("/connection_uri") for r in emulator.requests()) == 1
    profile = yaml.safe_load(contents)["shop"]["outputs"]["preview"]
    assert profile == {
        "type": "postgres",
        "host": branch["host"],  # the endpoint's name: TLS's SNI names the endpoint
        "port": profile["port"],
        "user": branch["role"],
        "dbname": branch["database"],
        "schema": "dbt",
        "sslmode": "require",
        "password": "{{ env_var('" + SECRET_VAR + "') }}",
    }
    assert password
    assert password not in contents
    assert env[SECRET_VAR] == password
    assert env["PGHOSTADDR"] == "127.0.0.1"  # no DNS for the endpoint's name
    assert set(env) == {SECRET_VAR, "PGHOSTADDR"}
    # Another task instance of the group (the same mapping object) asks again, for itself.
    other = _context({"preview.create_branch": branch})
    other["ti"].task_id = "dbt_test"
    _running(monkeypatch, other)
    assert mapping.env_vars[SECRET_VAR] == password
    # Printed as a local variable (Airflow 3.0's tracebacks), the environment hides it.
    assert password not in repr(mapping.env_vars)
    assert password not in repr(dict(os.environ, **mapping.env_vars))
    assert sum(r["path"].endswith("/connection_uri") for r in emulator.requests()) == 2


@pg
def test_run_time_profile_from_a_templated_name_and_the_default_branch_refused(
    project: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    branch = _create("dbt-name-manual__7")
    _running(monkeypatch, _context(run_id="manual__7"))
    mapping = JamboBranchProfileMapping(branch_name="dbt-name-{{ run_id }}")
    profile = mapping.profile
    assert profile["host"] == branch["host"]
    assert (profile["user"], profile["dbname"]) == (branch["role"], branch["database"])
    with pytest.raises(JamboRefusedError, match="default branch and dbt writes to it"):
        _ = JamboBranchProfileMapping(branch_name="main").profile
    # Told explicitly, the default branch is allowed.
    assert JamboBranchProfileMapping(branch_name="main", allow_default_or_protected=True).profile["host"]


@pg
@pytest.mark.skipif(not DBT.exists(), reason="dbt's virtualenv is missing: run scripts/bootstrap")
def test_dbt_connects_to_the_branch_with_the_profile_and_environment(
    project: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """``dbt debug`` (the real dbt-postgres, psycopg2 and libpq) reaches the branch: SNI from the
    profile's host, the address from PGHOSTADDR, the password from the environment."""
    branch = _create("dbt-debug")
    _running(monkeypatch, _context({"create_branch": branch}))
    mapping = JamboBranchProfileMapping(branch_task_id="create_branch")
    project_dir = tmp_path / "project"
    project_dir.mkdir()
    (project_dir / "dbt_project.yml").write_text("name: probe\nversion: '1.0'\nprofile: shop\n")
    (tmp_path / "profiles.yml").write_text(mapping.get_profile_file_contents("shop", "preview"))
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "DO_NOT_TRACK": "1", **mapping.env_vars}
    proc = subprocess.run(
        [
            str(DBT),
            "--no-use-colors",
            "debug",
            "--profiles-dir",
            str(tmp_path),
            "--project-dir",
            str(project_dir),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-3000:]
    assert "Connection test: [OK connection ok]" in output
    assert env[SECRET_VAR] not in output
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert env[SECRET_VAR] not in path.read_text(errors="replace"), path
