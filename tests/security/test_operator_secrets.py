"""Operators, the sensor and the trigger keep secrets out of everything Airflow stores or shows:
return values and XComs, rendered template fields, serialized trigger kwargs and events, the
resume kwargs, logs and output (at DEBUG), and the text of the errors they raise."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from airflow.providers.common.compat.module_loading import import_string
from airflow.providers.common.compat.sdk import TaskDeferred
from jambo_support import make_context
from security_support import LeakWatch, SecProject, connection_json

from airflow_provider_jambo.exceptions import JamboRefusedError
from airflow_provider_jambo.operators.branch_operators import (
    JamboCreateBranchOperator,
    JamboDeleteBranchOperator,
    JamboResetBranchOperator,
)
from airflow_provider_jambo.operators.compute_operators import (
    JamboCreateComputeOperator,
    JamboDeleteComputeOperator,
    JamboStartComputeOperator,
    JamboSuspendComputeOperator,
)
from airflow_provider_jambo.operators.janitor import JamboDeleteStaleBranchesOperator
from airflow_provider_jambo.sensors.operation_sensor import JamboOperationSensor
from airflow_provider_jambo.triggers.operation_trigger import JamboOperationTrigger


def rendered(operator: Any, context: dict[str, Any]) -> dict[str, Any]:
    """Render the operator's template fields as a task run would, and return their values."""
    operator.render_template_fields(context)
    return {name: getattr(operator, name) for name in operator.template_fields}


def run(watch: LeakWatch, operator: Any, params: dict[str, Any] | None = None) -> Any:
    """Render and execute ``operator``; everything Airflow would keep goes to the watch."""
    context = make_context(operator.task_id, params=params or {})
    watch.see(f"{operator.task_id} rendered fields", rendered(operator, context))
    result = operator.execute(context)
    watch.see(f"{operator.task_id} result and XComs", result, context["ti"].pushed)
    return result


async def only_event(trigger: Any) -> dict[str, Any]:
    events = [event async for event in trigger.run()]
    assert len(events) == 1
    payload: dict[str, Any] = events[0].payload
    return payload


def test_operators_hand_on_coordinates_never_secrets(sec_project: SecProject, leak_watch: LeakWatch) -> None:
    with sec_project.hook() as hook:
        leak_watch.remember(hook.roles.reveal_password(sec_project.default_branch_id, "neondb_owner"))

    created = run(
        leak_watch,
        JamboCreateBranchOperator(
            task_id="create_branch",
            branch_name="sec-{{ params.suffix }}",
            annotations={"purpose": "{{ params.suffix }}"},
            ttl=3600,
        ),
        params={"suffix": "ops"},
    )
    assert created["branch_name"] == "sec-ops"
    assert created["role"] == "neondb_owner"
    assert not {"password", "uri", "connection_uri", "connection_uris"} & set(created)
    with sec_project.hook() as hook:
        # The new branch's own password (revealed here only to know what must not leak).
        leak_watch.remember(hook.roles.reveal_password(created["branch_id"], "neondb_owner"))

    compute = run(
        leak_watch,
        JamboCreateComputeOperator(task_id="create_compute", branch=created, compute_type="read_only"),
    )
    run(leak_watch, JamboSuspendComputeOperator(task_id="suspend", endpoint_id=compute))
    run(leak_watch, JamboStartComputeOperator(task_id="start", endpoint_id=compute))
    run(leak_watch, JamboDeleteComputeOperator(task_id="delete_compute", endpoint_id=compute))
    run(leak_watch, JamboResetBranchOperator(task_id="reset_branch", branch=created))

    with sec_project.hook() as hook:
        ops = [op.id for op in hook.operations.list()][:3]
    sensor = JamboOperationSensor(task_id="sensor", operation_ids=ops)
    context = make_context("sensor")
    leak_watch.see("sensor rendered fields", rendered(sensor, context))
    leak_watch.see("sensor poke", sensor.poke(context))

    janitor = JamboDeleteStaleBranchesOperator(
        task_id="janitor", name_prefix="sec-", older_than=0, dry_run=True
    )
    assert run(leak_watch, janitor)["dry_run"] is True
    deleted = run(leak_watch, JamboDeleteBranchOperator(task_id="delete_branch", branch=created))
    assert deleted["deleted"] is True

    with pytest.raises(JamboRefusedError) as refused:
        run(leak_watch, JamboDeleteBranchOperator(task_id="delete_main", branch="main"))
    leak_watch.see("refusal", refused.value)

    leak_watch.assert_clean(
        expect=("Created branch 'sec-ops'", "HTTP Request: DELETE", "send_request_headers.started"),
        min_passwords=1,
    )


def test_deferral_carries_only_a_connection_id(
    sec_project: SecProject, leak_watch: LeakWatch, monkeypatch: pytest.MonkeyPatch
) -> None:
    context = make_context("create_branch")
    operator = JamboCreateBranchOperator(
        task_id="create_branch", branch_name="sec-deferred", deferrable=True, defer_grace_seconds=0
    )
    with pytest.raises(TaskDeferred) as deferred:
        operator.execute(context)
    classpath, kwargs = deferred.value.trigger.serialize()
    assert set(kwargs) == {
        "jambo_conn_id",
        "project_id",
        "operation_ids",
        "operations",
        "deadline",
        "poll_interval",
        "retry_policy",
        "not_before",
        "delete_on_kill",  # the created branch's id (issue 22: on_kill)
        "durations",  # the learned spans of each action: numbers only (issue 23)
    }
    # The operations travel as the API's dicts (ids, actions, statuses): no secret among them.
    assert {op["id"] for op in kwargs["operations"]} == set(kwargs["operation_ids"])
    leak_watch.see("trigger kwargs", classpath, kwargs, deferred.value.kwargs, context["ti"].pushed)

    # As the triggerer does: rebuild from the serialized kwargs, run, resume the operator.
    event = asyncio.run(only_event(import_string(classpath)(**kwargs)))
    assert event["status"] == "success"
    result = operator.resume_execution(
        deferred.value.method_name, {**(deferred.value.kwargs or {}), "event": event}, context
    )
    leak_watch.see("event and result", event, result)
    with sec_project.hook() as hook:
        leak_watch.remember(hook.roles.reveal_password(result["branch_id"], "neondb_owner"))

    sensor = JamboOperationSensor(
        task_id="sensor", operation_ids=list(kwargs["operation_ids"]), deferrable=True, timeout=60
    )
    with pytest.raises(TaskDeferred) as sensor_deferred:
        sensor.execute(make_context("sensor"))
    leak_watch.see("sensor trigger kwargs", sensor_deferred.value.trigger.serialize())

    # A trigger whose connection holds a wrong key reports an error event, naming no key.
    wrong_key = "wrong-trigger-key-51c0a9e7"
    leak_watch.remember(wrong_key)
    monkeypatch.setenv(
        "AIRFLOW_CONN_JAMBO_WRONG", connection_json(sec_project.emu, sec_project.project_id, wrong_key)
    )
    failing = JamboOperationTrigger(
        jambo_conn_id="jambo_wrong",
        project_id=sec_project.project_id,
        operation_ids=list(kwargs["operation_ids"]),
        deadline=time.time() + 30,
    )
    error_event = asyncio.run(only_event(failing))
    assert error_event["status"] == "error"
    assert "401" in error_event["message"]
    leak_watch.see("error event", error_event, failing.serialize())

    leak_watch.assert_clean(expect=("Deferring until operations", "401"), min_passwords=1)
