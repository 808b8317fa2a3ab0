"""The service's errors as raised by the rules (``ApiError``: a status and a message); the app turns
them into the error body ``{"code", "message", "request_id"}`` (``api/app.py``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

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
