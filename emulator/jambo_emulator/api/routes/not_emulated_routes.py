"""Spec operations the emulator does not serve: each answers 501 naming itself.

Having a route for every operation of the spec means routing never falls through to a sibling
template (``/projects/shared`` is not ``/projects/{project_id}``) and a client learns at once that
the emulator, not its request, is at fault. The routes pass the gate, so a bad key is still a 401.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Coroutine, Iterable
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from jambo_emulator.api.gate import api_router
from jambo_emulator.state.errors import ApiError
from jambo_emulator.state.spec_operations import SPEC_OPERATIONS

NOT_EMULATED_STATUS = 501
NOT_EMULATED_CODE = "NOT_EMULATED"

_PARAM = re.compile(r"\{[^}]+\}")


def route_key(method: str, template: str) -> tuple[str, str]:
    """(METHOD, template with parameter names erased): two spellings of one route compare equal."""
    return method.upper(), _PARAM.sub("{}", template)


def _handler(operation_id: str, method: str, path: str) -> Callable[[Request], Coroutine[Any, Any, Response]]:
    async def not_emulated(request: Request) -> Response:
        raise ApiError(
            NOT_EMULATED_STATUS,
            f"{operation_id} ({method} {path}) is not emulated by the Jambo API emulator",
            code=NOT_EMULATED_CODE,
        )

    not_emulated.__name__ = f"not_emulated_{operation_id}"
    return not_emulated


def router_for_the_rest(implemented: Iterable[tuple[str, str]]) -> APIRouter:
    """A router answering 501 for every spec operation whose route key is not in ``implemented``."""
    done = set(implemented)
    router = api_router()
    for operation_id, method, path in SPEC_OPERATIONS:
        if route_key(method, path) not in done:
            router.add_api_route(
                path, _handler(operation_id, method, path), methods=[method], name=operation_id
            )
    return router
