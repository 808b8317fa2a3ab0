"""What the operators return is what the Airflow line running them can store as XCom.

Airflow 3.0's execution API refuses an XCom whose value is None, and the operators push each key of
their result (``multiple_outputs``): there the None-valued keys are left out; elsewhere they stay.
The compat matrix runs this file on 3.0 too, and the example DAGs under ``airflow dags test`` there.
"""

from __future__ import annotations

import pytest

from airflow_provider_jambo.operators import base_operator
from airflow_provider_jambo.operators.base_operator import XCOM_REFUSES_NONE, xcom_value
from airflow_provider_jambo.operators.branch_operators import JamboCreateBranchOperator
from airflow_provider_jambo.operators.snapshot_operators import JamboCreateSnapshotOperator


def test_none_values_are_left_out_only_where_airflow_refuses_them(monkeypatch: pytest.MonkeyPatch) -> None:
    result = {"branch_id": "br-1", "expires_at": None, "created": False}
    monkeypatch.setattr(base_operator, "XCOM_REFUSES_NONE", False)
    assert xcom_value(result) == result
    monkeypatch.setattr(base_operator, "XCOM_REFUSES_NONE", True)
    assert xcom_value(result) == {"branch_id": "br-1", "created": False}
    assert xcom_value(None) is None
    assert xcom_value("text") == "text"


@pytest.mark.parametrize("operator", [JamboCreateBranchOperator, JamboCreateSnapshotOperator])
@pytest.mark.parametrize("method", ["execute", "execute_complete"])
def test_the_methods_airflow_pushes_the_result_of_are_wrapped_on_that_line(
    operator: type, method: str
) -> None:
    assert bool(getattr(getattr(operator, method), "_returns_xcom_value", False)) is XCOM_REFUSES_NONE
