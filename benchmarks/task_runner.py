"""Runs one operator as a worker and a triggerer would, in process, for the benchmarks.

``execute``; when it defers, the trigger is rebuilt from its serialized kwargs (as a triggerer does),
run to its event, and a fresh operator resumes with it (as the worker that picks the task up again).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from airflow.providers.common.compat.module_loading import import_string
from airflow.providers.common.compat.sdk import TaskDeferred


class TI:
    """The task instance slice the operators use: identifiers and an in-memory XCom."""

    dag_id, task_id, run_id, try_number, map_index = "bench", "t", "manual__bench", 1, -1

    def __init__(self) -> None:
        self.pushed: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.pushed[key] = value

    def xcom_pull(self, task_ids: str | None = None, key: str = "return_value", **_: Any) -> Any:
        return self.pushed.get(key)


async def _event(trigger: Any) -> Any:
    async for event in trigger.run():
        return event
    raise RuntimeError("trigger ended without an event")


def run_task(make: Callable[[], Any]) -> tuple[Any, bool]:
    """Run the operator ``make()`` builds to its end; returns (its result, whether it deferred)."""
    ti = TI()
    context: dict[str, Any] = {"ti": ti, "task_instance": ti, "run_id": ti.run_id}
    try:
        return make().execute(context), False
    except TaskDeferred as deferred:
        classpath, trigger_kwargs = deferred.trigger.serialize()
        event = asyncio.run(_event(import_string(classpath)(**trigger_kwargs)))
        resumed = make().resume_execution(
            deferred.method_name, {**(deferred.kwargs or {}), "event": event.payload}, context
        )
        return resumed, True
