"""On Airflow 2 (no asset watchers) the branch-events module imports, and the trigger says what it needs."""

from __future__ import annotations

from importlib.metadata import version

import pytest

from airflow_provider_jambo.exceptions import JamboConfigError

AIRFLOW_2 = version("apache-airflow").startswith("2.")


@pytest.mark.skipif(not AIRFLOW_2, reason="Airflow 2 only (the compat matrix runs it)")
def test_the_trigger_needs_airflow_3() -> None:
    from airflow_provider_jambo.triggers.events import JamboBranchEventTrigger

    with pytest.raises(JamboConfigError, match=r"needs Airflow 3\.0 or later .* this is Airflow 2\."):
        JamboBranchEventTrigger(name_prefix="preview/")


def test_the_module_imports_on_every_line() -> None:
    import airflow_provider_jambo.triggers.events as events

    assert events.JamboBranchEventTrigger.__name__ == "JamboBranchEventTrigger"
