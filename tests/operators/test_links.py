"""The "Jambo Console" extra link."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_provider_jambo.get_provider_info import get_provider_info
from airflow_provider_jambo.links import JamboConsoleLink
from airflow_provider_jambo.operators.branch import JamboCreateBranchOperator
from airflow_provider_jambo.operators.compute import JamboCreateComputeOperator


@pytest.mark.parametrize(
    ("value", "link"),
    [
        (
            {"project_id": "old-violet-32930710", "branch_id": "br-noisy-breeze-a5e59rrb"},
            "https://console.neon.tech/app/projects/old-violet-32930710/branches/br-noisy-breeze-a5e59rrb",
        ),
        ({"project_id": "p-1", "branch_id": None}, ""),
        (None, ""),
        ("not a dict", ""),
    ],
)
def test_link_from_return_value(monkeypatch: pytest.MonkeyPatch, value: Any, link: str) -> None:
    from airflow.providers.common.compat.sdk import XCom

    asked: list[dict[str, Any]] = []

    def get_value(**kwargs: Any) -> Any:
        asked.append(kwargs)
        return value

    monkeypatch.setattr(XCom, "get_value", get_value)
    op = JamboCreateBranchOperator(task_id="t", branch_name="b")
    assert JamboConsoleLink().get_link(op, ti_key="ti-key") == link  # type: ignore[arg-type]
    assert asked == [{"ti_key": "ti-key", "key": "return_value"}]


def test_link_registered_and_attached() -> None:
    assert "airflow_provider_jambo.links.JamboConsoleLink" in get_provider_info()["extra-links"]
    assert JamboConsoleLink().name == "Jambo Console"
    for op in (
        JamboCreateBranchOperator(task_id="t", branch_name="b"),
        JamboCreateComputeOperator(task_id="c", branch="b"),
    ):
        assert [type(link) for link in op.operator_extra_links] == [JamboConsoleLink]
