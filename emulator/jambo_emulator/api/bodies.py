"""Request bodies as the spec describes them (pydantic, strict types; validation errors become 400s).

The spec never forbids extra fields (no ``additionalProperties: false`` in these schemas), so
unknown fields are accepted and ignored. A field the spec does not mark ``nullable`` rejects an
explicit ``null``.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints, model_validator

ID_PATTERN = r"^[a-z0-9-]{1,60}$"
Id = Annotated[str, StringConstraints(pattern=ID_PATTERN)]
ComputeUnit = Annotated[float, Field(ge=0.25)]
SuspendTimeout = Annotated[int, Field(ge=-1, le=604800)]
PgName = Annotated[str, StringConstraints(min_length=1, max_length=63)]
BranchName = Annotated[str, StringConstraints(min_length=1, max_length=256)]
ProjectName = Annotated[str, StringConstraints(min_length=1, max_length=256)]
EndpointName = Annotated[str, StringConstraints(min_length=1, max_length=64)]


class Body(BaseModel):
    model_config = ConfigDict(strict=True, extra="allow")
    #: Fields whose schema says ``nullable: true``.
    nullable: ClassVar[frozenset[str]] = frozenset()

    @model_validator(mode="before")
    @classmethod
    def _no_nulls(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for name, value in data.items():
                if value is None and name in cls.model_fields and name not in cls.nullable:
                    raise ValueError(f"{name} must not be null")
        return data

    def given(self, name: str) -> bool:
        return name in self.model_fields_set


class PreloadLibraries(Body):
    use_defaults: bool | None = None
    enabled_libraries: list[str] | None = None


class AllowedIps(Body):
    ips: list[str] | None = None
    protected_branches_only: bool | None = None


Int64 = Annotated[int, Field(ge=0, le=2**63 - 1)]  # format: int64, minimum: 0


class ProjectQuota(Body):
    active_time_seconds: Int64 | None = None
    compute_time_seconds: Int64 | None = None
    written_data_bytes: Int64 | None = None
    data_transfer_bytes: Int64 | None = None
    logical_size_bytes: Int64 | None = None


class MaintenanceWindow(Body):
    weekdays: list[int]
    start_time: str
    end_time: str


class ProjectSettings(Body):
    """ProjectSettingsData: checked on the way in because the project echoes it back verbatim."""

    quota: ProjectQuota | None = None
    allowed_ips: AllowedIps | None = None
    enable_logical_replication: bool | None = None
    maintenance_window: MaintenanceWindow | None = None
    block_public_connections: bool | None = None
    block_vpc_connections: bool | None = None
    audit_log_level: Literal["base", "extended", "full"] | None = None
    hipaa: bool | None = None
    preload_libraries: PreloadLibraries | None = None


def _checked_project_settings(value: Any) -> Any:
    # Validate against ProjectSettings, keep the plain dict the store holds.
    if isinstance(value, dict):
        return ProjectSettings.model_validate(value).model_dump(exclude_none=True)
    return value


ProjectSettingsDict = Annotated[dict[str, Any], BeforeValidator(_checked_project_settings)]


class _PgSettings(Body):
    pg_settings: dict[str, str] | None = None
    pgbouncer_settings: dict[str, str] | None = None


class _ComputeSize(Body):
    """Size and auto-suspend of a compute, in every schema that configures one."""

    autoscaling_limit_min_cu: ComputeUnit | None = None
    autoscaling_limit_max_cu: ComputeUnit | None = None
    suspend_timeout_seconds: SuspendTimeout | None = None


class EndpointSettings(_PgSettings):
    preload_libraries: PreloadLibraries | None = None


class DefaultEndpointSettings(_PgSettings, _ComputeSize):
    pass


class BranchEndpointOptions(_ComputeSize):
    type: Literal["read_only", "read_write"]
    settings: EndpointSettings | None = None
    provisioner: str | None = None


class BranchFields(Body):
    parent_id: Id | None = None
    name: BranchName | None = None
    parent_lsn: str | None = None
    parent_timestamp: str | None = None
    protected: bool | None = None
    archived: bool | None = None
    init_source: str | None = None
    expires_at: str | None = None


class BranchCreateBody(Body):
    endpoints: list[BranchEndpointOptions] | None = None
    branch: BranchFields | None = None
    annotation_value: Annotated[dict[str, str], Field(max_length=50)] | None = None


class BranchUpdateFields(Body):
    nullable = frozenset({"expires_at"})
    name: BranchName | None = None
    protected: bool | None = None
    expires_at: str | None = None


class BranchUpdateBody(Body):
    branch: BranchUpdateFields


class BranchRestoreBody(Body):
    source_branch_id: Id
    source_lsn: str | None = None
    source_timestamp: str | None = None
    preserve_under_name: str | None = None


class ProjectBranchFields(Body):
    name: BranchName | None = None
    role_name: PgName | None = None
    database_name: PgName | None = None
    annotations: Annotated[dict[str, str], Field(max_length=50)] | None = None


class ProjectUpdateFields(Body):
    settings: ProjectSettingsDict | None = None
    name: ProjectName | None = None
    default_endpoint_settings: DefaultEndpointSettings | None = None
    history_retention_seconds: Annotated[int, Field(ge=0, le=2592000)] | None = None


class ProjectUpdateBody(Body):
    project: ProjectUpdateFields


class ProjectFields(ProjectUpdateFields):
    """A create takes everything an update does, and what only a new project can choose."""

    branch: ProjectBranchFields | None = None
    autoscaling_limit_min_cu: ComputeUnit | None = None
    autoscaling_limit_max_cu: ComputeUnit | None = None
    provisioner: str | None = None
    region_id: str | None = None
    pg_version: Annotated[int, Field(ge=14, le=18)] | None = None
    store_passwords: bool | None = None
    org_id: Id | None = None


class ProjectCreateBody(Body):
    project: ProjectFields


class _EndpointFields(_ComputeSize):
    """What both an endpoint create and an update may set."""

    settings: EndpointSettings | None = None
    provisioner: str | None = None
    pooler_enabled: bool | None = None
    pooler_mode: Literal["transaction"] | None = None
    disabled: bool | None = None
    passwordless_access: bool | None = None
    name: EndpointName | None = None


class EndpointCreateFields(_EndpointFields):
    branch_id: Id
    region_id: str | None = None
    type: Literal["read_only", "read_write"]


class EndpointCreateBody(Body):
    endpoint: EndpointCreateFields


class EndpointUpdateFields(_EndpointFields):
    branch_id: Id | None = None


class EndpointUpdateBody(Body):
    endpoint: EndpointUpdateFields


class DatabaseFields(Body):
    name: PgName
    owner_name: PgName


class DatabaseCreateBody(Body):
    database: DatabaseFields


class RoleFields(Body):
    name: PgName
    no_login: bool | None = None


class RoleCreateBody(Body):
    role: RoleFields


class BucketCreateBody(Body):
    name: Annotated[str, StringConstraints(min_length=1, max_length=255)]
    access_level: Literal["private", "public_read"] | None = None


class ApiKeyCreateBody(Body):
    key_name: Annotated[str, StringConstraints(max_length=64)]


class OrgApiKeyCreateBody(ApiKeyCreateBody):
    project_id: Id | None = None


class DatabaseUpdateFields(Body):
    name: PgName | None = None
    owner_name: PgName | None = None


class DatabaseUpdateBody(Body):
    database: DatabaseUpdateFields


class PermissionGrantBody(Body):
    email: Annotated[str, StringConstraints(min_length=3, max_length=256, pattern=r"^[^@\s]+@[^@\s]+$")]
