"""Create and reset fill their outlets' asset events; delete and compute tasks do not; never a secret."""

from __future__ import annotations

import importlib.util
import json
from datetime import timedelta
from importlib.metadata import version
from typing import Any

import pytest
import time_machine
from airflow.providers.common.compat.sdk import Asset, AssetAlias
from jambo_support import JamboProject, make_context
from operators.deferral import defer, resume

from airflow_provider_jambo.hooks.jambo import JamboHook
from airflow_provider_jambo.operators.branch_operators import (
    JamboCreateBranchOperator,
    JamboDeleteBranchOperator,
    JamboResetBranchOperator,
)

AIRFLOW_2 = version("apache-airflow").startswith("2.")
STAGING = Asset("staging")
RUN_KEYS = {"dag_id", "run_id", "task_id", "try_number"}


def outlet_events() -> Any:
    """``context["outlet_events"]`` as the task runner makes it (empty accessors per outlet)."""
    try:
        from airflow.sdk.execution_time.context import OutletEventAccessors
    except ImportError:  # Airflow 2
        from airflow.utils.context import OutletEventAccessors  # type: ignore[no-redef]
    return OutletEventAccessors()


def sync(**kwargs: Any) -> dict[str, Any]:
    return {"deferrable": False, "outlets": [STAGING], **kwargs}


def test_create_fills_its_outlet_with_the_branch_and_the_run(jambo_project: JamboProject) -> None:
    events = outlet_events()
    ctx = make_context("create_branch", outlet_events=events)
    jambo_project.emu.advance(120)
    with JamboHook() as hook:
        main_created = hook.branches.get(jambo_project.default_branch_id).created_at
    assert main_created is not None
    at = main_created + timedelta(seconds=60)
    # A point in time must not be in this machine's future either: this machine's clock follows.
    with time_machine.travel(at + timedelta(seconds=1), tick=True):
        op = JamboCreateBranchOperator(
            task_id="create_branch", branch_name="staging", parent_timestamp=at, ttl=3600, **sync()
        )
        result = op.execute(ctx)
    extra = events[STAGING].extra
    assert extra["event"] == "created"
    assert extra["branch_id"] == result["branch_id"]
    assert extra["branch_name"] == "staging"
    assert extra["parent_id"] == jambo_project.default_branch_id
    assert extra["parent_timestamp"] == at.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert extra["expires_at"] == result["expires_at"]
    assert extra["endpoint_id"] == result["endpoint_id"]
    assert set(extra) >= RUN_KEYS
    assert extra["task_id"] == "create_branch"
    with JamboHook() as hook:
        uri = hook.branches.connection_uri(
            branch_id=result["branch_id"], database="neondb", role="neondb_owner"
        )
    password = uri.split(":")[2].split("@")[0]
    assert password not in json.dumps(extra)
    assert jambo_project.emu.api_key not in json.dumps(extra)


def test_reset_fills_its_outlet_after_a_deferral_too(jambo_project: JamboProject) -> None:
    with JamboHook() as hook:
        from airflow_provider_jambo.create_branch_request import CreateBranchRequest

        branch_id = hook.branches.create(CreateBranchRequest(name="staging")).branch.id
    jambo_project.emu.set_operation_durations(default=0.3)
    events = outlet_events()
    ctx = make_context("reset", outlet_events=events)
    op = JamboResetBranchOperator(
        task_id="reset",
        branch="staging",
        deferrable=True,
        defer_grace_seconds=0,
        poll_interval=0.05,
        outlets=[STAGING],
    )
    deferred = defer(op, ctx)
    assert events[STAGING].extra == {}  # nothing before the reset is done
    jambo_project.emu.advance(1)
    resume(op, ctx, deferred)
    extra = events[STAGING].extra
    assert extra["event"] == "reset"
    assert extra["branch_id"] == branch_id
    assert extra["source_branch_id"] == jambo_project.default_branch_id
    assert set(extra) >= RUN_KEYS


def test_delete_emits_nothing_of_its_own_and_aliases_are_left_alone_unasked(
    jambo_project: JamboProject,
) -> None:
    alias = AssetAlias("made-branches")
    events = outlet_events()
    create = JamboCreateBranchOperator(task_id="c", branch_name="staging", **sync(outlets=[alias]))
    create.execute(make_context("c", outlet_events=events))
    JamboDeleteBranchOperator(task_id="d", branch="staging", **sync()).execute(
        make_context("d", outlet_events=events)
    )
    accessor = events[alias]
    assert getattr(accessor, "asset_alias_events", getattr(accessor, "dataset_alias_events", None)) == []
    assert events[STAGING].extra == {}


@pytest.mark.skipif(AIRFLOW_2, reason="Airflow 3's alias events (Airflow 2 names them after datasets)")
def test_an_opted_in_create_adds_its_branch_to_the_aliases(jambo_project: JamboProject) -> None:
    alias = AssetAlias("made-branches")
    events = outlet_events()
    create = JamboCreateBranchOperator(
        task_id="c", branch_name="preview/7", add_to_asset_aliases=True, **sync(outlets=[alias, STAGING])
    )
    result = create.execute(make_context("c", outlet_events=events))
    [added] = events[alias].asset_alias_events
    assert added.dest_asset_key.uri == f"jambo://{jambo_project.project_id}/preview/7"
    assert added.extra["branch_id"] == result["branch_id"]
    assert events[STAGING].extra["branch_id"] == result["branch_id"]


# --- OpenLineage ---------------------------------------------------------------------------------


@pytest.fixture
def openlineage_on(monkeypatch: pytest.MonkeyPatch) -> None:
    """OpenLineage configured (a transport URL), as a user who wants lineage has it (the provider
    reads its configuration afresh under pytest)."""
    monkeypatch.setenv("OPENLINEAGE_URL", "http://127.0.0.1:9")


needs_openlineage = pytest.mark.skipif(
    importlib.util.find_spec("airflow.providers.openlineage") is None,
    reason="the OpenLineage provider is not installed (optional)",
)


def lineage(op: Any) -> tuple[list[tuple[str, str]], list[tuple[str, str, Any]]]:
    facets = op.get_openlineage_facets_on_complete(None)
    inputs = [(d.namespace, d.name) for d in facets.inputs]
    outputs = [(d.namespace, d.name, d.facets["lifecycleStateChange"]) for d in facets.outputs]
    return inputs, outputs


@needs_openlineage
def test_lineage_create_reset_delete(jambo_project: JamboProject, openlineage_on: None) -> None:
    ns = f"jambo://{jambo_project.project_id}"
    create = JamboCreateBranchOperator(task_id="c", branch_name="staging", **sync())
    create.execute(make_context("c"))
    inputs, [(namespace, name, change)] = lineage(create)
    assert inputs == [(ns, "main")]  # the default parent, named: the listener could not look it up
    assert (namespace, name, change.lifecycleStateChange.value) == (ns, "staging", "CREATE")

    reset = JamboResetBranchOperator(
        task_id="r", branch="staging", deferrable=True, defer_grace_seconds=0, outlets=[]
    )
    jambo_project.emu.set_operation_durations(default=0.3)
    ctx = make_context("r")
    deferred = defer(reset, ctx)
    resumed = JamboResetBranchOperator(task_id="r", branch="staging", deferrable=True, defer_grace_seconds=0)
    jambo_project.emu.advance(1)
    resume(resumed, ctx, deferred)  # a new instance, as after a real deferral
    inputs, [(_, name, change)] = lineage(resumed)
    assert inputs == [(ns, "main")]
    assert (name, change.lifecycleStateChange.value) == ("staging", "OVERWRITE")

    jambo_project.emu.set_operation_durations(default=0.0)
    delete = JamboDeleteBranchOperator(task_id="d", branch="staging", **sync())
    delete.execute(make_context("d"))
    inputs, [(_, name, change)] = lineage(delete)
    assert inputs == []
    assert (name, change.lifecycleStateChange.value) == ("staging", "DROP")
    assert (change.previousIdentifier.namespace, change.previousIdentifier.name) == (ns, "staging")


@needs_openlineage
def test_without_openlineage_the_default_parent_is_not_looked_up(jambo_project: JamboProject) -> None:
    create = JamboCreateBranchOperator(task_id="c", branch_name="staging", **sync())
    jambo_project.emu.clear_requests()
    create.execute(make_context("c"))
    by_id = "/projects/{project_id}/branches/{branch_id}"
    assert [r for r in jambo_project.emu.requests() if r["method"] == "GET" and r["route"] == by_id] == []
    inputs, [(_, name, _)] = lineage(create)
    assert (inputs, name) == ([], "staging")


def test_a_failed_or_idle_task_reports_no_change(jambo_project: JamboProject) -> None:
    gone = JamboDeleteBranchOperator(task_id="d", branch="never-made", **sync())
    gone.execute(make_context("d"))  # nothing to delete: success, no change
    assert gone.get_openlineage_facets_on_complete(None) is None
    create = JamboCreateBranchOperator(task_id="c", branch_name="staging", **sync())
    assert create.get_openlineage_facets_on_failure(None) is None
