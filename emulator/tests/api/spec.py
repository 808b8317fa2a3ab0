"""The published Jambo API spec, loaded for tests, and a validator for response bodies.

The spec is the copy vendored in ``emulator/spec/`` (its README records where it comes from).
`ApiSpec.violations(operation_id, status, body)` lists every way a response breaks the spec:
a status code the operation does not document, a body for a 204, or a body that does not match the
schema for that operation and status (OpenAPI 3.0 rules: ``nullable``, ``readOnly``, formats).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from openapi_schema_validator import OAS30ReadValidator, OAS30WriteValidator, oas30_format_checker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

# Computed here, not imported from a conftest: with several test directories on the command line,
# ``conftest`` may name another directory's module.
SPEC_PATH = Path(__file__).resolve().parents[2] / "spec" / "jambo-api-v2.openapi.yaml"

# Every operation the emulator must serve (issue 2, "Paths, methods, status codes and bodies").
ISSUE_OPERATIONS: tuple[str, ...] = (
    # API keys
    "listApiKeys",
    "createApiKey",
    "revokeApiKey",
    # projects
    "listProjects",
    "createProject",
    "getProject",
    "updateProject",
    "deleteProject",
    # branches
    "listProjectBranches",
    "countProjectBranches",
    "getProjectBranch",
    "createProjectBranch",
    "updateProjectBranch",
    "deleteProjectBranch",
    "restoreProjectBranch",
    "setDefaultProjectBranch",
    "getProjectBranchSchema",
    "getProjectBranchSchemaComparison",
    # endpoints
    "listProjectEndpoints",
    "listProjectBranchEndpoints",
    "getProjectEndpoint",
    "createProjectEndpoint",
    "updateProjectEndpoint",
    "deleteProjectEndpoint",
    "startProjectEndpoint",
    "suspendProjectEndpoint",
    "restartProjectEndpoint",
    # databases and roles of a branch
    "listProjectBranchDatabases",
    "getProjectBranchDatabase",
    "createProjectBranchDatabase",
    "deleteProjectBranchDatabase",
    "listProjectBranchRoles",
    "getProjectBranchRole",
    "createProjectBranchRole",
    "deleteProjectBranchRole",
    "getProjectBranchRolePassword",
    "resetProjectBranchRolePassword",
    # operations
    "listProjectOperations",
    "getProjectOperation",
    # the rest
    "getConnectionURI",
    "getCurrentUserInfo",
    "getActiveRegions",
)

_SPEC_URI = "urn:jambo-api-v2"
_HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
API_PREFIX = "/api/v2"


@dataclass(frozen=True)
class SpecOperation:
    """One operation of the spec: where it lives and what it may answer."""

    operation_id: str
    method: str  # upper case
    path: str  # the spec's template, e.g. /projects/{project_id}/branches
    statuses: tuple[str, ...]  # documented response keys, e.g. ("201", "default")
    _pattern: re.Pattern[str]

    def matches(self, method: str, path: str) -> bool:
        return method.upper() == self.method and self._pattern.fullmatch(path) is not None


def _escape_pointer(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def _path_pattern(template: str) -> re.Pattern[str]:
    # Path parameters never contain "/"; literal segments must match exactly.
    parts = re.split(r"(\{[^}]+\})", template)
    regex = "".join("[^/]+" if p.startswith("{") else re.escape(p) for p in parts)
    return re.compile(regex)


class ApiSpec:
    """The spec document plus a response validator per (operationId, status)."""

    def __init__(self, raw: Mapping[str, Any]) -> None:
        # yaml.safe_load gives int response codes; JSON round trip makes every key a string,
        # which is what JSON Schema references and the validators expect.
        self.document: dict[str, Any] = json.loads(json.dumps(raw, default=str))
        resource = Resource.from_contents(self.document, default_specification=DRAFT4)
        self._registry: Registry[Any] = Registry().with_resource(_SPEC_URI, resource)
        self._validators: dict[str, OAS30ReadValidator] = {}
        self.operations: dict[str, SpecOperation] = {}
        for path, item in self.document["paths"].items():
            for method in _HTTP_METHODS:
                op = item.get(method)
                if op is None:
                    continue
                op_id = op["operationId"]
                self.operations[op_id] = SpecOperation(
                    operation_id=op_id,
                    method=method.upper(),
                    path=path,
                    statuses=tuple(op["responses"]),
                    _pattern=_path_pattern(path),
                )
        # Literal paths (/projects/shared, .../branches/count) must win over templated siblings.
        self._by_specificity = sorted(
            self.operations.values(), key=lambda o: (o.path.count("{"), -len(o.path))
        )

    # -- lookup -------------------------------------------------------------------------------

    def operation(self, operation_id: str) -> SpecOperation:
        try:
            return self.operations[operation_id]
        except KeyError:
            raise KeyError(f"operationId {operation_id!r} is not in the spec") from None

    def find(self, method: str, path: str) -> SpecOperation | None:
        """The operation serving a concrete request path (with or without the /api/v2 prefix)."""
        path = path.split("?", 1)[0]
        if path.startswith(API_PREFIX):
            path = path[len(API_PREFIX) :]
        for op in self._by_specificity:
            if op.matches(method, path):
                return op
        return None

    def request_example_bodies(self, operation_id: str) -> dict[str, Any]:
        """Named example request bodies the spec gives for an operation (may be empty)."""
        op = self._op_object(operation_id)
        content = op.get("requestBody", {}).get("content", {}).get("application/json", {})
        examples = {name: ex["value"] for name, ex in content.get("examples", {}).items()}
        if "example" in content:
            examples["example"] = content["example"]
        return examples

    def response_examples(self) -> Iterator[tuple[str, str, Any]]:
        """(operationId, status, example body) for every response example in the spec."""
        for op_id in self.operations:
            for status, response in self._op_object(op_id)["responses"].items():
                media = self._deref(response).get("content", {}).get("application/json", {})
                if "example" in media:
                    yield op_id, status, media["example"]
                for ex in media.get("examples", {}).values():
                    if "value" in ex:
                        yield op_id, status, ex["value"]

    # -- validation ---------------------------------------------------------------------------

    def violations(self, operation_id: str, status: int, body: Any) -> list[str]:
        """Every way a response breaks the spec; empty when it conforms.

        ``body`` is the parsed JSON body, or ``None`` when the response had no body.
        A documented 2xx/3xx status must be listed explicitly; errors (4xx/5xx) may fall back to
        ``default`` (the spec's GeneralError).
        """
        where = f"{operation_id} -> {status}"
        op = self._op_object(operation_id)
        responses = op["responses"]
        key = str(status)
        if key not in responses:
            if status >= 400 and "default" in responses:
                key = "default"
            else:
                documented = ", ".join(responses)
                return [f"{where}: status not documented for this operation (documented: {documented})"]
        response = self._deref(responses[key])
        media = response.get("content", {}).get("application/json")
        if media is None or "schema" not in media:
            if body is not None:
                return [f"{where}: the spec documents no body, got {_short(body)}"]
            return []
        if body is None:
            return [f"{where}: the spec documents a JSON body, got none"]
        validator = self._validator(operation_id, key)
        return [
            f"{where}: at {_json_path(err.absolute_path)}: {err.message}"
            for err in sorted(validator.iter_errors(body), key=lambda e: list(map(str, e.absolute_path)))
        ]

    def undeclared_fields(self, operation_id: str, status: int, body: Any) -> list[str]:
        """JSON paths of response fields the schema never declares (OpenAPI allows them, but an
        emulator that invents fields lets clients depend on things the real service never sends).
        """
        responses = self._op_object(operation_id)["responses"]
        key = str(status) if str(status) in responses else "default"
        media = self._deref(responses.get(key, {})).get("content", {}).get("application/json", {})
        if "schema" not in media or body is None:
            return []
        found: list[str] = []
        self._walk_undeclared(media["schema"], body, "$", found)
        return found

    def _walk_undeclared(self, schema: dict[str, Any], value: Any, where: str, found: list[str]) -> None:
        schema = self._deref(schema)
        if isinstance(value, list):
            items = schema.get("items")
            if items is None:
                for part in schema.get("allOf", []) + schema.get("anyOf", []) + schema.get("oneOf", []):
                    items = self._deref(part).get("items", items)
            if items is not None:
                for i, item in enumerate(value):
                    self._walk_undeclared(items, item, f"{where}[{i}]", found)
            return
        if not isinstance(value, dict):
            return
        properties: dict[str, list[dict[str, Any]]] = {}
        extra: list[dict[str, Any]] = []
        free_form = False
        for part in self._flatten(schema):
            for name, sub in part.get("properties", {}).items():
                properties.setdefault(name, []).append(sub)
            additional = part.get("additionalProperties")
            if isinstance(additional, dict):
                extra.append(additional)
            free_form = free_form or additional is True
        if not properties and not extra:
            return  # a free-form object: anything goes
        for name, sub_value in value.items():
            if name in properties:
                for sub in properties[name]:
                    self._walk_undeclared(sub, sub_value, f"{where}.{name}", found)
            elif extra:
                for sub in extra:
                    self._walk_undeclared(sub, sub_value, f"{where}.{name}", found)
            elif not free_form:
                found.append(f"{where}.{name}")

    def _flatten(self, schema: dict[str, Any]) -> list[dict[str, Any]]:
        """The schema and every allOf/anyOf/oneOf part under it, $refs resolved."""
        schema = self._deref(schema)
        parts = [schema]
        for key in ("allOf", "anyOf", "oneOf"):
            for sub in schema.get(key, []):
                parts += self._flatten(sub)
        return parts

    def request_violations(self, operation_id: str, body: Any) -> list[str]:
        """Every way a request body breaks the spec (so the tests themselves send valid requests)."""
        op = self._op_object(operation_id)
        request_body = self._deref(op.get("requestBody", {}))
        if "content" not in request_body:
            return [] if body is None else [f"{operation_id}: the spec takes no request body"]
        if body is None:
            return (
                [f"{operation_id}: the spec requires a request body"] if request_body.get("required") else []
            )
        spec_op = self.operation(operation_id)
        base = (
            op["requestBody"]["$ref"].removeprefix("#")
            if "$ref" in op["requestBody"]
            else "/".join(("/paths", _escape_pointer(spec_op.path), spec_op.method.lower(), "requestBody"))
        )
        pointer = f"{base}/content/application~1json/schema"
        validator = OAS30WriteValidator(
            {"$ref": f"{_SPEC_URI}#{pointer}"}, registry=self._registry, format_checker=oas30_format_checker
        )
        return [
            f"{operation_id} request at {_json_path(e.absolute_path)}: {e.message}"
            for e in validator.iter_errors(body)
        ]

    def _validator(self, operation_id: str, status_key: str) -> OAS30ReadValidator:
        pointer = self._schema_pointer(operation_id, status_key)
        if pointer not in self._validators:
            self._validators[pointer] = OAS30ReadValidator(
                {"$ref": f"{_SPEC_URI}#{pointer}"},
                registry=self._registry,
                format_checker=oas30_format_checker,
            )
        return self._validators[pointer]

    def _schema_pointer(self, operation_id: str, status_key: str) -> str:
        spec_op = self.operation(operation_id)
        response = self._op_object(operation_id)["responses"][status_key]
        if "$ref" in response:
            base = response["$ref"].removeprefix("#")
        else:
            base = "/".join(
                (
                    "/paths",
                    _escape_pointer(spec_op.path),
                    spec_op.method.lower(),
                    "responses",
                    _escape_pointer(status_key),
                )
            )
        return f"{base}/content/application~1json/schema"

    def _op_object(self, operation_id: str) -> dict[str, Any]:
        spec_op = self.operation(operation_id)
        op: dict[str, Any] = self.document["paths"][spec_op.path][spec_op.method.lower()]
        return op

    def _deref(self, obj: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in obj:
            node: Any = self.document
            for token in obj["$ref"].removeprefix("#/").split("/"):
                node = node[token.replace("~1", "/").replace("~0", "~")]
            obj = node
        return obj


def _json_path(path: Any) -> str:
    return "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path)


def _short(body: Any) -> str:
    text = json.dumps(body, default=str)
    return text if len(text) <= 200 else text[:197] + "..."


@cache
def load_spec() -> ApiSpec:
    """The published spec, parsed once per test session."""
    with open(SPEC_PATH, encoding="utf-8") as f:
        return ApiSpec(yaml.safe_load(f))


# Operations issue 11 added (organizations, shared projects, recovery, permissions, ...). Each has a
# scenario in test_contract.py that exercises it with a success status.
ISSUE_11_OPERATIONS: tuple[str, ...] = (
    "getCurrentUserOrganizations",
    "getOrganization",
    "listOrgApiKeys",
    "createOrgApiKey",
    "revokeOrgApiKey",
    "getOrganizationMembers",
    "getOrganizationMember",
    "listSharedProjects",
    "updateProjectBranchDatabase",
    "listProjectPermissions",
    "grantPermissionToProject",
    "revokePermissionFromProject",
    "getAuthDetails",
    "recoverProject",
    "recoverProjectBranch",
)

# Anonymized branches (issue 13), each exercised with a success status in test_anonymized.py.
ISSUE_13_OPERATIONS: tuple[str, ...] = (
    "createProjectBranchAnonymized",
    "getMaskingRules",
    "updateMaskingRules",
    "startAnonymization",
    "getAnonymizedBranchStatus",
)

# Branch buckets, and the reads that show a branch has none of the services the emulator lacks
# (what the official CLI's ``link``/``status`` read), each exercised in test_contract.py.
BUCKET_OPERATIONS: tuple[str, ...] = (
    "listProjectBranchBuckets",
    "createProjectBranchBucket",
    "deleteProjectBranchBucket",
)
BRANCH_SERVICE_READS: tuple[str, ...] = (
    "getNeonAuth",
    "getProjectBranchDataAPI",
    "listProjectBranchFunctions",
    "listCredentials",
)

# Issue 21: snapshots and backup schedules, exercised in test_contract.py's snapshot scenario.
SNAPSHOT_OPERATIONS: tuple[str, ...] = (
    "createSnapshot",
    "listSnapshots",
    "updateSnapshot",
    "deleteSnapshot",
    "restoreSnapshot",
    "finalizeRestoreBranch",
    "getSnapshotSchedule",
    "setSnapshotSchedule",
)

#: Every operation the emulator serves; every other spec operation answers 501 naming itself.
EMULATED_OPERATIONS: tuple[str, ...] = (
    ISSUE_OPERATIONS
    + ISSUE_11_OPERATIONS
    + ISSUE_13_OPERATIONS
    + BUCKET_OPERATIONS
    + BRANCH_SERVICE_READS
    + SNAPSHOT_OPERATIONS
)
