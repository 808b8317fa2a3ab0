"""Shared bits of the API handlers: typed path parameters, the JSON response, lookups."""

from __future__ import annotations

import base64
import json
import re
from typing import Annotated, Any

from fastapi import Path, Request
from starlette.responses import Response

from jambo_emulator.api import serialize
from jambo_emulator.resources.context import EmulatorContext
from jambo_emulator.state.errors import bad_request
from jambo_emulator.state.ids import ID_PATTERN
from jambo_emulator.state.records import ApiKey, Operation

ProjectId = Annotated[str, Path(pattern=ID_PATTERN)]
BranchId = Annotated[str, Path(pattern=ID_PATTERN)]
EndpointId = Annotated[str, Path(pattern=ID_PATTERN)]
OperationId = Annotated[
    str, Path(pattern=r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
]

_ID = re.compile(ID_PATTERN)
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def path_id(request: Request, name: str, *, uuid: bool = False) -> str:
    """A validated id from the path, for the hot GET handlers that skip FastAPI's parameter parsing."""
    value: str = request.path_params[name]
    pattern = _UUID if uuid else _ID
    if pattern.match(value) is None:
        expected = f"string should match pattern '{pattern.pattern}'"
        raise bad_request(f"invalid request: path parameter: invalid: {name} ({expected})")
    return value


_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def respond(body: Any, status: int = 200) -> Response:
    return Response(_dumps(body).encode(), status_code=status, media_type="application/json")


def no_content() -> Response:
    return Response(status_code=204)


def with_operations(
    kind: str, item: dict[str, Any], ops: list[Operation], now: float, status: int = 200
) -> Response:
    """A mutation's response: ``{kind: item, "operations": [...]}``."""
    return respond({kind: item, "operations": serialize.operations(ops, now)}, status)


def ctx_of(request: Request) -> EmulatorContext:
    ctx: EmulatorContext = request.app.state.ctx
    return ctx


def key_of(request: Request) -> ApiKey:
    key: ApiKey = request.scope["jambo.key"]
    return key


def encode_cursor(payload: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(_dumps(payload).encode()).decode().rstrip("=")


def decode_cursor(cursor: str, *, required: tuple[str, ...]) -> dict[str, Any]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        payload = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, TypeError):
        raise bad_request(
            "invalid cursor: pass pagination values from a previous response unchanged"
        ) from None
    if not isinstance(payload, dict) or any(k not in payload for k in required):
        raise bad_request("invalid cursor: pass pagination values from a previous response unchanged")
    return payload
