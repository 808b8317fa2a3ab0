"""The "Jambo Console" extra link."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import pytest

from airflow_provider_jambo.get_provider_info import get_provider_info
from airflow_provider_jambo.links import JamboConsoleLink
from airflow_provider_jambo.operators.branch_operators import JamboCreateBranchOperator
from airflow_provider_jambo.operators.compute_operators import JamboCreateComputeOperator

REAL = "https://console.neon.tech/api/v2"
EMULATOR = "http://127.0.0.1:8123/api/v2"
BRANCH_PAGE = "https://console.neon.tech/app/projects/old-violet-32930710/branches/br-noisy-breeze-a5e59rrb"
IDS = {"project_id": "old-violet-32930710", "branch_id": "br-noisy-breeze-a5e59rrb"}


@pytest.fixture
def xcom_reads(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    from airflow.providers.common.compat.sdk import XCom

    asked: list[dict[str, Any]] = []

    def get_value(**kwargs: Any) -> Any:
        asked.append(kwargs)
        return IDS

    monkeypatch.setattr(XCom, "get_value", get_value)
    return asked


def connection(monkeypatch: pytest.MonkeyPatch, host: str) -> None:
    conn = {"conn_type": "jambo", "host": host, "password": "jambo_" + "k" * 60}
    monkeypatch.setenv("AIRFLOW_CONN_JAMBO_DEFAULT", json.dumps(conn))


@pytest.mark.parametrize(
    ("target", "link"),
    [
        ((IDS["project_id"], IDS["branch_id"], REAL), BRANCH_PAGE),
        # The emulator's branches are not in the real console: no link rather than a wrong one.
        ((IDS["project_id"], IDS["branch_id"], EMULATOR), ""),
        ((IDS["project_id"], IDS["branch_id"], None), ""),
        # The task failed before it returned anything: no link, and no XCom lookup either.
        (None, ""),
    ],
)
def test_link_of_the_operator_that_ran(xcom_reads: list[dict[str, Any]], target: Any, link: str) -> None:
    """Airflow 3 builds links at the end of the task, on the operator that ran."""
    op = JamboCreateBranchOperator(task_id="t", branch_name="b")
    op.console_target = target
    assert JamboConsoleLink().get_link(op, ti_key="ti-key") == link  # type: ignore[arg-type]
    assert xcom_reads == []


def test_operator_remembers_what_it_returned(monkeypatch: pytest.MonkeyPatch) -> None:
    connection(monkeypatch, "")
    op = JamboCreateBranchOperator(task_id="t", branch_name="b")
    op.remember_result({**IDS, "created": True})
    assert JamboConsoleLink().get_link(op, ti_key="ti-key") == BRANCH_PAGE  # type: ignore[arg-type]
    connection(monkeypatch, EMULATOR)
    op = JamboCreateBranchOperator(task_id="t", branch_name="b")
    op.remember_result({**IDS, "created": True})
    assert JamboConsoleLink().get_link(op, ti_key="ti-key") == ""  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("host", "link"), [("", BRANCH_PAGE), ("console.neon.tech", BRANCH_PAGE), (EMULATOR, "")]
)
def test_link_from_the_return_value_for_a_deserialized_operator(
    xcom_reads: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch, host: str, link: str
) -> None:
    """Airflow 2's webserver asks with a deserialized operator: the ids come from XCom."""
    connection(monkeypatch, host)
    serialized = SimpleNamespace(task_id="t", jambo_conn_id="jambo_default")
    assert JamboConsoleLink().get_link(serialized, ti_key="ti-key") == link  # type: ignore[arg-type]
    assert xcom_reads == [{"ti_key": "ti-key", "key": "return_value"}]


@pytest.mark.parametrize("value", [{"project_id": "p-1", "branch_id": None}, None, "not a dict"])
def test_no_link_without_ids(monkeypatch: pytest.MonkeyPatch, value: Any) -> None:
    from airflow.providers.common.compat.sdk import XCom

    monkeypatch.setattr(XCom, "get_value", lambda **kwargs: value)
    serialized = SimpleNamespace(task_id="t", jambo_conn_id="jambo_default")
    assert JamboConsoleLink().get_link(serialized, ti_key="ti-key") == ""  # type: ignore[arg-type]


def test_link_registered_and_attached() -> None:
    assert "airflow_provider_jambo.links.JamboConsoleLink" in get_provider_info()["extra-links"]
    assert JamboConsoleLink().name == "Jambo Console"
    for op in (
        JamboCreateBranchOperator(task_id="t", branch_name="b"),
        JamboCreateComputeOperator(task_id="c", branch="b"),
    ):
        assert [type(link) for link in op.operator_extra_links] == [JamboConsoleLink]
