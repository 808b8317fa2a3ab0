"""Store objects -> response bodies, shaped by the spec's schemas (one function per schema).

Kept separate from the handlers so that a spec mismatch is fixed in exactly one place.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from jambo_emulator.resources.branches import Created
from jambo_emulator.resources.organizations import USER_EMAIL
from jambo_emulator.state.clock import iso

__all__ = ["iso"]
from jambo_emulator.dataplane.base import MaskRule
from jambo_emulator.state.ids import endpoint_host, region_host
from jambo_emulator.state.records import (
    Anonymization,
    ApiKey,
    Branch,
    Bucket,
    Database,
    Endpoint,
    Operation,
    Organization,
    Permission,
    Project,
    Role,
    ScheduleItem,
    Snapshot,
)

#: The emulator's one user.
LOGICAL_SIZE = 30_785_536
SIZE_LIMIT_MIB = 512


def operation(op: Operation, now: float) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": op.id,
        "project_id": op.project_id,
        "action": op.action,
        "status": op.status,
        "failures_count": op.failures_count,
        "created_at": iso(op.created_at),
        "updated_at": iso(op.updated_at),
        "total_duration_ms": int(max(0.0, (op.finished_at or now) - op.created_at) * 1000),
    }
    if op.branch_id is not None:
        body["branch_id"] = op.branch_id
    if op.endpoint_id is not None:
        body["endpoint_id"] = op.endpoint_id
    if op.error is not None:
        body["error"] = op.error
    if op.retry_at is not None:
        body["retry_at"] = iso(op.retry_at)
    return body


def operations(ops: list[Operation], now: float) -> list[dict[str, Any]]:
    return [operation(op, now) for op in ops]


def branch(b: Branch, *, with_recovery: bool = False) -> dict[str, Any]:
    """``with_recovery``: a deleted branch's ``recovery`` info, which the spec puts only in the
    ``include_deleted=true`` listing."""
    body: dict[str, Any] = {
        "id": b.id,
        "project_id": b.project_id,
        "name": b.name,
        "current_state": b.current_state,
        "state_changed_at": iso(b.state_changed_at),
        "logical_size": LOGICAL_SIZE,
        "creation_source": b.creation_source,
        "primary": b.default,
        "default": b.default,
        "protected": b.protected,
        "cpu_used_sec": 0,
        "compute_time_seconds": 0,
        "active_time_seconds": 0,
        "written_data_bytes": 0,
        "data_transfer_bytes": 0,
        "created_at": iso(b.created_at),
        "updated_at": iso(b.updated_at),
        "init_source": b.init_source or "parent-data",
        "created_by": {"name": "emulator", "image": ""},
    }
    if b.pending_state is not None:
        body["pending_state"] = b.pending_state
    if b.parent_id is not None:
        body["parent_id"] = b.parent_id
        body["parent_lsn"] = b.parent_lsn or "0/1F4A3B8"
        if b.parent_timestamp is not None:
            body["parent_timestamp"] = iso(b.parent_timestamp)
    if b.expires_at is not None:
        body["expires_at"] = iso(b.expires_at)
    if b.ttl_interval_seconds is not None:
        body["ttl_interval_seconds"] = b.ttl_interval_seconds
    if b.last_reset_at is not None:
        body["last_reset_at"] = iso(b.last_reset_at)
    if b.restored_from is not None:
        body["restored_from"] = b.restored_from
    if b.restored_as is not None:
        body["restored_as"] = b.restored_as
    if b.restore_status is not None:
        body["restore_status"] = b.restore_status
    if with_recovery and b.deleted is not None:
        body["recovery"] = {
            "deleted_at": iso(b.deleted.at),
            "recoverable_until": iso(b.deleted.until),
            "deletion_method": b.deleted.method,
        }
    return body


def annotation(b: Branch) -> dict[str, Any]:
    created = b.annotation_created_at or b.created_at
    return {
        "object": {"type": "console/branch", "id": b.id},
        "value": dict(b.annotation or {}),
        "created_at": iso(created),
        "updated_at": iso(b.annotation_updated_at or created),
    }


def endpoint(e: Endpoint) -> dict[str, Any]:
    host = e.address.host if e.address is not None else endpoint_host(e.id, e.region_id)
    body: dict[str, Any] = {
        "host": host,
        "id": e.id,
        "project_id": e.project_id,
        "branch_id": e.branch_id,
        "autoscaling_limit_min_cu": e.min_cu,
        "autoscaling_limit_max_cu": e.max_cu,
        "region_id": e.region_id,
        "type": e.type,
        "current_state": e.current_state,
        "settings": e.settings,
        "pooler_enabled": e.pooler_enabled,
        "pooler_mode": "transaction",
        "disabled": e.disabled,
        "passwordless_access": e.passwordless_access,
        "creation_source": "console",
        "created_at": iso(e.created_at),
        "updated_at": iso(e.updated_at),
        "proxy_host": region_host(e.region_id),
        "suspend_timeout_seconds": e.suspend_timeout_seconds,
        "provisioner": e.provisioner,
    }
    if e.pending_state is not None:
        body["pending_state"] = e.pending_state
    if e.name is not None:
        body["name"] = e.name
    if e.last_active is not None:
        body["last_active"] = iso(e.last_active)
    if e.started_at is not None:
        body["started_at"] = iso(e.started_at)
    if e.suspended_at is not None:
        body["suspended_at"] = iso(e.suspended_at)
    return body


def bucket(b: Bucket) -> dict[str, Any]:
    return {"name": b.name, "access_level": b.access_level, "created_at": iso(b.created_at)}


def database(d: Database) -> dict[str, Any]:
    return {
        "id": d.id,
        "branch_id": d.branch_id,
        "name": d.name,
        "owner_name": d.owner_name,
        "created_at": iso(d.created_at),
        "updated_at": iso(d.updated_at),
    }


def role(r: Role, *, with_password: bool = False) -> dict[str, Any]:
    body: dict[str, Any] = {
        "branch_id": r.branch_id,
        "name": r.name,
        "protected": r.protected,
        "authentication_method": "no_login" if r.no_login else "password",
        "created_at": iso(r.created_at),
        "updated_at": iso(r.updated_at),
    }
    if with_password:
        body["password"] = r.password
    return body


def _project_common(p: Project) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": p.id,
        "platform_id": "aws" if p.region_id.startswith("aws-") else p.region_id.split("-", 1)[0],
        "region_id": p.region_id,
        "name": p.name,
        "provisioner": p.provisioner,
        "default_endpoint_settings": p.default_endpoint_settings,
        "settings": p.settings,
        "pg_version": p.pg_version,
        "proxy_host": region_host(p.region_id),
        "branch_logical_size_limit": SIZE_LIMIT_MIB,
        "branch_logical_size_limit_bytes": SIZE_LIMIT_MIB * 1024 * 1024,
        "store_passwords": p.store_passwords,
        "cpu_used_sec": 0,
        "creation_source": "console",
        "history_retention_seconds": p.history_retention_seconds,
        "created_at": iso(p.created_at),
        "updated_at": iso(p.updated_at),
        "synthetic_storage_size": LOGICAL_SIZE,
        "owner_id": p.owner_id,
    }
    if p.org_id is not None:
        body["org_id"] = p.org_id
    return body


def project(p: Project, now: float) -> dict[str, Any]:
    body = _project_common(p)
    period_start = now - (now % 86400)
    body.update(
        {
            "consumption_period_start": iso(period_start),
            "consumption_period_end": iso(period_start + 30 * 86400),
            "active_time_seconds": 0,
            "compute_time_seconds": 0,
            "written_data_bytes": 0,
            "data_transfer_bytes": 0,
            "data_storage_bytes_hour": 0,
            "owner": {
                "email": USER_EMAIL,
                "name": "Jambo Emulator",
                "branches_limit": 5000,
                "subscription_type": "launch",
            },
        }
    )
    return body


def project_list_item(p: Project) -> dict[str, Any]:
    body = _project_common(p)
    body["active_time"] = 0
    if p.deleted is not None:
        body["deleted_at"], body["recoverable_until"] = iso(p.deleted.at), iso(p.deleted.until)
    return body


def connection_details(e: Endpoint, db: Database, r: Role, *, pooled: bool = False) -> dict[str, Any]:
    return {
        "connection_uri": connection_uri(e, db.name, r, pooled=pooled),
        "connection_parameters": {
            "database": db.name,
            "password": r.password,
            "role": r.name,
            "host": e.address.host if e.address else endpoint_host(e.id, e.region_id),
            "pooler_host": e.address.pooler_host
            if e.address
            else endpoint_host(e.id, e.region_id, pooled=True),
        },
    }


def connection_uri(e: Endpoint, database_name: str, r: Role, *, pooled: bool = False) -> str:
    """``postgresql://role:password@host/db?sslmode=require``; a data-plane address when there is one."""
    user = f"{quote(r.name, safe='')}:{quote(r.password, safe='')}"
    db = quote(database_name, safe="")
    if e.address is not None:
        host = e.address.pooler_host if pooled else e.address.host
        query = f"?{e.address.query}" if e.address.query else ""
        return f"postgresql://{user}@{host}:{e.address.port}/{db}{query}"
    host = endpoint_host(e.id, e.region_id, pooled=pooled)
    return f"postgresql://{user}@{host}/{db}?sslmode=require"


def api_key_item(k: ApiKey) -> dict[str, Any]:
    body = {
        "id": k.id,
        "name": k.name,
        "created_at": iso(k.created_at),
        "created_by": {"id": k.created_by, "name": "Jambo Emulator", "image": ""},
        "last_used_at": iso(k.last_used_at) if k.last_used_at is not None else None,
        "last_used_from_addr": "127.0.0.1" if k.last_used_at is not None else "",
    }
    return _with_project(body, k)


def api_key_created(k: ApiKey) -> dict[str, Any]:
    body = {
        "id": k.id,
        "key": k.key,
        "name": k.name,
        "created_at": iso(k.created_at),
        "created_by": k.created_by,
    }
    return _with_project(body, k)


def api_key_revoked(k: ApiKey) -> dict[str, Any]:
    body = {
        "id": k.id,
        "name": k.name,
        "created_at": iso(k.created_at),
        "created_by": k.created_by,
        "last_used_at": iso(k.last_used_at) if k.last_used_at is not None else None,
        "last_used_from_addr": "127.0.0.1" if k.last_used_at is not None else "",
        "revoked": k.revoked,
    }
    return _with_project(body, k)


def _with_project(body: dict[str, Any], k: ApiKey) -> dict[str, Any]:
    """Org keys limited to a project say which (personal keys never carry the field)."""
    if k.project_id is not None:
        body["project_id"] = k.project_id
    return body


def organization(o: Organization) -> dict[str, Any]:
    return {
        "id": o.id,
        "name": o.name,
        "handle": o.id,
        "plan": o.plan,
        "created_at": iso(o.created_at),
        "updated_at": iso(o.updated_at),
        "managed_by": "console",
        "allow_hipaa_projects": False,
        "require_mfa": False,
    }


def member(o: Organization, user_id: str) -> dict[str, Any]:
    return {
        "id": o.member_id,
        "user_id": user_id,
        "org_id": o.id,
        "role": "admin",
        "joined_at": iso(o.created_at),
    }


def permission(p: Permission) -> dict[str, Any]:
    body = {"id": p.id, "granted_to_email": p.email, "granted_at": iso(p.granted_at)}
    if p.revoked_at is not None:
        body["revoked_at"] = iso(p.revoked_at)
    return body


def branch_created(created: Created, now: float) -> dict[str, Any]:
    """A branch create's response: the branch, its computes, operations, roles, databases, and
    (with a compute) a connection URI per database, to the read_write compute when there is one."""
    b = created.branch
    payload: dict[str, Any] = {
        "branch": branch(b),
        "endpoints": [endpoint(e) for e in created.endpoints],
        "operations": operations(created.operations, now),
        "roles": [role(r) for r in b.roles.values()],
        "databases": [database(d) for d in b.databases.values()],
    }
    if created.endpoints:
        target = next((e for e in created.endpoints if e.type == "read_write"), created.endpoints[0])
        payload["connection_uris"] = [
            connection_details(target, db, b.roles[db.owner_name])
            for db in b.databases.values()
            if db.owner_name in b.roles
        ]
    return payload


def project_created(created: Created, now: float) -> dict[str, Any]:
    """A project create's response: the project with its default branch, compute, owner role
    (with its password), database, the connection URI and the operations."""
    b, e = created.branch, created.endpoints[0]
    r, d = next(iter(b.roles.values())), next(iter(b.databases.values()))
    return {
        "project": project(created.project, now),
        "connection_uris": [connection_details(e, d, r)],
        "roles": [role(r, with_password=True)],
        "databases": [database(d)],
        "operations": operations(created.operations, now),
        "branch": branch(b),
        "endpoints": [endpoint(e)],
    }


def mask_rule(rule: MaskRule) -> dict[str, str]:
    body = {
        "database_name": rule.database,
        "schema_name": rule.schema,
        "table_name": rule.table,
        "column_name": rule.column,
    }
    if rule.function is not None:
        body["masking_function"] = rule.function
    if rule.value is not None:
        body["masking_value"] = rule.value
    return body


def anonymized_status(project_id: str, branch_id: str, anon: Anonymization, user_id: str) -> dict[str, Any]:
    """``AnonymizedBranchStatusResponse`` (runs are triggered by the emulator's one user)."""
    body: dict[str, Any] = {
        "project_id": project_id,
        "branch_id": branch_id,
        "state": anon.state,
        "created_at": iso(anon.created_at),
        "updated_at": iso(anon.updated_at),
    }
    if anon.status_message:
        body["status_message"] = anon.status_message
    if anon.failed_at is not None:
        body["failed_at"] = iso(anon.failed_at)
    run = anon.run
    if run is not None:
        last_run: dict[str, Any] = {"started_at": iso(run.started_at), "triggered_by": user_id}
        if run.completed_at is not None:
            last_run["completed_at"] = iso(run.completed_at)
            last_run["masked_columns"] = 0 if run.effect_error else len(run.rules)
        body["last_run"] = last_run
    return body


def snapshot(s: Snapshot) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": s.id,
        "name": s.name,
        "source_branch_id": s.source_branch_id,
        "created_at": iso(s.created_at),
        "timestamp": iso(s.timestamp),
        "manual": s.manual,
    }
    if s.lsn is not None:
        body["lsn"] = s.lsn
    if s.expires_at is not None:
        body["expires_at"] = iso(s.expires_at)
    return body


def schedule_item(item: ScheduleItem) -> dict[str, Any]:
    body: dict[str, Any] = {"frequency": item.frequency, "hour": item.hour}
    for name in ("day", "month", "retention_seconds"):
        value = getattr(item, name)
        if value is not None:
            body[name] = value
    return body
