"""The anonymized preview example run by ``airflow dags test`` against the emulator with real
PostgreSQL: names and emails are masked on the branch, main keeps them, the branch is deleted."""

from __future__ import annotations

from typing import Any

import pytest
from dags import test_preview_dags as preview
from dags.runner import EXAMPLE_DAGS, AirflowHome

pytestmark = [pytest.mark.dags, pytest.mark.postgres]

DAG_FILE = EXAMPLE_DAGS / "example_jambo_anonymized_preview.py"
# The preview tests' fixtures: one emulator (data plane on), a seeded project, the sql/ folder.
emulator, project, seeded, sql_files = preview.emulator, preview.project, preview.seeded, preview.sql_files


def _customers(project: preview.Project) -> list[tuple[Any, ...]]:
    import psycopg

    with psycopg.connect(project.main_uri, connect_timeout=10) as conn:
        return conn.execute("SELECT id, name, email FROM customers ORDER BY id").fetchall()


def test_anonymized_preview_masks_personal_data_and_the_pipeline_validates(
    airflow_home: AirflowHome, seeded: preview.Project
) -> None:
    project = seeded
    before = _customers(project)
    result = airflow_home.run_dag(DAG_FILE, env=project.env)
    assert result.state == "success", result.describe()
    assert set(result.task_states.values()) == {"success"}, result.describe()

    branch = result.xcoms[("create_anonymized_branch", "return_value")]
    assert branch["branch_name"].startswith("anon-preview-")
    assert branch["masked_columns"] == 2
    findings = result.xcoms[("check_anonymized_results", "return_value")]
    assert set(findings) >= {"no original email is left", "no original name is left"}
    assert not any(findings.values()), findings
    # Nothing personal in what the run printed or stored either.
    text = result.everything()
    for _, _name, email in before:
        assert email not in text
    # The branch is gone; main still holds the original data.
    assert branch["branch_name"] not in project.branch_names()
    assert _customers(project) == before
    assert project.main_query("SELECT to_regclass('public.customer_revenue')") is None
    preview.assert_no_secrets(result, project)


def test_the_checks_catch_a_leak_a_lost_customer_and_a_wrong_result() -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("anon_example", DAG_FILE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    original = [(1, "Ada", "ada@a.example"), (2, "Grace", "grace@g.example")]
    masked = [(1, "Vera", "grace@g.example"), (3, "Ada", "no-at-sign")]
    findings = module.anonymization_findings(original, masked, {1: 10.0}, {1: 10.0, 2: 5.0})
    assert findings == {
        "no original email is left": 1,
        "no original name is left": 1,
        "every customer is still there": 2,
        "masked emails are still emails": 1,
        "revenue matches production's orders": 1,
    }
