"""The safety expiry of run-named branches: a create whose branch is named for its run gives the
branch an expiry long enough for the run, so a worker killed after the POST leaks it for a bounded
time only; explicit choices win, and the service's rules on expiring branches are explained."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from hooks.hook_support import logged_text
from jambo_support import JamboProject, make_context

from airflow_provider_jambo.create_branch_request import CreateBranchRequest
from airflow_provider_jambo.exceptions import JamboConfigError, JamboRefusedError
from airflow_provider_jambo.operators.branch_operators import JamboCreateBranchOperator
from airflow_provider_jambo.operators.run_names import (
    RUN_BRANCH_GRACE,
    RUN_BRANCH_TTL,
    SAFETY_TTL_MAX,
    is_run_branch_name,
    run_branch_name,
)

RUN_ID = "manual__2026-06-01T00:00:00+00:00"  # FakeTI's run id
SETTING = "AIRFLOW__JAMBO__RUN_BRANCH_TTL_SECONDS"
TOLERANCE = timedelta(minutes=2)


def create_op(**kwargs: Any) -> JamboCreateBranchOperator:
    kwargs.setdefault("deferrable", False)
    kwargs.setdefault("task_id", "create_branch")
    return JamboCreateBranchOperator(**kwargs)


def run(op: JamboCreateBranchOperator, *, try_number: int = 1, dag: Any = None) -> dict[str, Any]:
    extra = {"dag": dag} if dag is not None else {}
    result = op.execute(make_context(op.task_id, try_number=try_number, **extra))
    assert result is not None
    return dict(result)


def lives(project: JamboProject, result: dict[str, Any]) -> timedelta | None:
    """How long the branch has left, as the service holds it (and as the task's XCom says)."""
    with project.hook() as hook:
        branch = hook.branches.get(result["branch_id"])
    if branch.expires_at is None:
        assert result.get("expires_at") is None  # left out on Airflow 3.0 (test_xcom_values.py)
        return None
    assert result["expires_at"] == branch.expires_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return branch.expires_at - datetime.now(UTC)


def about(expected: timedelta) -> tuple[timedelta, timedelta]:
    return expected - TOLERANCE, expected + TOLERANCE


# --- which expiry ----------------------------------------------------------------------------------


def test_default_name_expires_after_the_configured_default(jambo_project: JamboProject) -> None:
    result = run(create_op())
    assert result["branch_name"].startswith("test-dag-create-branch-manual-")
    low, high = about(RUN_BRANCH_TTL)
    assert low < lives(jambo_project, result) <= high  # type: ignore[operator]


def test_the_default_comes_from_the_jambo_config_section(
    jambo_project: JamboProject, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SETTING, "7200")
    low, high = about(timedelta(hours=2))
    assert low < lives(jambo_project, run(create_op())) <= high  # type: ignore[operator]


def test_dagrun_timeout_bounds_the_run_plus_grace(jambo_project: JamboProject) -> None:
    # Shorter than the default: the run cannot outlive its timeout, so neither need the branch.
    dag = SimpleNamespace(dagrun_timeout=timedelta(hours=2))
    low, high = about(timedelta(hours=2) + RUN_BRANCH_GRACE)
    assert low < lives(jambo_project, run(create_op(), dag=dag)) <= high  # type: ignore[operator]


@pytest.mark.parametrize(
    ("execution_timeout", "expected"),
    [
        # Longer than the default: the run lasts at least as long as its create may.
        (timedelta(days=3), timedelta(days=3) + RUN_BRANCH_GRACE),
        # Shorter: it bounds only the create, the run goes on after it; the default stays.
        (timedelta(minutes=10), RUN_BRANCH_TTL),
        # Beyond the service's limit: capped at 30 days (less a margin for the clocks).
        (timedelta(days=40), SAFETY_TTL_MAX),
    ],
)
def test_execution_timeout_is_a_lower_bound(
    jambo_project: JamboProject, execution_timeout: timedelta, expected: timedelta
) -> None:
    low, high = about(expected)
    result = run(create_op(execution_timeout=execution_timeout))
    assert low < lives(jambo_project, result) <= high  # type: ignore[operator]


def test_explicit_ttl_wins(jambo_project: JamboProject) -> None:
    dag = SimpleNamespace(dagrun_timeout=timedelta(hours=5))
    low, high = about(timedelta(minutes=30))
    result = run(create_op(ttl=timedelta(minutes=30)), dag=dag)
    assert low < lives(jambo_project, result) <= high  # type: ignore[operator]


def test_explicit_no_expiry_wins(jambo_project: JamboProject) -> None:
    assert lives(jambo_project, run(create_op(safety_expiry=False))) is None


def test_fixed_name_gets_none_unless_asked(jambo_project: JamboProject) -> None:
    assert lives(jambo_project, run(create_op(branch_name="staging-copy"))) is None
    asked = run(create_op(branch_name="staging-asked", safety_expiry=True))
    low, high = about(RUN_BRANCH_TTL)
    assert low < lives(jambo_project, asked) <= high  # type: ignore[operator]


def test_name_built_with_run_branch_name_is_run_named(jambo_project: JamboProject) -> None:
    # As rendered from "{{ run_branch_name(run_id, 'preview-') }}".
    result = run(create_op(branch_name=run_branch_name(RUN_ID, "preview-")))
    low, high = about(RUN_BRANCH_TTL)
    assert low < lives(jambo_project, result) <= high  # type: ignore[operator]


@pytest.mark.parametrize(
    ("name", "run_named"),
    [
        (run_branch_name(RUN_ID, "preview-"), True),  # lossy slug: ends with the run id's hash
        (run_branch_name(RUN_ID, "x" * 50), True),  # truncated: the hash survives
        (run_branch_name("nightly-42", "ci-"), False),  # another run's name
        ("ci-nightly-42", False),
        ("staging", False),
    ],
)
def test_which_names_are_named_for_the_run(name: str, run_named: bool) -> None:
    assert is_run_branch_name(name, RUN_ID) is run_named
    assert is_run_branch_name(run_branch_name("nightly-42", "ci-"), "nightly-42")
    # A short custom run id ends fixed names by chance: it is not taken for the run's.
    assert not is_run_branch_name("release-1", "1")
    assert is_run_branch_name(run_branch_name("My Run!", "ci-"), "My Run!")  # its hash still counts


# --- retries ---------------------------------------------------------------------------------------


def test_retry_that_adopts_its_branch_renews_the_expiry(
    jambo_project: JamboProject, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SETTING, "7200")
    first = run(create_op())
    assert lives(jambo_project, first) < timedelta(hours=2, minutes=1)  # type: ignore[operator]
    monkeypatch.setenv(SETTING, str(5 * 3600))
    second = run(create_op(), try_number=2)
    assert second["created"] is False
    assert second["branch_id"] == first["branch_id"]
    low, high = about(timedelta(hours=5))
    assert low < lives(jambo_project, second) <= high  # type: ignore[operator]


def test_adopting_a_branch_this_task_did_not_make_leaves_its_expiry(jambo_project: JamboProject) -> None:
    with jambo_project.hook() as hook:
        made = hook.branches.create(CreateBranchRequest(name="by-hand"))
        hook.operations.wait(made.operations, deadline=datetime.now(UTC).timestamp() + 60)
    result = run(create_op(branch_name="by-hand", safety_expiry=True), try_number=2)
    assert result["created"] is False
    assert lives(jambo_project, result) is None


def test_a_retry_whose_branch_has_children_keeps_it_and_says_why(
    jambo_project: JamboProject, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    # Made without an expiry, then given a child: the service allows no expiry on it any more.
    first = run(create_op(safety_expiry=False))
    with jambo_project.hook() as hook:
        child = hook.branches.create(CreateBranchRequest(name="child", parent_id=first["branch_id"]))
        hook.operations.wait(child.operations, deadline=datetime.now(UTC).timestamp() + 60)
    with caplog.at_level(logging.WARNING):
        second = run(create_op(), try_number=2)
    assert second["branch_id"] == first["branch_id"]
    assert lives(jambo_project, second) is None
    logged = logged_text(caplog, capsys)
    assert "the service refused a new one" in logged
    assert "children" in logged


# --- the service's rules ---------------------------------------------------------------------------


def test_protected_run_named_branch_gets_none_and_the_log_says_why(
    jambo_project: JamboProject, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    with caplog.at_level(logging.INFO):
        result = run(create_op(protected=True))
    assert lives(jambo_project, result) is None
    assert "protected: it gets no safety expiry" in logged_text(caplog, capsys)


def test_branching_from_an_expiring_branch_is_refused_before_the_create(jambo_project: JamboProject) -> None:
    parent = run(create_op())
    jambo_project.emu.clear_requests()
    child = create_op(branch_name="child-of-run", parent=parent["branch_name"], task_id="child")
    with pytest.raises(JamboRefusedError, match="safety_expiry=False"):
        child.execute(make_context("child"))
    assert not [r for r in jambo_project.emu.requests() if r["method"] == "POST"]


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"ttl": timedelta(days=31)}, "ttl must be at most 30 days"),
        ({"ttl": -5}, "ttl must be a positive duration"),
        ({"safety_expiry": "yes"}, "safety_expiry must be None"),
        ({"safety_expiry": True, "protected": True}, "safety_expiry=True cannot be set on a protected"),
    ],
)
def test_bad_values_fail_when_the_dag_is_parsed(kwargs: dict[str, Any], fragment: str) -> None:
    with pytest.raises(JamboConfigError, match=fragment):
        create_op(**kwargs)


@pytest.mark.parametrize("value", ["-60", str(31 * 86400), "soon"])
def test_a_bad_configured_default_fails_when_the_dag_is_parsed(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv(SETTING, value)
    with pytest.raises(JamboConfigError, match="run_branch_ttl_seconds"):
        create_op()
    create_op(safety_expiry=False)  # a task that wants no expiry does not read it
    create_op(branch_name="staging")  # nor does a fixed name, which gets none
    with pytest.raises(JamboConfigError, match="run_branch_ttl_seconds"):
        create_op(branch_name="{{ run_branch_name(run_id) }}")  # rendered at run time: may be run-named


# --- cost ------------------------------------------------------------------------------------------


def _requests(project: JamboProject) -> list[str]:
    return [f"{r['method']} {r['route']}" for r in project.emu.requests()]


def test_the_expiry_costs_no_request_on_a_first_try_and_two_on_an_adopting_retry(
    jambo_project: JamboProject,
) -> None:
    # Baseline in the same run: the same creates without an expiry.
    counts: dict[tuple[bool, int], list[str]] = {}
    for safety in (False, True):
        for try_number in (1, 2):
            jambo_project.emu.clear_requests()
            run(create_op(task_id=f"create_{safety}", safety_expiry=safety), try_number=try_number)
            counts[safety, try_number] = _requests(jambo_project)
    assert counts[True, 1] == counts[False, 1]  # the expiry rides in the create's body
    extra = list(counts[True, 2])
    for call in counts[False, 2]:
        extra.remove(call)
    assert sorted(extra) == [
        "GET /projects/{project_id}/branches/{branch_id}",
        "PATCH /projects/{project_id}/branches/{branch_id}",
    ]
