"""All 163 operations of the spec: each is served (and covered by a contract scenario) or answers
501 naming itself; none is ever answered by another operation's handler.

For each operation one request goes to a fresh project, with every path parameter filled with a
real id where one exists. The request log names the route that served it, which must be the
operation's own template.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from jambo_emulator import JamboEmulator
from jambo_emulator.state.spec_operations import SPEC_OPERATIONS
from spec import EMULATED_OPERATIONS, ApiSpec, load_spec

_SPEC = load_spec()
_PARAM = re.compile(r"\{([^}]+)\}")


def _normalise(template: str) -> str:
    return _PARAM.sub("{}", template)


@pytest.fixture(scope="module")
def emu() -> Iterator[JamboEmulator]:
    with JamboEmulator(
        api_key="all-ops-key", deterministic=True, operation_duration=0.0, data_plane="off"
    ) as emulator:
        emulator.set_rate_limits(enabled=False)
        emulator.set_lock_rule(enabled=False)
        yield emulator


def test_the_emulators_table_is_the_spec() -> None:
    table = {(op_id, method, path) for op_id, method, path in SPEC_OPERATIONS}
    spec = {(op.operation_id, op.method, op.path) for op in _SPEC.operations.values()}
    assert table == spec
    assert len(spec) == 163


def test_emulated_operations_are_spec_operations() -> None:
    assert set(EMULATED_OPERATIONS) <= set(_SPEC.operations)
    assert len(set(EMULATED_OPERATIONS)) == len(EMULATED_OPERATIONS)


@pytest.fixture(scope="module")
def client(emu: JamboEmulator) -> Iterator[httpx.Client]:
    with emu.client() as api:
        yield api


def _ids(emu: JamboEmulator, client: httpx.Client) -> dict[str, Any]:
    response = client.post("/projects", json={"project": {"name": "all-ops"}})
    assert response.status_code == 201, response.text
    body = response.json()
    emu.advance(0)
    project = body["project"]
    org_id = project.get("org_id") or "org-none-00000000"
    ops = client.get(f"/projects/{project['id']}/operations").json()["operations"]
    return {
        "project_id": project["id"],
        "branch_id": body["branch"]["id"],
        "endpoint_id": body["endpoints"][0]["id"],
        "operation_id": ops[0]["id"],
        "database_name": body["databases"][0]["name"],
        "role_name": body["roles"][0]["name"],
        "org_id": org_id,
        "source_org_id": org_id,
    }


@pytest.mark.parametrize("operation_id", sorted(_SPEC.operations))
def test_operation_is_served_or_answers_not_emulated(
    emu: JamboEmulator, client: httpx.Client, operation_id: str
) -> None:
    spec: ApiSpec = _SPEC
    op = spec.operation(operation_id)
    values = _ids(emu, client)
    path = _PARAM.sub(lambda m: str(values.get(m.group(1), "x1")), op.path)
    emu.clear_requests()
    kwargs: dict[str, Any] = {"json": {}} if op.method in ("POST", "PUT", "PATCH") else {}
    response = client.request(op.method, path, **kwargs)
    body = response.json() if response.content else None
    where = f"{op.method} {path} -> {response.status_code} {response.text[:300]}"

    # Served by this operation's own route, whatever it answered.
    routes = [entry["route"] for entry in emu.requests() if entry["path"] == "/api/v2" + path]
    assert routes, f"{where}: not in the request log"
    assert _normalise(routes[-1]) == _normalise(op.path), f"{where}: answered by route {routes[-1]}"
    assert spec.violations(operation_id, response.status_code, body) == [], where

    if operation_id in EMULATED_OPERATIONS:
        assert response.status_code != 501, where
        assert response.status_code < 500, where
    else:
        assert response.status_code == 501, where
        assert body["code"] == "NOT_EMULATED", where
        assert operation_id in body["message"], where
        assert "not emulated" in body["message"], where


def test_unknown_paths_are_404_not_another_operation(client: httpx.Client) -> None:
    for path in (
        "/projects/p-1/branches/br-1/nonsense",
        "/projects/p-1/unknown",
        "/nonsense",
        "/projects/",
        "/users/me/organizations/extra",
    ):
        response = client.get(path)
        assert response.status_code == 404, (path, response.text)
        assert response.json()["message"] == "not found"


def test_a_wrong_method_on_a_spec_path_is_405_naming_the_allowed_ones(client: httpx.Client) -> None:
    response = client.put("/projects")
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, POST"
    assert "GET, POST" in response.json()["message"]


def test_not_emulated_operations_still_need_a_key(emu: JamboEmulator) -> None:
    response = httpx.get(f"{emu.base_url}/projects/shared")
    assert response.status_code == 401


def test_routing_order_puts_the_specific_template_first_and_the_poll_early() -> None:
    from jambo_emulator.api.router import api_router, overlap, specificity

    paths = [getattr(route, "path", "") for route in api_router.routes]
    for i, earlier in enumerate(paths):
        for later in paths[i + 1 :]:
            if overlap(earlier, later):
                assert not specificity(later) < specificity(earlier), (earlier, later)
    # Every route tried before a request's own costs it time: the poll comes (almost) first.
    assert paths.index("/projects/{project_id}/operations/{operation_id}") < 3
