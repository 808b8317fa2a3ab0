"""``hook.computes``: a branch's computes (the API's endpoints): create, change, start, suspend."""

from __future__ import annotations

import builtins

from airflow_provider_jambo.api_models import Endpoint, Mutation, Operation
from airflow_provider_jambo.exceptions import JamboConfigError
from airflow_provider_jambo.hooks.resources.resource_group import (
    ResourceGroup,
    many,
    mutation,
    one,
    ops_or_empty,
)
from airflow_provider_jambo.rules import ENDPOINT_TYPES, check_choice, check_id, endpoint_settings

_ENDPOINT = "/endpoints/{endpoint_id}"


class ComputesApi(ResourceGroup):
    """Computes (``/projects/{id}/endpoints``); ``project_id`` defaults to the connection's."""

    def get(self, endpoint_id: str, *, project_id: str | None = None) -> Endpoint:
        return self._call(
            "GET",
            _ENDPOINT,
            project_id,
            {"endpoint_id": endpoint_id},
            parse=one("endpoint", Endpoint.from_api),
        )

    def create(
        self,
        branch_id: str,
        *,
        project_id: str | None = None,
        type: str = "read_write",
        min_cu: float | None = None,
        max_cu: float | None = None,
        suspend_timeout_seconds: int | None = None,
    ) -> Mutation[Endpoint]:
        endpoint = {
            "branch_id": check_id("branch_id", branch_id),
            "type": check_choice("type", type, ENDPOINT_TYPES),
            **endpoint_settings(min_cu, max_cu, suspend_timeout_seconds),
        }
        return self._call(
            "POST",
            "/endpoints",
            project_id,
            json={"endpoint": endpoint},
            parse=mutation("endpoint", Endpoint.from_api),
        )

    def update(
        self,
        endpoint_id: str,
        *,
        project_id: str | None = None,
        min_cu: float | None = None,
        max_cu: float | None = None,
        suspend_timeout_seconds: int | None = None,
    ) -> Mutation[Endpoint]:
        endpoint = endpoint_settings(min_cu, max_cu, suspend_timeout_seconds)
        if not endpoint:
            raise JamboConfigError(
                "computes.update needs at least one of min_cu, max_cu, suspend_timeout_seconds"
            )
        return self._call(
            "PATCH",
            _ENDPOINT,
            project_id,
            {"endpoint_id": endpoint_id},
            json={"endpoint": endpoint},
            # Setting the same limits again gives the same state.
            idempotent=True,
            parse=mutation("endpoint", Endpoint.from_api),
        )

    def delete(self, endpoint_id: str, *, project_id: str | None = None) -> list[Operation]:
        """Delete a compute; ``[]`` when it is already gone."""
        return self._call("DELETE", _ENDPOINT, project_id, {"endpoint_id": endpoint_id}, parse=ops_or_empty)

    def _action(self, action: str, endpoint_id: str, project_id: str | None) -> Mutation[Endpoint]:
        return self._call(
            "POST",
            f"{_ENDPOINT}/{action}",
            project_id,
            {"endpoint_id": endpoint_id},
            parse=mutation("endpoint", Endpoint.from_api),
        )

    def start(self, endpoint_id: str, *, project_id: str | None = None) -> Mutation[Endpoint]:
        return self._action("start", endpoint_id, project_id)

    def suspend(self, endpoint_id: str, *, project_id: str | None = None) -> Mutation[Endpoint]:
        return self._action("suspend", endpoint_id, project_id)

    def restart(self, endpoint_id: str, *, project_id: str | None = None) -> Mutation[Endpoint]:
        return self._action("restart", endpoint_id, project_id)

    # Last: a method named ``list`` would shadow the builtin in the annotations below it.
    def list(self, project_id: str | None = None, *, branch_id: str | None = None) -> builtins.list[Endpoint]:
        """The project's computes, or only those of ``branch_id``."""
        parse = many("endpoints", Endpoint.from_api)
        if branch_id is None:
            return self._call("GET", "/endpoints", project_id, parse=parse)
        return self._call(
            "GET", "/branches/{branch_id}/endpoints", project_id, {"branch_id": branch_id}, parse=parse
        )
