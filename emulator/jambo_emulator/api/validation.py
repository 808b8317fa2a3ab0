"""Pydantic/FastAPI validation errors -> the service's 400 message, naming the field."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

_SOURCES = {
    "body": "decode application/json",
    "query": "query parameter",
    "path": "path parameter",
    "header": "header",
}


def describe_validation_error(errors: Sequence[Any]) -> str:
    """``invalid request: decode application/json: invalid: branch.name (string too long)``."""
    parts: list[str] = []
    source = "decode application/json"
    for error in errors[:5]:
        loc = [str(p) for p in error.get("loc", ())]
        if loc and loc[0] in _SOURCES:
            source = _SOURCES[loc[0]]
            loc = loc[1:]
        kind = error.get("type", "")
        if kind == "json_invalid":
            return f"invalid request: decode application/json: malformed JSON: {error.get('msg', '')}"
        msg = "field required" if kind == "missing" else str(error.get("msg", "invalid value")).lower()
        field = ".".join(loc) or "body"
        parts.append(f"{field} ({msg})")
    return f"invalid request: {source}: invalid: " + "; ".join(parts)
