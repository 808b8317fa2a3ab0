"""Drive a deferrable operator through a full deferral in-process: execute → TaskDeferred → the
trigger re-created from its serialized form (as the triggerer does) → run → the resume method."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from airflow.providers.common.compat.module_loading import import_string
from airflow.providers.common.compat.sdk import TaskDeferred
from airflow.triggers.base import BaseTrigger, TriggerEvent


def defer(operator: Any, context: dict[str, Any]) -> TaskDeferred:
    with pytest.raises(TaskDeferred) as info:
        operator.execute(context)
    return info.value


def roundtrip(trigger: BaseTrigger) -> BaseTrigger:
    """The trigger as a triggerer rebuilds it; its serialized form must survive unchanged."""
    classpath, kwargs = trigger.serialize()
    rebuilt = import_string(classpath)(**kwargs)
    assert type(rebuilt) is type(trigger)
    assert rebuilt.serialize() == (classpath, kwargs)
    return rebuilt


async def first_event(trigger: BaseTrigger) -> TriggerEvent:
    events = []
    async for event in trigger.run():
        events.append(event)
    assert len(events) == 1, events
    return events[0]


def run_trigger(trigger: BaseTrigger) -> TriggerEvent:
    return asyncio.run(first_event(trigger))


def resume(operator: Any, context: dict[str, Any], deferred: TaskDeferred) -> Any:
    """Run the trigger to its event and resume the operator as Airflow would."""
    event = run_trigger(roundtrip(deferred.trigger))
    return operator.resume_execution(
        deferred.method_name, {**(deferred.kwargs or {}), "event": event.payload}, context
    )
