"""``hook.projects``: list, read and create projects."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from airflow_provider_jambo.api_models import Project, ProjectCreation
from airflow_provider_jambo.hooks import secret_masking
from airflow_provider_jambo.hooks.client import ApiRequest
from airflow_provider_jambo.hooks.resources.resource_group import ResourceGroup, one
from airflow_provider_jambo.rules import check_name

PROJECT_PAGE_LIMIT = 100


class ProjectsApi(ResourceGroup):
    """Projects of the connection's account (``org_id`` extra: of that organisation)."""

    def get(self, project_id: str | None = None) -> Project:
        return self._call("GET", "", project_id, parse=one("project", Project.from_api))

    def create(self, name: str | None = None, region_id: str | None = None) -> ProjectCreation:
        """Create a project (not re-sent after an unknown outcome: project names are not unique)."""
        project: dict[str, Any] = {}
        if name is not None:
            project["name"] = check_name("name", name)
        if region_id is not None:
            project["region_id"] = check_name("region_id", region_id)
        org_id = self._hook.load().org_id
        if org_id:
            project["org_id"] = org_id
        created = self._hook.request(
            ApiRequest("POST", "/projects", json={"project": project}, parse=ProjectCreation.from_api)
        )
        secret_masking.mask_secrets(created.roles, [c.uri for c in created.connection_uris])
        return created

    # Last: a method named ``list`` would shadow the builtin in the annotations below it.
    def list(self, *, search: str | None = None) -> Iterator[Project]:
        org_id = self._hook.load().org_id
        return self._pages(
            "/projects", {}, "projects", PROJECT_PAGE_LIMIT, Project.from_api, search=search, org_id=org_id
        )
