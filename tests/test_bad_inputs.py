"""Every bad input a user can give, refused with a message naming the parameter, before any request.

One table: hook calls, connections, operators (literal values at DAG parse, templated values after
rendering, first thing in ``execute``), the sensor and the janitor. Each case asserts the error
type, that the message names the user-facing parameter, and (from the emulator's request log) that
no request went out, or, for the few refusals that must read the service's state first, that no
mutating request did.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from jambo_support import make_context

from airflow_provider_jambo.create_branch_request import CreateBranchRequest
from airflow_provider_jambo.exceptions import JamboConfigError, JamboError, JamboRefusedError, JamboTLSError
from airflow_provider_jambo.hooks.jambo import JamboHook
from airflow_provider_jambo.operators.branch_operators import (
    JamboCreateBranchOperator,
    JamboDeleteBranchOperator,
    JamboResetBranchOperator,
)
from airflow_provider_jambo.operators.compute_operators import (
    JamboCreateComputeOperator,
    JamboDeleteComputeOperator,
    JamboStartComputeOperator,
    JamboSuspendComputeOperator,
)
from airflow_provider_jambo.operators.janitor import JamboDeleteStaleBranchesOperator
from airflow_provider_jambo.operators.snapshot_operators import (
    JamboCreateSnapshotOperator,
    JamboDeleteSnapshotOperator,
    JamboFinalizeRestoreOperator,
    JamboRestoreSnapshotOperator,
    JamboSetBackupScheduleOperator,
)
from airflow_provider_jambo.sensors.operation_sensor import JamboOperationSensor

NAN, INF = math.nan, math.inf
LONG = "x" * 257
FUTURE = "2099-01-01T00:00:00Z"
PAST = "2020-01-01T00:00:00Z"
T = "{{ params.value }}"


def _in(days: float) -> datetime:
    return datetime.now(UTC) + timedelta(days=days)


@dataclass
class Env:
    emu: Any
    project_id: str
    default_branch_id: str

    def hook(self, conn_id: str = "jambo_default") -> JamboHook:
        return JamboHook(conn_id)


@dataclass(frozen=True)
class Case:
    id: str
    param: str
    run: Callable[[Env], object]
    #: Refusals that need to read the service's state first: only mutating requests are forbidden.
    reads_ok: bool = False
    error: type[JamboError] = JamboConfigError
    #: Overrides of the ``jambo_bad`` connection (JSON form) the case uses; ``None``: no such connection.
    conn: Callable[[Env], dict[str, Any]] | None = field(default=None, repr=False)


def rendered(op: Any, **values: Any) -> object:
    """``op`` was built with templates; give the fields their rendered values and execute it."""
    for name, value in values.items():
        setattr(op, name, value)
    return op.execute(make_context())


def create(**kwargs: Any) -> JamboCreateBranchOperator:
    kwargs.setdefault("branch_name", "ok-branch")
    return JamboCreateBranchOperator(task_id="create", **kwargs)


def reset(**kwargs: Any) -> JamboResetBranchOperator:
    kwargs.setdefault("branch", "ok-branch")
    return JamboResetBranchOperator(task_id="reset", **kwargs)


def compute(**kwargs: Any) -> JamboCreateComputeOperator:
    kwargs.setdefault("branch", "main")
    return JamboCreateComputeOperator(task_id="compute", **kwargs)


def sensor(**kwargs: Any) -> JamboOperationSensor:
    kwargs.setdefault("deferrable", False)
    kwargs.setdefault("timeout", 5)
    return JamboOperationSensor(task_id="sense", **kwargs)


def janitor(**kwargs: Any) -> JamboDeleteStaleBranchesOperator:
    kwargs.setdefault("name_prefix", "tmp-")
    kwargs.setdefault("older_than", 0)
    return JamboDeleteStaleBranchesOperator(task_id="janitor", **kwargs)


def snapshot(**kwargs: Any) -> JamboCreateSnapshotOperator:
    kwargs.setdefault("branch", "main")
    return JamboCreateSnapshotOperator(task_id="snapshot", **kwargs)


def restore(**kwargs: Any) -> JamboRestoreSnapshotOperator:
    if "latest_of" not in kwargs:
        kwargs.setdefault("snapshot", "nightly")
    return JamboRestoreSnapshotOperator(task_id="restore", **kwargs)


def schedule(items: Any) -> JamboSetBackupScheduleOperator:
    return JamboSetBackupScheduleOperator(task_id="schedule", branch="main", schedule=items)


def bad_conn(**payload: Any) -> Callable[[Env], dict[str, Any]]:
    """A connection to the emulator with ``payload`` overriding the good one's fields."""

    def build(env: Env) -> dict[str, Any]:
        fields = dict(payload)
        good: dict[str, Any] = {
            "conn_type": "jambo",
            "host": env.emu.base_url,
            "password": env.emu.api_key,
            "extra": {"project_id": env.project_id},
        }
        extra = fields.pop("extra_fields", None)
        good.update(fields)
        if extra is not None:
            good["extra"] = {**good["extra"], **extra}
        return good

    return build


def host_with(prefix: str = "", suffix: str = "") -> Callable[[Env], dict[str, Any]]:
    def build(env: Env) -> dict[str, Any]:
        base = bad_conn()(env)
        scheme, _, rest = str(env.emu.base_url).partition("://")
        base["host"] = f"{scheme}://{prefix}{rest}{suffix}"
        return base

    return build


def list_projects(hook: JamboHook) -> object:
    return list(hook.projects.list())


def conn_case(
    case_id: str, param: str, conn: Callable[[Env], dict[str, Any]] | None = None, **extra_fields: Any
) -> Case:
    """A first call through the ``jambo_bad`` connection: ``conn``, or the good one with these
    extras, whose settings are the mistake."""
    build = conn or bad_conn(extra_fields=extra_fields)
    return Case(case_id, param, lambda e: list_projects(e.hook("jambo_bad")), conn=build)


def ep(**fields: Any) -> list[dict[str, Any]]:
    return [{"type": "read_write", **fields}]


CASES: list[Case] = [
    # --- hook: branches ----------------------------------------------------------------------
    Case("hook name 257 chars", "name", lambda e: e.hook().branches.create(CreateBranchRequest(name=LONG))),
    Case("hook name newline", "name", lambda e: e.hook().branches.create(CreateBranchRequest(name="a\nb"))),
    Case("hook name NUL", "name", lambda e: e.hook().branches.create(CreateBranchRequest(name="a\x00b"))),
    Case("hook name tab", "name", lambda e: e.hook().branches.create(CreateBranchRequest(name="a\tb"))),
    Case("hook name empty", "name", lambda e: e.hook().branches.create(CreateBranchRequest(name=""))),
    Case("hook name blank", "name", lambda e: e.hook().branches.create(CreateBranchRequest(name="   "))),
    Case("hook name not a string", "name", lambda e: e.hook().branches.create(CreateBranchRequest(name=5))),  # type: ignore[arg-type]
    Case(
        "hook parent_id not an id",
        "parent_id",
        lambda e: e.hook().branches.create(CreateBranchRequest(parent_id="Main")),
    ),
    Case(
        "hook parent_lsn not hex",
        "parent_lsn",
        lambda e: e.hook().branches.create(CreateBranchRequest(parent_lsn="0/ZZZZ")),
    ),
    Case(
        "hook parent_lsn slash only",
        "parent_lsn",
        lambda e: e.hook().branches.create(CreateBranchRequest(parent_lsn="/")),
    ),
    Case(
        "hook parent_lsn no slash",
        "parent_lsn",
        lambda e: e.hook().branches.create(CreateBranchRequest(parent_lsn="16B3748")),
    ),
    Case(
        "hook parent_lsn empty",
        "parent_lsn",
        lambda e: e.hook().branches.create(CreateBranchRequest(parent_lsn="")),
    ),
    Case(
        "hook parent_lsn and timestamp",
        "parent_lsn",
        lambda e: e.hook().branches.create(CreateBranchRequest(parent_lsn="0/1", parent_timestamp=PAST)),
    ),
    Case(
        "hook parent_timestamp future",
        "parent_timestamp",
        lambda e: e.hook().branches.create(CreateBranchRequest(parent_timestamp=FUTURE)),
    ),
    Case(
        "hook parent_timestamp no zone",
        "parent_timestamp",
        lambda e: e.hook().branches.create(CreateBranchRequest(parent_timestamp="2026-01-01T00:00:00")),
    ),
    Case(
        "hook parent_timestamp text",
        "parent_timestamp",
        lambda e: e.hook().branches.create(CreateBranchRequest(parent_timestamp="yesterday")),
    ),
    Case(
        "hook parent_timestamp number",
        "parent_timestamp",
        lambda e: e.hook().branches.create(CreateBranchRequest(parent_timestamp=1)),
    ),  # type: ignore[arg-type]
    Case(
        "hook init_source",
        "init_source",
        lambda e: e.hook().branches.create(CreateBranchRequest(init_source="full")),
    ),
    Case(
        "hook expires_at past",
        "expires_at",
        lambda e: e.hook().branches.create(CreateBranchRequest(expires_at=PAST)),
    ),
    Case(
        "hook expires_at 31 days",
        "expires_at",
        lambda e: e.hook().branches.create(CreateBranchRequest(expires_at=_in(31))),
    ),
    Case(
        "hook expires_at naive",
        "expires_at",
        lambda e: e.hook().branches.create(CreateBranchRequest(expires_at=datetime(2099, 1, 1))),
    ),
    Case(
        "hook expires_at on protected",
        "expires_at",
        lambda e: e.hook().branches.create(CreateBranchRequest(expires_at=_in(1), protected=True)),
    ),
    Case(
        "hook endpoint type",
        "type",
        lambda e: e.hook().branches.create(CreateBranchRequest(endpoints=[{"type": "gpu"}])),
    ),
    Case(
        "hook endpoint not a dict",
        "endpoints",
        lambda e: e.hook().branches.create(CreateBranchRequest(endpoints=["read_write"])),
    ),  # type: ignore[list-item]
    Case(
        "hook endpoint min cu",
        "autoscaling_limit_min_cu",
        lambda e: e.hook().branches.create(CreateBranchRequest(endpoints=ep(autoscaling_limit_min_cu=0.1))),
    ),
    Case(
        "hook endpoint max cu text",
        "autoscaling_limit_max_cu",
        lambda e: e.hook().branches.create(CreateBranchRequest(endpoints=ep(autoscaling_limit_max_cu="2"))),
    ),
    Case(
        "hook endpoint suspend 30",
        "suspend_timeout_seconds",
        lambda e: e.hook().branches.create(CreateBranchRequest(endpoints=ep(suspend_timeout_seconds=30))),
    ),
    Case(
        "hook two read_write endpoints",
        "endpoints",
        lambda e: e.hook().branches.create(CreateBranchRequest(endpoints=ep() + ep())),
    ),
    Case(
        "hook annotations not strings",
        "annotations",
        lambda e: e.hook().branches.create(CreateBranchRequest(annotations={"a": 1})),
    ),  # type: ignore[dict-item]
    Case(
        "hook get_or_create 257 chars",
        "name",
        lambda e: e.hook().branches.get_or_create(CreateBranchRequest(name=LONG)),
    ),
    Case(
        "hook get_or_create newline",
        "name",
        lambda e: e.hook().branches.get_or_create(CreateBranchRequest(name="a\nb")),
    ),
    Case(
        "hook get_or_create bad lsn",
        "parent_lsn",
        lambda e: e.hook().branches.get_or_create(CreateBranchRequest(name="ok", parent_lsn="0/ZZZZ")),
    ),
    Case(
        "hook get_or_create future timestamp",
        "parent_timestamp",
        lambda e: e.hook().branches.get_or_create(CreateBranchRequest(name="ok", parent_timestamp=FUTURE)),
    ),
    Case(
        "hook get_or_create bad expiry",
        "expires_at",
        lambda e: e.hook().branches.get_or_create(CreateBranchRequest(name="ok", expires_at=PAST)),
    ),
    Case("hook update_branch name", "name", lambda e: e.hook().branches.update("br-x", name=LONG)),
    Case(
        "hook update_branch expires_at",
        "expires_at",
        lambda e: e.hook().branches.update("br-x", expires_at=PAST),
    ),
    Case("hook update_branch nothing", "name", lambda e: e.hook().branches.update("br-x")),
    Case("hook update_branch id", "branch_id", lambda e: e.hook().branches.update("../x", protected=True)),
    Case("hook delete_branch id", "branch_id", lambda e: e.hook().branches.delete("BR")),
    Case("hook get_branch id", "branch_id", lambda e: e.hook().branches.get("br_x")),
    Case(
        "hook restore source id",
        "source_branch_id",
        lambda e: e.hook().branches.restore("br-x", source_branch_id="X"),
    ),
    Case(
        "hook restore source_lsn",
        "source_lsn",
        lambda e: e.hook().branches.restore("br-x", source_branch_id="br-y", source_lsn="zz"),
    ),
    Case(
        "hook restore source_timestamp future",
        "source_timestamp",
        lambda e: e.hook().branches.restore("br-x", source_branch_id="br-y", source_timestamp=FUTURE),
    ),
    Case(
        "hook restore both",
        "source_lsn",
        lambda e: e.hook().branches.restore(
            "br-x", source_branch_id="br-y", source_lsn="0/1", source_timestamp=PAST
        ),
    ),
    Case(
        "hook restore preserve_under_name",
        "preserve_under_name",
        lambda e: e.hook().branches.restore("br-x", source_branch_id="br-y", preserve_under_name="a\nb"),
    ),
    Case(
        "hook restore from itself",
        "source_lsn",
        lambda e: e.hook().branches.restore("br-x", source_branch_id="br-x"),
    ),
    Case("hook schema lsn", "lsn", lambda e: e.hook().branches.get_schema("br-x", database="db", lsn="nope")),
    Case(
        "hook schema timestamp future",
        "timestamp",
        lambda e: e.hook().branches.get_schema("br-x", database="db", timestamp=FUTURE),
    ),
    Case("hook schema database", "database", lambda e: e.hook().branches.get_schema("br-x", database="")),
    Case("hook resolve empty", "name_or_id", lambda e: e.hook().branches.resolve("")),
    Case("hook resolve tab", "name_or_id", lambda e: e.hook().branches.resolve("a\tb")),
    Case("hook find 300 chars", "name", lambda e: e.hook().branches.find_by_name("y" * 300)),
    Case("hook list_branches project", "project_id", lambda e: list(e.hook().branches.list("UPPER"))),
    Case("hook create_project name", "name", lambda e: e.hook().projects.create(name="a\nb")),
    # --- hook: endpoints ---------------------------------------------------------------------
    Case("hook min_cu text", "min_cu", lambda e: e.hook().computes.create("br-x", min_cu="1")),  # type: ignore[arg-type]
    Case("hook min_cu low", "min_cu", lambda e: e.hook().computes.create("br-x", min_cu=0.1)),
    Case("hook max_cu high", "max_cu", lambda e: e.hook().computes.create("br-x", max_cu=17)),
    Case("hook max below min", "max_cu", lambda e: e.hook().computes.create("br-x", min_cu=4, max_cu=2)),
    Case("hook spread over 8", "max_cu", lambda e: e.hook().computes.create("br-x", min_cu=0.25, max_cu=9)),
    Case("hook max_cu nan", "max_cu", lambda e: e.hook().computes.create("br-x", max_cu=NAN)),
    Case("hook max_cu inf", "max_cu", lambda e: e.hook().computes.create("br-x", max_cu=INF)),
    Case("hook min_cu bool", "min_cu", lambda e: e.hook().computes.create("br-x", min_cu=True)),
    Case("hook create_endpoint type", "type", lambda e: e.hook().computes.create("br-x", type="gpu")),
    Case("hook endpoint branch id", "branch_id", lambda e: e.hook().computes.create("Main")),
    Case(
        "hook suspend 30",
        "suspend_timeout_seconds",
        lambda e: e.hook().computes.create("br-x", suspend_timeout_seconds=30),
    ),
    Case(
        "hook suspend 1",
        "suspend_timeout_seconds",
        lambda e: e.hook().computes.create("br-x", suspend_timeout_seconds=1),
    ),
    Case(
        "hook suspend over a week",
        "suspend_timeout_seconds",
        lambda e: e.hook().computes.create("br-x", suspend_timeout_seconds=604801),
    ),
    Case(
        "hook suspend -2",
        "suspend_timeout_seconds",
        lambda e: e.hook().computes.create("br-x", suspend_timeout_seconds=-2),
    ),
    Case(
        "hook suspend float",
        "suspend_timeout_seconds",
        lambda e: e.hook().computes.create("br-x", suspend_timeout_seconds=300.5),  # type: ignore[arg-type]
    ),
    Case(
        "hook update suspend text",
        "suspend_timeout_seconds",
        lambda e: e.hook().computes.update("ep-x", suspend_timeout_seconds="300"),  # type: ignore[arg-type]
    ),
    Case("hook update nothing", "min_cu", lambda e: e.hook().computes.update("ep-x")),
    Case("hook update endpoint id", "endpoint_id", lambda e: e.hook().computes.update("EP", min_cu=1)),
    Case("hook delete endpoint id", "endpoint_id", lambda e: e.hook().computes.delete("ep x")),
    Case("hook start endpoint id", "endpoint_id", lambda e: e.hook().computes.start("")),
    # --- hook: databases, roles, URIs ----------------------------------------------------------
    Case("hook database name", "name", lambda e: e.hook().databases.create("br-x", "", owner_name="o")),
    Case(
        "hook database owner", "owner_name", lambda e: e.hook().databases.create("br-x", "db", owner_name="")
    ),
    Case("hook role 64 chars", "name", lambda e: e.hook().roles.create("br-x", "r" * 64)),
    Case("hook role NUL", "name", lambda e: e.hook().roles.get("br-x", "a\x00")),
    Case("hook delete database name", "name", lambda e: e.hook().databases.delete("br-x", "a\nb")),
    Case(
        "hook uri role",
        "role",
        lambda e: e.hook().branches.connection_uri(branch_id="br-x", database="d", role=""),
    ),
    Case(
        "hook uri branch",
        "branch_id",
        lambda e: e.hook().branches.connection_uri(branch_id="x y", database="d", role="r"),
    ),
    # --- hook: operations and waiting ----------------------------------------------------------
    Case("hook get_operation id", "operation_id", lambda e: e.hook().operations.get("Not An Id")),
    Case("hook get_operations ints", "operation_id", lambda e: e.hook().operations.get_many([1, 2])),  # type: ignore[list-item]
    Case("hook wait poll 0", "poll_interval", lambda e: e.hook().operations.wait(["op-1"], poll_interval=0)),
    Case(
        "hook wait poll negative",
        "poll_interval",
        lambda e: e.hook().operations.wait(["op-1"], poll_interval=-1),
    ),
    Case(
        "hook wait poll nan",
        "poll_interval",
        lambda e: e.hook().operations.wait(["op-1"], poll_interval=NAN),
    ),
    Case("hook wait timeout 0", "timeout", lambda e: e.hook().operations.wait(["op-1"], timeout=0)),
    Case("hook wait timeout inf", "timeout", lambda e: e.hook().operations.wait(["op-1"], timeout=INF)),
    Case("hook wait bad id", "operation_id", lambda e: e.hook().operations.wait(["BAD"])),
    # --- connection ----------------------------------------------------------------------------
    conn_case("conn type postgres", "conn_type", bad_conn(conn_type="postgres")),
    conn_case("conn type http", "conn_type", bad_conn(conn_type="http")),
    conn_case("conn host query", "host", host_with(suffix="/some/path?x=1")),
    conn_case("conn host fragment", "host", host_with(suffix="#frag")),
    conn_case("conn host userinfo", "host", host_with(prefix="u:p@")),
    conn_case("conn max_retries -1", "max_retries", max_retries=-1),
    conn_case("conn max_retries 1.7", "max_retries", max_retries=1.7),
    conn_case("conn max_retries text", "max_retries", max_retries="many"),
    conn_case("conn max_retries bool", "max_retries", max_retries=True),
    conn_case("conn retry_max_wait -1", "retry_max_wait", retry_max_wait=-1),
    conn_case("conn retry_max_wait nan", "retry_max_wait", retry_max_wait="nan"),
    conn_case("conn retry_max_wait inf", "retry_max_wait", retry_max_wait="inf"),
    conn_case("conn timeout nan", "timeout", timeout="nan"),
    conn_case("conn timeout inf", "timeout", timeout="inf"),
    conn_case("conn timeout negative", "timeout", timeout=-3),
    conn_case("conn timeout 0", "timeout", timeout=0),
    Case(
        "conn project_id extra",
        "project_id",
        lambda e: e.hook("jambo_bad").projects.get(),
        conn=bad_conn(extra_fields={"project_id": "Not Valid"}),
    ),
    conn_case("conn extra not JSON", "extra", bad_conn(extra="{nope")),
    conn_case("conn extra a list", "extra", bad_conn(extra="[1, 2]")),
    conn_case("conn no password", "password", bad_conn(password=None)),
    conn_case("conn key with newline", "API key", bad_conn(password="ab\ncd")),
    conn_case("conn ftp host", "https", bad_conn(host="ftp://example.com")),
    conn_case("conn plain http off loopback", "plain http", bad_conn(host="http://example.com")),
    Case("conn not defined", "jambo_missing", lambda e: list_projects(e.hook("jambo_missing"))),
    Case(
        "conn no project anywhere",
        "project_id",
        lambda e: list(e.hook("jambo_bad").branches.list()),
        conn=bad_conn(extra={}),
    ),
    # --- create branch operator: literal values at DAG parse -----------------------------------
    Case("op branch_name 257 chars", "branch_name", lambda e: create(branch_name=LONG)),
    Case("op branch_name newline", "branch_name", lambda e: create(branch_name="a\nb")),
    Case("op branch_name NUL", "branch_name", lambda e: create(branch_name="a\x00b")),
    Case("op branch_name empty", "branch_name", lambda e: create(branch_name="")),
    Case("op branch_name not text", "branch_name", lambda e: create(branch_name=42)),
    Case("op ttl 10**20", "ttl", lambda e: create(ttl=10**20)),
    Case("op ttl nan", "ttl", lambda e: create(ttl=NAN)),
    Case("op ttl inf", "ttl", lambda e: create(ttl=INF)),
    Case("op ttl negative", "ttl", lambda e: create(ttl=-5)),
    Case("op ttl zero", "ttl", lambda e: create(ttl=0)),
    Case("op ttl text", "ttl", lambda e: create(ttl="1h")),
    Case("op ttl 31 days", "ttl", lambda e: create(ttl=timedelta(days=31))),
    Case("op ttl bool", "ttl", lambda e: create(ttl=True)),
    Case("op expires_at past", "expires_at", lambda e: create(expires_at=PAST)),
    Case("op expires_at 31 days", "expires_at", lambda e: create(expires_at=_in(31))),
    Case("op expires_at and ttl", "expires_at", lambda e: create(expires_at=_in(1), ttl=60)),
    Case("op ttl on protected", "ttl", lambda e: create(ttl=60, protected=True)),
    Case("op suspend 30", "suspend_timeout_seconds", lambda e: create(suspend_timeout_seconds=30)),
    Case(
        "op suspend over a week", "suspend_timeout_seconds", lambda e: create(suspend_timeout_seconds=604801)
    ),
    Case("op min_cu text", "min_cu", lambda e: create(min_cu="1")),
    Case("op max_cu 20", "max_cu", lambda e: create(max_cu=20)),
    Case("op max_cu nan", "max_cu", lambda e: create(max_cu=NAN)),
    Case("op spread", "max_cu", lambda e: create(min_cu=1, max_cu=10)),
    Case("op compute_type", "compute_type", lambda e: create(compute_type="gpu")),
    Case("op limits without compute", "compute_type", lambda e: create(compute_type=None, min_cu=1)),
    Case("op parent_lsn not hex", "parent_lsn", lambda e: create(parent_lsn="0/ZZZZ")),
    Case("op parent_lsn slash", "parent_lsn", lambda e: create(parent_lsn="/")),
    Case("op parent_timestamp future", "parent_timestamp", lambda e: create(parent_timestamp=FUTURE)),
    Case(
        "op parent_timestamp naive",
        "parent_timestamp",
        lambda e: create(parent_timestamp="2026-01-01T00:00:00"),
    ),
    Case("op lsn and timestamp", "parent_lsn", lambda e: create(parent_lsn="0/1", parent_timestamp=PAST)),
    Case("op parent empty", "parent", lambda e: create(parent="")),
    Case("op parent newline", "parent", lambda e: create(parent="a\nb")),
    Case("op if_exists", "if_exists", lambda e: create(if_exists="replace")),
    Case("op annotations list", "annotations", lambda e: create(annotations=["a"])),
    Case("op annotations values", "annotations", lambda e: create(annotations={"a": 1})),
    Case("op schema_only with lsn", "schema_only", lambda e: create(schema_only=True, parent_lsn="0/1")),
    Case("op timeout 0", "timeout", lambda e: create(timeout=0)),
    Case("op timeout nan", "timeout", lambda e: create(timeout=NAN)),
    Case("op timeout negative", "timeout", lambda e: create(timeout=-1)),
    Case("op poll_interval 0", "poll_interval", lambda e: create(poll_interval=0)),
    Case("op poll_interval nan", "poll_interval", lambda e: create(poll_interval=NAN)),
    Case("op poll_interval bool", "poll_interval", lambda e: create(poll_interval=True)),
    Case("op project_id", "project_id", lambda e: create(project_id="Bad Project")),
    Case("op database empty", "database", lambda e: create(database="")),
    # --- create branch operator: templated values, checked first thing in execute --------------
    Case(
        "op rendered branch_name 300",
        "branch_name",
        lambda e: rendered(create(branch_name=T), branch_name="z" * 300),
    ),
    Case(
        "op rendered branch_name newline",
        "branch_name",
        lambda e: rendered(create(branch_name=T), branch_name="a\nb"),
    ),
    Case("op rendered parent empty", "parent", lambda e: rendered(create(parent=T), parent="")),
    Case(
        "op rendered parent_lsn", "parent_lsn", lambda e: rendered(create(parent_lsn=T), parent_lsn="0/ZZZZ")
    ),
    Case(
        "op rendered parent_timestamp future",
        "parent_timestamp",
        lambda e: rendered(create(parent_timestamp=T), parent_timestamp=FUTURE),
    ),
    Case(
        "op rendered expires_at past", "expires_at", lambda e: rendered(create(expires_at=T), expires_at=PAST)
    ),
    Case("op rendered project_id", "project_id", lambda e: rendered(create(project_id=T), project_id="Bad")),
    Case(
        "op rendered annotations text",
        "annotations",
        lambda e: rendered(create(annotations={"k": T}), annotations="{'a': 'b'}"),
    ),
    Case("op rendered database empty", "database", lambda e: rendered(create(database=T), database="")),
    # --- delete / reset branch operators -------------------------------------------------------
    Case("delete branch empty", "branch", lambda e: JamboDeleteBranchOperator(task_id="d", branch="")),
    Case("delete branch newline", "branch", lambda e: JamboDeleteBranchOperator(task_id="d", branch="a\nb")),
    Case(
        "delete rendered branch 257",
        "branch",
        lambda e: rendered(JamboDeleteBranchOperator(task_id="d", branch=T), branch=LONG),
    ),
    Case(
        "delete rendered dict without id",
        "branch",
        lambda e: rendered(JamboDeleteBranchOperator(task_id="d", branch=T), branch={"name": "x"}),
    ),
    Case(
        "delete default branch",
        "default branch",
        lambda e: rendered(JamboDeleteBranchOperator(task_id="d", branch=T), branch="main"),
        reads_ok=True,
        error=JamboRefusedError,
    ),
    Case("reset source_lsn", "source_lsn", lambda e: reset(source_lsn="bad")),
    Case("reset source_timestamp future", "source_timestamp", lambda e: reset(source_timestamp=FUTURE)),
    Case("reset preserve_under_name", "preserve_under_name", lambda e: reset(preserve_under_name="a\nb")),
    Case("reset ttl nan", "ttl", lambda e: reset(ttl=NAN)),
    Case("reset source empty", "source", lambda e: reset(source="")),
    Case("reset branch empty", "branch", lambda e: reset(branch="")),
    Case("reset rendered source_lsn", "source_lsn", lambda e: rendered(reset(source_lsn=T), source_lsn="zz")),
    Case("reset rendered branch", "branch", lambda e: rendered(reset(branch=T), branch="a\x00")),
    Case(
        "reset default branch",
        "allow_protected",
        lambda e: rendered(reset(branch=T), branch="main"),
        reads_ok=True,
        error=JamboRefusedError,
    ),
    # --- compute operators ---------------------------------------------------------------------
    Case("compute min_cu text", "min_cu", lambda e: compute(min_cu="1")),
    Case("compute suspend 30", "suspend_timeout_seconds", lambda e: compute(suspend_timeout_seconds=30)),
    Case("compute type None", "compute_type", lambda e: compute(compute_type=None)),
    Case("compute type gpu", "compute_type", lambda e: compute(compute_type="gpu")),
    Case("compute if_exists", "if_exists", lambda e: compute(if_exists="x")),
    Case("compute branch empty", "branch", lambda e: compute(branch="")),
    Case("compute rendered branch", "branch", lambda e: rendered(compute(branch=T), branch="a\nb")),
    Case(
        "compute read_write exists and if_exists fail",
        "if_exists",
        lambda e: compute(if_exists="fail").execute(make_context()),
        reads_ok=True,
        error=JamboRefusedError,
    ),
    Case(
        "delete compute id",
        "endpoint_id",
        lambda e: JamboDeleteComputeOperator(task_id="c", endpoint_id="EP 1"),
    ),
    Case("start compute id", "endpoint_id", lambda e: JamboStartComputeOperator(task_id="c", endpoint_id="")),
    Case(
        "suspend compute rendered id",
        "endpoint_id",
        lambda e: rendered(JamboSuspendComputeOperator(task_id="c", endpoint_id=T), endpoint_id="Bad"),
    ),
    Case(
        "delete compute rendered id",
        "endpoint_id",
        lambda e: rendered(JamboDeleteComputeOperator(task_id="c", endpoint_id=T), endpoint_id="../x"),
    ),
    # --- sensor --------------------------------------------------------------------------------
    Case("sensor operation_ids empty", "operation_ids", lambda e: sensor(operation_ids=[])),
    Case("sensor operation_ids ints", "operation_ids", lambda e: sensor(operation_ids=[1, 2])),
    Case("sensor operation_ids bad id", "operation_ids", lambda e: sensor(operation_ids=["Bad Id"])),
    Case("sensor operation_ids blank text", "operation_ids", lambda e: sensor(operation_ids=" ")),
    Case("sensor operation_ids dict", "operation_ids", lambda e: sensor(operation_ids={"a": 1})),
    Case("sensor branch empty", "branch", lambda e: sensor(branch="")),
    Case("sensor branch newline", "branch", lambda e: sensor(branch="a\nb")),
    Case(
        "sensor poke_interval 0", "poke_interval", lambda e: sensor(operation_ids=["op-1"], poke_interval=0)
    ),
    Case("sensor poke_interval negative", "poke_interval", lambda e: sensor(poke_interval=-1)),
    Case("sensor poke_interval nan", "poke_interval", lambda e: sensor(poke_interval=NAN)),
    Case("sensor ids and branch", "operation_ids", lambda e: sensor(operation_ids=["op-1"], branch="main")),
    Case("sensor project_id", "project_id", lambda e: sensor(project_id="Bad")),
    Case(
        "sensor rendered empty list",
        "operation_ids",
        lambda e: rendered(sensor(operation_ids=T), operation_ids="[]"),
    ),
    Case("sensor rendered branch empty", "branch", lambda e: rendered(sensor(branch=T), branch="")),
    Case(
        "sensor rendered project",
        "project_id",
        lambda e: rendered(sensor(branch=T, project_id=T), branch="main", project_id="X Y"),
    ),
    # --- snapshots (issue 21) --------------------------------------------------------------------
    Case("snapshot point", "point", lambda e: snapshot(point="yesterday")),
    Case(
        "snapshot point and timestamp", "point", lambda e: snapshot(point="data_interval_end", timestamp=PAST)
    ),
    Case("snapshot lsn and timestamp", "lsn", lambda e: snapshot(lsn="0/16B3748", timestamp=PAST)),
    Case("snapshot lsn", "lsn", lambda e: snapshot(lsn="16B3748")),
    Case("snapshot timestamp future", "timestamp", lambda e: snapshot(timestamp=FUTURE)),
    Case("snapshot timestamp no zone", "timestamp", lambda e: snapshot(timestamp="2026-01-01T00:00:00")),
    Case("snapshot expires_at past", "expires_at", lambda e: snapshot(expires_at=PAST)),
    Case("snapshot ttl negative", "ttl", lambda e: snapshot(ttl=-60)),
    Case("snapshot ttl and expires_at", "expires_at", lambda e: snapshot(ttl=60, expires_at=FUTURE)),
    Case("snapshot name newline", "snapshot_name", lambda e: snapshot(snapshot_name="a\nb")),
    Case("snapshot branch empty", "branch", lambda e: snapshot(branch="")),
    Case(
        "snapshot rendered timestamp",
        "timestamp",
        lambda e: rendered(snapshot(timestamp=T), timestamp=FUTURE),
    ),
    Case(
        "snapshot rendered expires_at",
        "expires_at",
        lambda e: rendered(snapshot(expires_at=T), expires_at=PAST),
    ),
    Case(
        "snapshot rendered name",
        "snapshot_name",
        lambda e: rendered(snapshot(snapshot_name=T), snapshot_name=LONG),
    ),
    Case("snapshot rendered branch", "branch", lambda e: rendered(snapshot(branch=T), branch="")),
    Case("restore neither snapshot nor latest_of", "latest_of", lambda e: restore(snapshot=None)),
    Case(
        "restore both snapshot and latest_of",
        "latest_of",
        lambda e: restore(latest_of="main", snapshot="nightly"),
    ),
    Case("restore compute_type", "compute_type", lambda e: restore(compute_type="big")),
    Case("restore min_cu", "min_cu", lambda e: restore(min_cu=100)),
    Case("restore branch_name long", "branch_name", lambda e: restore(branch_name=LONG)),
    Case("restore target_branch empty", "target_branch", lambda e: restore(target_branch="")),
    Case(
        "restore rendered branch_name",
        "branch_name",
        lambda e: rendered(restore(branch_name=T), branch_name=LONG),
    ),
    Case("restore rendered snapshot", "snapshot", lambda e: rendered(restore(snapshot=T), snapshot="")),
    Case(
        "restore rendered latest_of",
        "latest_of",
        lambda e: rendered(restore(latest_of=T, snapshot=None), latest_of=""),
    ),
    Case(
        "finalize old_branch_name",
        "old_branch_name",
        lambda e: JamboFinalizeRestoreOperator(task_id="f", branch="x", old_branch_name="a\nb"),
    ),
    Case(
        "finalize rendered old_branch_name",
        "old_branch_name",
        lambda e: rendered(
            JamboFinalizeRestoreOperator(task_id="f", branch="x", old_branch_name=T), old_branch_name=LONG
        ),
    ),
    Case(
        "delete snapshot empty", "snapshot", lambda e: JamboDeleteSnapshotOperator(task_id="d", snapshot="")
    ),
    Case("schedule frequency", "frequency", lambda e: schedule([{"frequency": "hourly"}])),
    Case("schedule hour", "hour", lambda e: schedule([{"frequency": "daily", "hour": 24}])),
    Case("schedule weekly day", "day", lambda e: schedule([{"frequency": "weekly", "day": 8}])),
    Case(
        "schedule retention",
        "retention_seconds",
        lambda e: schedule([{"frequency": "daily", "retention_seconds": 60}]),
    ),
    Case("schedule not a list", "schedule", lambda e: schedule("daily")),
    Case("schedule unknown key", "schedule[0]", lambda e: schedule([{"frequency": "daily", "minute": 5}])),
    Case(
        "hook snapshot lsn and timestamp",
        "lsn",
        lambda e: e.hook().snapshots.create(e.default_branch_id, lsn="0/1", timestamp=PAST),
    ),
    Case(
        "hook snapshot expires_at",
        "expires_at",
        lambda e: e.hook().snapshots.create(e.default_branch_id, expires_at=PAST),
    ),
    Case("hook restore name", "name", lambda e: e.hook().snapshots.restore("snap-x", name="a\nb")),
    Case("hook restore snapshot_id", "snapshot_id", lambda e: e.hook().snapshots.restore("Snap X")),
    Case(
        "hook finalize name",
        "name",
        lambda e: e.hook().snapshots.finalize_restore(e.default_branch_id, name=LONG),
    ),
    Case("hook update snapshot nothing", "name", lambda e: e.hook().snapshots.update("snap-x")),
    Case(
        "hook set_schedule day",
        "day",
        lambda e: e.hook().snapshots.set_schedule(e.default_branch_id, [{"frequency": "monthly"}]),
    ),
    # --- janitor -------------------------------------------------------------------------------
    Case("janitor operation_timeout -5", "operation_timeout", lambda e: janitor(operation_timeout=-5)),
    Case("janitor operation_timeout 0", "operation_timeout", lambda e: janitor(operation_timeout=0)),
    Case("janitor operation_timeout nan", "operation_timeout", lambda e: janitor(operation_timeout=NAN)),
    Case("janitor name_prefix empty", "name_prefix", lambda e: janitor(name_prefix="")),
    Case("janitor name_prefix newline", "name_prefix", lambda e: janitor(name_prefix="a\nb")),
    Case("janitor older_than negative", "older_than", lambda e: janitor(older_than=-1)),
    Case("janitor older_than text", "older_than", lambda e: janitor(older_than="soon")),
    Case("janitor older_than nan", "older_than", lambda e: janitor(older_than=NAN)),
    Case("janitor annotations values", "annotations", lambda e: janitor(annotations={"a": 1})),
    Case("janitor annotations text", "annotations", lambda e: janitor(annotations="{'a': 'b'}")),
    Case("janitor dry_run", "dry_run", lambda e: janitor(dry_run="maybe")),
    Case("janitor project_id", "project_id", lambda e: janitor(project_id="Bad")),
    Case(
        "janitor rendered older_than",
        "older_than",
        lambda e: rendered(janitor(older_than=T), older_than="-5"),
    ),
    Case(
        "janitor rendered name_prefix",
        "name_prefix",
        lambda e: rendered(janitor(name_prefix=T), name_prefix=""),
    ),
    Case(
        "janitor rendered dry_run", "dry_run", lambda e: rendered(janitor(dry_run=T), dry_run_value="perhaps")
    ),
    Case(
        "janitor operation_timeout changed after parse",
        "operation_timeout",
        lambda e: rendered(janitor(), operation_timeout=-5),
    ),
]

MUTATING = {"POST", "PATCH", "PUT", "DELETE"}


def test_the_table_is_complete() -> None:
    assert len(CASES) >= 120
    assert len({case.id for case in CASES}) == len(CASES)


@pytest.fixture
def env(jambo_emulator: Any, monkeypatch: pytest.MonkeyPatch) -> Env:
    project = jambo_emulator.create_project(name="bad-inputs")
    project_id = project["id"] if "id" in project else project["project"]["id"]
    conn = {
        "conn_type": "jambo",
        "host": jambo_emulator.base_url,
        "password": jambo_emulator.api_key,
        "extra": {"project_id": project_id, "max_retries": 1, "retry_max_wait": 5},
    }
    monkeypatch.setenv("AIRFLOW_CONN_JAMBO_DEFAULT", json.dumps(conn))
    with JamboHook() as hook:
        default = hook.branches.get_default(project_id)
        # The branch the reset and delete cases name, so only their argument is wrong.
        hook.branches.create(
            CreateBranchRequest(name="ok-branch", parent_id=default.id), project_id=project_id
        )
    return Env(emu=jambo_emulator, project_id=project_id, default_branch_id=default.id)


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_input_is_refused_before_any_request(
    case: Case, env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    if case.conn is not None:
        payload = case.conn(env)
        if isinstance(payload.get("extra"), dict):
            payload["extra"] = json.dumps(payload["extra"])
        monkeypatch.setenv("AIRFLOW_CONN_JAMBO_BAD", json.dumps(payload))
    env.emu.clear_requests()
    with pytest.raises(case.error) as raised:
        case.run(env)
    message = str(raised.value)
    assert case.param in message, f"{case.param!r} not named in: {message}"
    sent = [(r.get("method"), r.get("path")) for r in env.emu.requests()]
    if case.reads_ok:
        assert not [s for s in sent if s[0] in MUTATING], sent
    else:
        assert sent == [], sent


def test_https_to_a_plain_http_server_fails_at_once_saying_so(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    payload = bad_conn()(env)
    payload["host"] = str(env.emu.base_url).replace("http://", "https://", 1)
    payload["extra"] = json.dumps(payload["extra"])
    monkeypatch.setenv("AIRFLOW_CONN_JAMBO_BAD", json.dumps(payload))
    hook = env.hook("jambo_bad")
    waits: list[float] = []
    hook.sleep = waits.append
    with pytest.raises(JamboTLSError, match=r"does not speak TLS.*http://") as raised:
        list_projects(hook)
    assert not raised.value.sent
    assert waits == []  # not retried: a TLS mismatch does not heal
