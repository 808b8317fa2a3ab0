"""Shape of issue 5's example DAGs (parsed, not run): setup/teardown wiring, params, schedules."""

from __future__ import annotations

from typing import Any

from runner import EXAMPLE_DAGS, dag_bag


def load(name: str) -> Any:
    bag = dag_bag(EXAMPLE_DAGS / f"{name}.py")
    assert bag.import_errors == {}
    return bag.dags[name]


def test_preview_environment_tears_the_branch_down_whatever_happens() -> None:
    dag = load("example_jambo_preview_environment")
    tasks = dag.task_dict
    assert tasks["create_branch"].is_setup
    assert tasks["delete_branch"].is_teardown
    assert tasks["delete_branch"].upstream_task_ids == {"create_branch", "schema_diff"}
    # migrations -> transformations -> checks -> diff, in that order
    assert tasks["transform"].upstream_task_ids >= {"migrate"}
    assert tasks["check_data_quality"].upstream_task_ids >= {"transform"}
    assert tasks["schema_diff"].upstream_task_ids >= {"check_data_quality"}
    assert dag.params["inject_bad_data"] is False
    # The teardown deletes by the same exact name the setup creates.
    assert tasks["delete_branch"].branch == tasks["create_branch"].branch_name


def test_scheduled_report_branches_at_the_data_interval_end() -> None:
    dag = load("example_jambo_scheduled_report")
    tasks = dag.task_dict
    assert tasks["branch_at_interval_end"].parent_timestamp == "{{ report_end() }}"
    assert tasks["delete_branch"].is_teardown
    # Daily with a real data interval (yesterday 00:00 -> today 00:00), not a zero-length trigger time.
    assert type(dag.timetable).__name__ == "CronDataIntervalTimetable"
    # SDK timetables (Airflow 3.1+) call it `expression`; the core ones (2.x, 3.0) show it as `summary`.
    timetable = dag.timetable
    assert (timetable.expression if hasattr(timetable, "expression") else timetable.summary) == "0 0 * * *"


def test_janitor_defaults_are_narrow() -> None:
    dag = load("example_jambo_janitor")
    params = dag.params
    assert params["name_prefix"] == "preview-"
    assert params["annotations"] == {"dag_id": "example_jambo_preview_environment"}
    assert params["max_age_hours"] == 24
    # Unpausing (or triggering) the example lists what it would delete; deleting needs dry_run=false.
    assert params["dry_run"] is True
    assert dag.is_paused_upon_creation is True
    assert dag.render_template_as_native_obj
