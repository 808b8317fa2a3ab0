"""``hook.databases``: the databases of a branch."""

from __future__ import annotations

import builtins

from airflow_provider_jambo.api_models import Database, Mutation, Operation
from airflow_provider_jambo.hooks.resources.resource_group import (
    ResourceGroup,
    many,
    mutation,
    one,
    ops_or_empty,
)
from airflow_provider_jambo.rules import check_name

_DATABASE = "/branches/{branch_id}/databases/{database_name}"


def _database_ids(branch_id: str, name: str) -> dict[str, str]:
    return {"branch_id": branch_id, "database_name": check_name("name", name)}


class DatabasesApi(ResourceGroup):
    """Databases of a branch; ``project_id`` defaults to the connection's."""

    def get(self, branch_id: str, name: str, *, project_id: str | None = None) -> Database:
        return self._call(
            "GET",
            _DATABASE,
            project_id,
            _database_ids(branch_id, name),
            parse=one("database", Database.from_api),
        )

    def create(
        self, branch_id: str, name: str, *, owner_name: str, project_id: str | None = None
    ) -> Mutation[Database]:
        body = {
            "database": {
                "name": check_name("name", name),
                "owner_name": check_name("owner_name", owner_name),
            }
        }
        return self._call(
            "POST",
            "/branches/{branch_id}/databases",
            project_id,
            {"branch_id": branch_id},
            json=body,
            parse=mutation("database", Database.from_api),
        )

    def delete(self, branch_id: str, name: str, *, project_id: str | None = None) -> builtins.list[Operation]:
        return self._call("DELETE", _DATABASE, project_id, _database_ids(branch_id, name), parse=ops_or_empty)

    # Last: a method named ``list`` would shadow the builtin in the annotations below it.
    def list(self, branch_id: str, *, project_id: str | None = None) -> builtins.list[Database]:
        return self._call(
            "GET",
            "/branches/{branch_id}/databases",
            project_id,
            {"branch_id": branch_id},
            parse=many("databases", Database.from_api),
        )
