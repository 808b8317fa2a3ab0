"""Every example DAG renders for a manual run without a logical date (Airflow 3's default).

Airflow 3's CLI, REST API and UI trigger runs with ``logical_date=None``; the task context then has
no ``ts``/``ds``/``logical_date``/``data_interval_*`` keys at all, and the DAG's StrictUndefined turns
any template using them into ``UndefinedError``. Each task's template fields (SQL files included)
are rendered here with exactly such a context. What a real manual trigger does end to end is
``tests/deployment``'s job.
"""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import airflow
import jinja2
import pytest
from airflow.providers.common.compat.sdk import XComArg
from runner import EXAMPLE_DAGS, dag_bag

from airflow_provider_jambo.operators.run_names import run_branch_name

# Manual runs without a logical date are Airflow 3's (on 2.11 every run has one), and the stand-in
# task instance here renders through Airflow 3's template API.
pytestmark = pytest.mark.skipif(
    int(airflow.__version__.split(".")[0]) < 3, reason="manual runs without a logical date are Airflow 3's"
)

RUN_ID = "manual__2026-12-01T21:30:00.123456+00:00"
RUN_AFTER = datetime(2026, 12, 1, 21, 30, tzinfo=UTC)
EXAMPLES = sorted(p.stem for p in EXAMPLE_DAGS.glob("example_*.py"))
LOGICAL_DATE_KEYS = {"logical_date", "ds", "ds_nodash", "ts", "ts_nodash", "data_interval_end"}


def manual_run_context(dag: Any, task: Any) -> dict[str, Any]:
    """What the task runner offers a task of a run without a logical date (the keys templates use)."""
    ti = SimpleNamespace(
        dag_id=dag.dag_id,
        task_id=task.task_id,
        run_id=RUN_ID,
        try_number=1,
        map_index=-1,
        # An upstream result inside a field (e.g. a @task's arguments): a stand-in, no dates in it.
        xcom_pull=lambda *args, **kwargs: {"branch_id": "br-upstream-1"},
    )
    dag_run = SimpleNamespace(
        dag_id=dag.dag_id, run_id=RUN_ID, logical_date=None, run_after=RUN_AFTER, conf={}, run_type="manual"
    )
    return {
        "dag": dag,
        "task": task,
        "ti": ti,
        "task_instance": ti,
        "run_id": RUN_ID,
        "dag_run": dag_run,
        "params": dag.params.validate() if hasattr(dag.params, "validate") else dict(dag.params),
        "conf": {},
        "inlets": [],
        "outlets": [],
    }


def render_all(dag: Any) -> dict[tuple[str, str], Any]:
    env = dag.get_template_env()
    rendered: dict[tuple[str, str], Any] = {}
    for task in dag.tasks:
        context = manual_run_context(dag, task)
        assert not LOGICAL_DATE_KEYS & set(context)
        for field in task.template_fields:
            value = getattr(task, field, None)
            if value is None or isinstance(value, XComArg):
                continue  # an upstream task's result: nothing of the run's dates in it
            rendered[(task.task_id, field)] = task.render_template(value, context, env)
    return rendered


@pytest.mark.parametrize("name", EXAMPLES)
def test_example_renders_without_a_logical_date(name: str) -> None:
    bag = dag_bag(EXAMPLE_DAGS / f"{name}.py")
    assert bag.import_errors == {}
    (dag,) = bag.dags.values()
    rendered = render_all(dag)
    for (task_id, field), value in rendered.items():
        if field == "branch_name":
            # Names come from the run id, and a retry (same run id) gets the same one.
            assert isinstance(value, str), (task_id, value)
            assert value.endswith(run_branch_name(RUN_ID)), (task_id, value)


def test_names_and_point_in_time_of_a_manual_run() -> None:
    by_dag = {
        name: render_all(next(iter(dag_bag(EXAMPLE_DAGS / f"{name}.py").dags.values())))
        for name in ("example_jambo_ephemeral_branch", "example_jambo_preview_environment")
    }
    assert by_dag["example_jambo_ephemeral_branch"][("create_branch", "branch_name")] == run_branch_name(
        RUN_ID, "ephemeral-"
    )
    preview = by_dag["example_jambo_preview_environment"]
    assert preview[("create_branch", "branch_name")] == run_branch_name(RUN_ID, "preview-")
    # The teardown deletes by the same name the setup creates.
    report = render_all(next(iter(dag_bag(EXAMPLE_DAGS / "example_jambo_scheduled_report.py").dags.values())))
    assert report[("branch_at_interval_end", "branch_name")] == report[("delete_branch", "branch")]
    # No data interval: the report branches main as it was when the run was triggered.
    assert report[("branch_at_interval_end", "parent_timestamp")] == RUN_AFTER.isoformat()


def test_the_context_really_lacks_the_logical_date() -> None:
    """The check can fail: the old ``ts_nodash`` name is undefined in this context."""
    dag = next(iter(dag_bag(EXAMPLE_DAGS / "example_jambo_ephemeral_branch.py").dags.values()))
    task = dag.task_dict["create_branch"]
    with pytest.raises(jinja2.UndefinedError, match="ts_nodash"):
        task.render_template(
            "ephemeral-{{ ts_nodash | lower }}", manual_run_context(dag, task), dag.get_template_env()
        )
