"""Branch names built from the run id (manual runs of Airflow 3 have no logical date, no ts/ds)."""

from __future__ import annotations

import pytest
from jambo_support import make_context

from airflow_provider_jambo.exceptions import JamboConfigError
from airflow_provider_jambo.operators.branch_operators import JamboCreateBranchOperator
from airflow_provider_jambo.operators.run_names import BRANCH_NAME_MAX, default_branch_name, run_branch_name

SLUG = "[a-z0-9-]+"


@pytest.mark.parametrize(
    ("run_id", "prefix", "expected"),
    [
        # A clean run id is kept as it is (no hash needed).
        ("nightly-42", "preview-", "preview-nightly-42"),
        # Airflow's own run ids carry ':', '+', '.', '_' and upper case: slugged, plus a hash.
        (
            "manual__2026-11-27T08:35:10.795491+00:00",
            "preview-",
            "preview-manual-2026-11-27t08-35-10-795491-00-00-",
        ),
        ("scheduled__2026-11-27T00:00:00+00:00", "report-", "report-scheduled-2026-11-27t00-00-00-00-00-"),
        ("My Run!", "", "my-run-"),
    ],
)
def test_run_ids_become_valid_branch_names(run_id: str, prefix: str, expected: str) -> None:
    name = run_branch_name(run_id, prefix)
    assert name.startswith(expected)
    if name != expected:
        # lossy: an 8-hex-digit digest of the exact run id follows
        tail = name[len(expected) :]
        assert len(tail) == 8
        assert all(c in "0123456789abcdef" for c in tail)
    assert name == run_branch_name(run_id, prefix), "the same run (a retry) must get the same name"


def test_run_ids_differing_only_in_punctuation_get_different_names() -> None:
    assert run_branch_name("My Run") != run_branch_name("my-run") != run_branch_name("my_run")
    assert run_branch_name("my-run") == "my-run"


def test_long_run_ids_are_cut_to_the_service_limit_and_stay_unique() -> None:
    long_a = "manual__" + "a" * 300
    long_b = "manual__" + "a" * 299 + "b"
    a, b = run_branch_name(long_a, "preview-"), run_branch_name(long_b, "preview-")
    assert len(a) <= BRANCH_NAME_MAX
    assert len(b) <= BRANCH_NAME_MAX
    assert a != b
    assert a.startswith("preview-manual-aaa")


@pytest.mark.parametrize(
    ("run_id", "prefix", "match"),
    [
        ("", "p-", "run_id must be a non-empty string"),
        (None, "p-", "run_id must be a non-empty string"),
        ("Run 1", "x" * 250, "leaves no room for the run id"),
    ],
)
def test_bad_input_names_the_parameter(run_id: object, prefix: str, match: str) -> None:
    with pytest.raises(JamboConfigError, match=match):
        run_branch_name(run_id, prefix)  # type: ignore[arg-type]


def test_operator_default_name_is_dag_task_and_run() -> None:
    context = make_context(task_id="Create_Branch")
    context["ti"].dag_id = "my_dag"
    name = default_branch_name(context)  # type: ignore[arg-type]
    assert name.startswith("my-dag-create-branch-manual-2026-06-01t00-00-00-00-00-")
    mapped = make_context(task_id="create")
    mapped["ti"].map_index = 3
    assert default_branch_name(mapped).startswith("test-dag-create-3-manual-")  # type: ignore[arg-type]


def test_operator_without_a_name_builds_it_from_the_run_id(jambo_project: object) -> None:
    op = JamboCreateBranchOperator(task_id="create", compute_type=None)
    context = make_context(task_id="create")
    assert "logical_date" not in context
    assert "ts" not in context
    result = op.execute(context)  # type: ignore[arg-type]
    assert result is not None
    assert result["branch_name"] == default_branch_name(context)  # type: ignore[arg-type]
    assert result["created"] is True
