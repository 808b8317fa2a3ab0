"""BranchTarget: where SQL on a branch connects, from a create-branch task's XCom value.

Pure (no database driver, no HTTP client), so ``JamboBranchSQLOperator`` checks literal
coordinates when the DAG is parsed without importing the postgres provider; ``hooks/branch_postgres.py`` turns
a target into a connection at run time.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from airflow_provider_jambo.exceptions import JamboConfigError
from airflow_provider_jambo.rules import ID_PATTERN

__all__ = ["BranchTarget"]

# Keys a branch mapping may carry that would mean someone put a secret where coordinates belong.
_SECRET_KEYS = frozenset({"password", "connection_uri", "connection_uris", "uri"})


@dataclass(frozen=True)
class BranchTarget:
    """Where to connect: the non-secret coordinates of one database on one branch.

    ``project_id`` None means the Jambo connection's default project; ``endpoint_id`` None lets the
    API pick the branch's read-write compute.
    """

    branch_id: str
    database: str
    role: str
    project_id: str | None = None
    endpoint_id: str | None = None
    pooled: bool = False

    def __post_init__(self) -> None:
        for field in ("branch_id", "project_id", "endpoint_id"):
            value = getattr(self, field)
            if value is None and field != "branch_id":
                continue
            if not isinstance(value, str) or not ID_PATTERN.match(value):
                raise JamboConfigError(
                    f"branch coordinates: {field} must be an id matching ^[a-z0-9-]{{1,60}}$, got {value!r}"
                )
        for field in ("database", "role"):
            value = getattr(self, field)
            if not isinstance(value, str) or not value:
                raise JamboConfigError(
                    f"branch coordinates: {field} must be a non-empty name, got {value!r} "
                    f"(the branch has no compute, or pass {field}= explicitly)"
                )

    @classmethod
    def from_value(
        cls,
        branch: BranchTarget | Mapping[str, Any] | str,
        *,
        database: str | None = None,
        role: str | None = None,
        endpoint_id: str | None = None,
        project_id: str | None = None,
        pooled: bool | None = None,
    ) -> BranchTarget:
        """Coordinates from a create-branch task's XCom value (or a JSON string of it).

        Keyword arguments override what the mapping says, e.g. another ``database`` on the branch.
        """
        if isinstance(branch, BranchTarget):
            values: dict[str, Any] = {
                "branch_id": branch.branch_id,
                "database": branch.database,
                "role": branch.role,
                "project_id": branch.project_id,
                "endpoint_id": branch.endpoint_id,
                "pooled": branch.pooled,
            }
        else:
            mapping = _as_mapping(branch)
            secret = sorted(_SECRET_KEYS.intersection(mapping))
            if secret:
                raise JamboConfigError(
                    f"branch coordinates must not carry secrets; found key(s) {secret}. Pass the "
                    "create-branch task's XCom value, which holds ids and names only."
                )
            if "branch_id" not in mapping:
                raise JamboConfigError(
                    "branch coordinates: branch_id is missing; expected the create-branch task's XCom "
                    f"value with keys branch_id, database, role (got keys {sorted(mapping)})"
                )
            values = {
                "branch_id": mapping["branch_id"],
                "database": mapping.get("database"),
                "role": mapping.get("role"),
                "project_id": mapping.get("project_id"),
                "endpoint_id": mapping.get("endpoint_id"),
                "pooled": bool(mapping.get("pooled", False)),
            }
        overrides = {
            "database": database,
            "role": role,
            "endpoint_id": endpoint_id,
            "project_id": project_id,
            "pooled": pooled,
        }
        values.update({key: value for key, value in overrides.items() if value is not None})
        return cls(**values)


def _as_mapping(branch: Mapping[str, Any] | str) -> Mapping[str, Any]:
    if isinstance(branch, Mapping):
        return branch
    if isinstance(branch, str):
        # A Jinja template renders an XCom dict to a string unless the DAG renders native objects.
        try:
            parsed = json.loads(branch)
        except ValueError:
            parsed = None
        if isinstance(parsed, Mapping):
            return parsed
    raise JamboConfigError(
        f"branch must be the create-branch task's XCom value (a mapping), got {type(branch).__name__}; "
        "pass `create_branch.output` (an XComArg), not a Jinja string, or set "
        "render_template_as_native_obj=True on the DAG"
    )
