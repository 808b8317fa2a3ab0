"""Fixtures for running example DAGs (shared by every example-DAG test, see runner.py)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from runner import AirflowHome, DagRunResult


@pytest.fixture(scope="session")
def airflow_home() -> AirflowHome:
    """One migrated Airflow home for the session's ``airflow dags test`` runs."""
    return AirflowHome.create()


@pytest.fixture
def run_example_dag(airflow_home: AirflowHome) -> Callable[..., DagRunResult]:
    """``run_example_dag(dag_file, dag_id=None, conf=None, env=None, timeout=300) -> DagRunResult``."""
    return airflow_home.run_dag
