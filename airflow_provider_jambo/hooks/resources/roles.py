"""``hook.roles``: the Postgres roles of a branch, and their passwords (always masked)."""

from __future__ import annotations

import builtins

from airflow_provider_jambo.api_models import Mutation, Operation, Role
from airflow_provider_jambo.hooks import secret_masking
from airflow_provider_jambo.hooks.resources.resource_group import (
    ResourceGroup,
    many,
    mutation,
    one,
    ops_or_empty,
)
from airflow_provider_jambo.rules import ROLE_NAME_MAX, check_name

_ROLE = "/branches/{branch_id}/roles/{role_name}"


def _role_ids(branch_id: str, name: str) -> dict[str, str]:
    return {"branch_id": branch_id, "role_name": check_name("name", name, ROLE_NAME_MAX)}


class RolesApi(ResourceGroup):
    """Roles of a branch; ``project_id`` defaults to the connection's. A password is registered
    with the secrets masker before it is returned."""

    def get(self, branch_id: str, name: str, *, project_id: str | None = None) -> Role:
        return self._call(
            "GET", _ROLE, project_id, _role_ids(branch_id, name), parse=one("role", Role.from_api)
        )

    def create(
        self, branch_id: str, name: str, *, no_login: bool = False, project_id: str | None = None
    ) -> Mutation[Role]:
        """Create a role; its password (when returned) is registered with the secrets masker."""
        body: dict[str, dict[str, object]] = {"role": {"name": check_name("name", name, ROLE_NAME_MAX)}}
        if no_login:
            body["role"]["no_login"] = True
        result = self._call(
            "POST",
            "/branches/{branch_id}/roles",
            project_id,
            {"branch_id": branch_id},
            json=body,
            parse=mutation("role", Role.from_api),
        )
        secret_masking.mask_secrets([result.resource])
        return result

    def delete(self, branch_id: str, name: str, *, project_id: str | None = None) -> builtins.list[Operation]:
        return self._call("DELETE", _ROLE, project_id, _role_ids(branch_id, name), parse=ops_or_empty)

    def reveal_password(self, branch_id: str, role: str, *, project_id: str | None = None) -> str:
        """The role's password, registered with the secrets masker before it is returned."""
        password: str = self._call(
            "GET",
            f"{_ROLE}/reveal_password",
            project_id,
            _role_ids(branch_id, role),
            parse=lambda body: str(body["password"]),
        )
        secret_masking.mask_password(password)
        return password

    def reset_password(self, branch_id: str, role: str, *, project_id: str | None = None) -> Mutation[Role]:
        """Give the role a new password (in ``resource.password``, masked). Not re-sent on an unknown
        outcome: a second reset would invalidate the password the first one returned."""
        result = self._call(
            "POST",
            f"{_ROLE}/reset_password",
            project_id,
            _role_ids(branch_id, role),
            parse=mutation("role", Role.from_api),
        )
        secret_masking.mask_secrets([result.resource])
        return result

    # Last: a method named ``list`` would shadow the builtin in the annotations below it.
    def list(self, branch_id: str, *, project_id: str | None = None) -> builtins.list[Role]:
        return self._call(
            "GET",
            "/branches/{branch_id}/roles",
            project_id,
            {"branch_id": branch_id},
            parse=many("roles", Role.from_api),
        )
