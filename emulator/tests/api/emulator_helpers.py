"""Small helpers shared by the emulator tests."""

from __future__ import annotations

from typing import Any

import httpx


def op_statuses(api: httpx.Client, project_id: str, ops: list[dict[str, Any]]) -> list[str]:
    return [
        api.get(f"/projects/{project_id}/operations/{op['id']}").json()["operation"]["status"] for op in ops
    ]


def create_branch(api: httpx.Client, project_id: str, **branch: Any) -> dict[str, Any]:
    endpoints = branch.pop("endpoints", None)
    body: dict[str, Any] = {"branch": branch}
    if endpoints is not None:
        body["endpoints"] = endpoints
    response = api.post(f"/projects/{project_id}/branches", json=body)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result
