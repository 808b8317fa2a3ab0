"""Property-based conformance: schemathesis generates requests from the published spec for every
operation the emulator serves, sends them with the real auth header, and checks the answers.

Bounded: MAX_EXAMPLES per operation from the fuzzing phase (positive and negative data) plus the
examples and coverage phases (spec examples, boundary values, unsupported methods); no stateful
phase. The module runs in well under a minute. Half of the cases get the valid parts of their ids
(path, query, body fields such as branch_id/parent_id/owner_name) swapped for ids of real resources
(a seeded project with its branch, endpoint, database and role), so the checks see success bodies,
not only 404s.

Checks run (and why the others are off):
- not_a_server_error: never a 5xx, for valid or invalid input.
- status_code_conformance, content_type_conformance, response_schema_conformance,
  response_headers_conformance: the answer is one the spec documents, with the documented body.
- negative_data_rejection: input the spec forbids (wrong types, bad id patterns, unknown enum
  values, out-of-range numbers) is refused with a 4xx.
- positive_data_acceptance: input the spec allows is not refused. Besides 2xx, the states a valid
  request legitimately meets are accepted: 404 (random ids), 409 (duplicates), 423 (an operation
  in flight), and 400/422 for rules the schema cannot express (a made-up cursor, compute size above
  16, an owner role that does not exist, deleting the default branch). The custom check
  `valid_input_not_called_malformed` keeps that 400 honest: a spec-valid request must never get
  the "does not match the schema" 400 (only non-empty PostgreSQL identifiers are stricter on purpose).
- ignored_auth: the same request without the key is answered 401.
- unsupported_method / allow_header_conformance: a method the path does not serve gets 405 with an
  Allow header naming the path's methods -- except on the one path where the spec has a method the
  issue leaves out of the emulator (PATCH of a database), see `_PATHS_WITH_UNSERVED_METHODS`.
- use_after_free / ensure_resource_availability are off: they need the stateful phase (off: the
  spec has no links to chain calls with); missing_required_header has nothing to check here.

Rate limits are switched off: schemathesis fires hundreds of requests per second at one route,
far above the 40/s per-route limit, so almost every answer would be a 429 and the other checks
would see nothing. 429 and its body are tested in test_contract.py.
"""

from __future__ import annotations

import json
import os
import re
import zlib
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import GenerationMode
from schemathesis.core.parameters import ParameterLocation
from schemathesis.specs.openapi.checks import allow_header_conformance

from jambo_emulator import JamboEmulator
from spec import ISSUE_OPERATIONS, load_spec

# CI default; a deeper local hunt:
#   JAMBO_SCHEMATHESIS_EXAMPLES=200 pytest emulator/tests/api/test_schemathesis.py
MAX_EXAMPLES = int(os.environ.get("JAMBO_SCHEMATHESIS_EXAMPLES", "12"))

CONFIG = schemathesis.Config.from_dict(
    {
        "generation": {"max-examples": MAX_EXAMPLES, "mode": "all", "deterministic": True},
        "phases": {"stateful": {"enabled": False}},
        "checks": {
            "positive_data_acceptance": {"expected-statuses": ["2xx", "400", "404", "409", "422", "423"]},
            "use_after_free": {"enabled": False},
            "ensure_resource_availability": {"enabled": False},
        },
    }
)

schema = schemathesis.openapi.from_dict(load_spec().document, config=CONFIG).include(
    operation_id=list(ISSUE_OPERATIONS)
)


@pytest.fixture(scope="module")
def emulator() -> Iterator[JamboEmulator]:
    with JamboEmulator(
        api_key="schemathesis-key", deterministic=True, operation_duration=0.0, data_plane="off"
    ) as emu:
        yield emu


@pytest.fixture
def real_ids(emulator: JamboEmulator) -> dict[str, str]:
    """A fresh emulator state per operation: one project with every kind of resource in it."""
    emulator.reset()
    emulator.set_rate_limits(enabled=False)
    created = emulator.create_project(name="fuzz")
    project_id = created["project"]["id"]
    return {
        "project_id": project_id,
        "branch_id": created["branch"]["id"],
        "endpoint_id": created["endpoints"][0]["id"],
        "database_name": created["databases"][0]["name"],
        "role_name": created["roles"][0]["name"],
        "operation_id": created["operations"][0]["id"],
    }


# Names under which a request carries a resource id, and the real resource to put there.
_QUERY_IDS = {
    "db_name": "database_name",
    "database_name": "database_name",
    "role_name": "role_name",
    "branch_id": "branch_id",
    "base_branch_id": "branch_id",
    "endpoint_id": "endpoint_id",
}
_BODY_IDS = {
    "branch_id": "branch_id",
    "parent_id": "branch_id",
    "source_branch_id": "branch_id",
    "owner_name": "role_name",
}


def _positive(case: schemathesis.Case, location: ParameterLocation) -> bool:
    """Whether this part of the request was generated valid (negative parts are left alone)."""
    meta = case.meta
    info = meta.components.get(location) if meta is not None else None
    return info is not None and info.mode == GenerationMode.POSITIVE


def _use_real_ids(case: schemathesis.Case) -> bool:
    """Half of the cases, chosen by a stable hash of the generated request (so a failure replays)."""
    generated = {"path": case.path_parameters, "query": case.query, "body": case.body}
    return zlib.crc32(json.dumps(generated, sort_keys=True, default=str).encode()) % 2 == 0


def _swap_body_ids(body: Any, real_ids: dict[str, str]) -> None:
    if isinstance(body, dict):
        for name, value in body.items():
            if name in _BODY_IDS and isinstance(value, str):
                body[name] = real_ids[_BODY_IDS[name]]
            else:
                _swap_body_ids(value, real_ids)


def _point_at_real_resources(case: schemathesis.Case, real_ids: dict[str, str]) -> None:
    # Read every mode before editing: an edit makes schemathesis re-derive the metadata.
    path_ok = bool(case.path_parameters) and _positive(case, ParameterLocation.PATH)
    query_ok = bool(case.query) and _positive(case, ParameterLocation.QUERY)
    body_ok = isinstance(case.body, dict) and _positive(case, ParameterLocation.BODY)
    if path_ok:
        for name in case.path_parameters:
            if name in real_ids:
                case.path_parameters[name] = real_ids[name]
    if query_ok:
        for name, value in case.query.items():
            if name in _QUERY_IDS and isinstance(value, str):
                case.query[name] = real_ids[_QUERY_IDS[name]]
    if body_ok:
        _swap_body_ids(case.body, real_ids)


# The emulator's schema-validation 400 reads like the service's:
# "invalid request: decode application/json: invalid: <field> (<reason>); <field> (<reason>)".
_DECODE_ERROR = "invalid request: decode application/json"
_FIELD_REASON = re.compile(r"(?:invalid: |; )([\w.\[\]]+) \(([^)]*)\)")
# Rules the emulator adds on top of the schema on purpose: PostgreSQL identifiers cannot be empty
# (the spec only says a role name "cannot exceed 63 bytes").
_PG_IDENTIFIERS = ("role_name", "database_name", "role.name", "database.name", "owner_name")


def valid_input_not_called_malformed(
    ctx: schemathesis.CheckContext, response: schemathesis.Response, case: schemathesis.Case
) -> bool | None:
    """A request the spec accepts must not get the "does not match the schema" 400.

    (400s for rules the schema cannot express -- a cursor from elsewhere, a compute size above 16,
    an owner role that does not exist -- are fine and carry their own messages.)
    """
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive or response.status_code != 400:
        return None
    message = json.loads(response.content).get("message", "")
    if not message.startswith(_DECODE_ERROR):
        return None
    for field_path, reason in _FIELD_REASON.findall(message):
        if field_path.endswith(_PG_IDENTIFIERS) and reason == "string should have at least 1 character":
            continue
        raise AssertionError(f"spec-valid input refused as malformed: {field_path} ({reason}): {message}")
    return None


# Paths where the spec has operations the issue leaves out of the emulator (PATCH of a database):
# a 405's Allow header there cannot list them, so allow_header_conformance is skipped on those paths.
_PATHS_WITH_UNSERVED_METHODS = frozenset(
    op.path
    for op in load_spec().operations.values()
    if op.operation_id not in ISSUE_OPERATIONS
    and any(load_spec().operation(served).path == op.path for served in ISSUE_OPERATIONS)
)


@schema.parametrize()
@settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
def test_emulator_conforms(
    case: schemathesis.Case, emulator: JamboEmulator, real_ids: dict[str, Any]
) -> None:
    if _use_real_ids(case):
        _point_at_real_resources(case, real_ids)
    case.call_and_validate(
        base_url=emulator.base_url,
        headers={"Authorization": f"Bearer {emulator.api_key}"},
        timeout=30,
        additional_checks=[valid_input_not_called_malformed],
        excluded_checks=[allow_header_conformance]
        if case.operation.path in _PATHS_WITH_UNSERVED_METHODS
        else [],
    )
