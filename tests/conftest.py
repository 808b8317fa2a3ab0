"""Test-wide setup: an isolated AIRFLOW_HOME before anything imports Airflow.

The `jambo_emulator` fixture itself comes from the package's pytest plugin
(`jambo_emulator.pytest_plugin`), exactly as users' own DAG tests get it.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator

import pytest

# Must run before the first `import airflow` anywhere in the test session.
_AIRFLOW_HOME = tempfile.mkdtemp(prefix="jambo-tests-airflow-home-")
os.environ["AIRFLOW_HOME"] = _AIRFLOW_HOME
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__CORE__UNIT_TEST_MODE", "True")
# In-process tests drive triggers themselves: there is no worker report for an event to overtake
# (the real stack in tests/deployment starts its processes without this, so it keeps the default).
os.environ.setdefault("AIRFLOW__JAMBO__DEFERRAL_SETTLE_SECONDS", "0")


@pytest.fixture(autouse=True)
def _fresh_request_budgets() -> Iterator[None]:
    """Each test starts with full request budgets, as the emulator's reset() refills its limits, and
    with nothing learned about operation durations (a reset emulator reuses project ids)."""
    from airflow_provider_jambo.hooks.budget import reset_budgets
    from airflow_provider_jambo.hooks.operation_durations import forget_durations

    reset_budgets()
    forget_durations()
    yield
    reset_budgets()
    forget_durations()
