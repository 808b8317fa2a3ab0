"""Request bodies as the spec describes them (pydantic, strict types; validation errors become 400s).

The spec never forbids extra fields (no ``additionalProperties: false`` in these schemas), so
unknown fields are accepted and ignored. A field the spec does not mark ``nullable`` rejects an
explicit ``null``.
"""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any, ClassVar, Literal, Protocol, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints, model_validator

from jambo_emulator.resources.branches import BranchSpec, BranchUpdate, RestoreSpec
from jambo_emulator.resources.endpoints import EndpointSpec, EndpointUpdate
from jambo_emulator.resources.projects import ProjectSpec, ProjectUpdate
from jambo_emulator.resources.snapshots import SnapshotRestoreSpec, SnapshotSpec, SnapshotUpdate
from jambo_emulator.state.clock import parse_timestamp
from jambo_emulator.state.ids import ID_PATTERN
from jambo_emulator.state.records import ScheduleItem


class _Dataclass(Protocol):
    """Any dataclass (what ``dataclasses.fields`` accepts)."""

    __dataclass_fields__: ClassVar[dict[str, Any]]


T = TypeVar("T", bound=_Dataclass)

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

    def into(self, cls: type[T], **values: Any) -> T:
        """The resource's spec dataclass ``cls`` from the fields of the same names that were
        given (nested models as plain dicts without nulls); ``values`` add or override fields."""
        names = {f.name for f in dataclasses.fields(cls)}
        dumped = self.model_dump(include=names - values.keys(), exclude_none=True)
        return cls(**dumped, **values)


def _timestamp(value: str | None, field_name: str) -> float | None:
    return parse_timestamp(value, field_name) if value is not None else None


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

    def to_spec(self) -> EndpointSpec:
        return self.into(EndpointSpec)


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

    def to_spec(self) -> BranchSpec:
        fields = self.branch or BranchFields()
        return fields.into(
            BranchSpec,
            parent_timestamp=_timestamp(fields.parent_timestamp, "branch.parent_timestamp"),
            expires_at=_timestamp(fields.expires_at, "branch.expires_at"),
            annotation=self.annotation_value,
            endpoints=[options.to_spec() for options in self.endpoints or []],
        )


class BranchUpdateFields(Body):
    nullable = frozenset({"expires_at"})
    name: BranchName | None = None
    protected: bool | None = None
    expires_at: str | None = None


class BranchUpdateBody(Body):
    branch: BranchUpdateFields

    def to_change(self) -> BranchUpdate:
        fields = self.branch
        return fields.into(
            BranchUpdate,
            expires_at_given=fields.given("expires_at"),
            expires_at=_timestamp(fields.expires_at, "branch.expires_at"),
        )


class BranchRestoreBody(Body):
    source_branch_id: Id
    source_lsn: str | None = None
    source_timestamp: str | None = None
    preserve_under_name: str | None = None

    def to_spec(self) -> RestoreSpec:
        return self.into(
            RestoreSpec,
            source_timestamp=_timestamp(self.source_timestamp, "source_timestamp"),
            # An empty name preserves nothing, as no name does.
            preserve_under_name=self.preserve_under_name or None,
        )


class MaskingRuleBody(Body):
    database_name: str
    schema_name: str
    table_name: str
    column_name: str
    masking_function: str | None = None
    masking_value: str | None = None


class BranchAnonymizedCreateBody(Body):
    annotation_value: Annotated[dict[str, str], Field(max_length=50)] | None = None
    branch_create: BranchCreateBody | None = None
    masking_rules: list[MaskingRuleBody] | None = None
    start_anonymization: bool | None = None

    def branch_spec(self) -> BranchSpec:
        """The inner branch create, with the outer ``annotation_value`` when one is given."""
        inner = self.branch_create or BranchCreateBody()
        if self.annotation_value is not None:
            inner = inner.model_copy(update={"annotation_value": self.annotation_value})
        return inner.to_spec()


class MaskingRulesUpdateBody(Body):
    masking_rules: list[MaskingRuleBody]


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

    def to_change(self) -> ProjectUpdate:
        return self.project.into(ProjectUpdate)


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

    def to_spec(self) -> ProjectSpec:
        fields = self.project
        branch = fields.branch or ProjectBranchFields()
        defaults = (
            fields.default_endpoint_settings.model_dump(exclude_none=True)
            if fields.default_endpoint_settings
            else {}
        )
        # Deprecated top-level compute limits still count when the new settings do not say otherwise.
        if fields.autoscaling_limit_min_cu is not None:
            defaults.setdefault("autoscaling_limit_min_cu", fields.autoscaling_limit_min_cu)
        if fields.autoscaling_limit_max_cu is not None:
            defaults.setdefault("autoscaling_limit_max_cu", fields.autoscaling_limit_max_cu)
        return fields.into(
            ProjectSpec,
            branch_name=branch.name or "main",
            role_name=branch.role_name,
            database_name=branch.database_name or "neondb",
            annotations=branch.annotations,
            default_endpoint_settings=defaults,
        )


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

    def to_spec(self) -> EndpointSpec:
        return self.endpoint.into(EndpointSpec)


class EndpointUpdateFields(_EndpointFields):
    branch_id: Id | None = None


class EndpointUpdateBody(Body):
    endpoint: EndpointUpdateFields

    def to_change(self) -> EndpointUpdate:
        return self.endpoint.into(EndpointUpdate)


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


class SnapshotQuery(Body):
    """``createSnapshot``'s query parameters (the spec puts them in the query, not a body)."""

    lsn: str | None = None
    timestamp: str | None = None
    name: str | None = None
    expires_at: str | None = None

    def to_spec(self) -> SnapshotSpec:
        return self.into(
            SnapshotSpec,
            timestamp=_timestamp(self.timestamp, "timestamp"),
            expires_at=_timestamp(self.expires_at, "expires_at"),
        )


class SnapshotUpdateFields(Body):
    nullable = frozenset({"expires_at"})
    name: str | None = None
    expires_at: str | None = None


class SnapshotUpdateBody(Body):
    snapshot: SnapshotUpdateFields

    def to_change(self) -> SnapshotUpdate:
        fields = self.snapshot
        return fields.into(
            SnapshotUpdate,
            expires_at_given=fields.given("expires_at"),
            expires_at=_timestamp(fields.expires_at, "snapshot.expires_at"),
        )


class SnapshotRestoreBody(Body):
    name: str | None = None
    target_branch_id: Id | None = None
    finalize_restore: bool = False

    def to_spec(self, deprecated_name: str | None = None) -> SnapshotRestoreSpec:
        """``deprecated_name``: the query's ``name`` (the body's wins)."""
        return self.into(SnapshotRestoreSpec, name=self.name if self.name is not None else deprecated_name)


class FinalizeRestoreBody(Body):
    name: str | None = None


class BackupScheduleItemBody(Body):
    frequency: str
    hour: Annotated[int, Field(ge=0, le=23)] = 0
    day: Annotated[int, Field(ge=1, le=31)] | None = None
    month: Annotated[int, Field(ge=1, le=12)] | None = None
    retention_seconds: Annotated[int, Field(ge=3600)] | None = None

    def to_spec(self) -> ScheduleItem:
        return self.into(ScheduleItem)


class BackupScheduleBody(Body):
    schedule: list[BackupScheduleItemBody]

    def to_spec(self) -> list[ScheduleItem]:
        return [item.to_spec() for item in self.schedule]
