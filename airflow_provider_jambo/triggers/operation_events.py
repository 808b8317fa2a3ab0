"""The events the operation trigger yields, as the deferred operators read them back.

:class:`OperationEvent` is ``JamboOperationTrigger``'s (and what ``execute_complete`` reads with
:func:`parse_operation_event`); it went through the metadata database, so it is read tolerantly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal, TypedDict, get_args

OperationEventStatus = Literal["success", "failed", "timeout", "error"]


class OperationEvent(TypedDict):
    """The one event :class:`~airflow_provider_jambo.triggers.operation_trigger.JamboOperationTrigger`
    yields, and what ``execute_complete`` reads back (:func:`parse_operation_event`)."""

    status: OperationEventStatus
    operation_ids: list[str]
    message: str


def operation_event(status: str, operation_ids: Sequence[str], message: str) -> OperationEvent:
    return {"status": _event_status(status), "operation_ids": list(operation_ids), "message": message}


def _event_status(value: object) -> OperationEventStatus:
    for status in get_args(OperationEventStatus):
        if value == status:
            return status
    return "error"


def parse_operation_event(event: Mapping[str, Any]) -> OperationEvent:
    """A trigger event as received (it went through the metadata database): an unknown status is
    an ``error``, ids are strings, the message is text."""
    return operation_event(
        str(event.get("status")),
        [str(op_id) for op_id in event.get("operation_ids") or []],
        str(event.get("message") or ""),
    )
