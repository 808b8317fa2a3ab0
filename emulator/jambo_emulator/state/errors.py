"""The service's error shape: ``{"code", "message", "request_id"}`` plus the request-id header."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TypeVar

from starlette.responses import Response

REQUEST_ID_HEADER = "x-neon-ret-request-id"
T = TypeVar("T")

LOCKED_MESSAGE = "project already has running conflicting operations, scheduling of new ones is prohibited"


class ApiError(Exception):
    """Raised by handlers; turned into the error body by the app's exception handler."""

    def __init__(
        self, status: int, message: str, *, code: str = "", headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.headers = dict(headers or {})


def not_found(what: str) -> ApiError:
    return ApiError(404, f"{what} not found")


def found(items: Mapping[str, T], key: str, what: str) -> T:
    """``items[key]``, or the service's 404 ``<what> not found``."""
    item = items.get(key)
    if item is None:
        raise not_found(what)
    return item


def bad_request(message: str) -> ApiError:
    return ApiError(400, message)


def error_response(
    status: int,
    message: str,
    request_id: str,
    *,
    code: str = "",
    headers: Mapping[str, str] | None = None,
) -> Response:
    body = json.dumps({"code": code, "message": message, "request_id": request_id}).encode()
    return Response(body, status_code=status, media_type="application/json", headers=dict(headers or {}))
