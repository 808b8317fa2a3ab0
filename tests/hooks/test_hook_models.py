"""Parsed models tolerate unknown fields and enum values and never show passwords."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from airflow_provider_jambo.api_models import (
    Branch,
    BranchCreation,
    ConnectionDetails,
    Endpoint,
    Operation,
    OperationStatus,
    Role,
    parse_datetime,
)


def test_operation_status_unknown_value_falls_back() -> None:
    assert OperationStatus("finished") is OperationStatus.FINISHED
    assert OperationStatus("teleporting") is OperationStatus.UNKNOWN
    assert OperationStatus(None) is OperationStatus.UNKNOWN
    assert OperationStatus.UNKNOWN.is_in_flight
    assert not OperationStatus.FAILED.is_failure  # the service may still retry it
    assert {s for s in OperationStatus if s.is_success} == {OperationStatus.FINISHED, OperationStatus.SKIPPED}
    assert {s for s in OperationStatus if s.is_failure} == {OperationStatus.ERROR, OperationStatus.CANCELLED}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2022-11-30T18:25:15Z", datetime(2022, 11, 30, 18, 25, 15, tzinfo=UTC)),
        ("2022-12-07T00:45:05.262011Z", datetime(2022, 12, 7, 0, 45, 5, 262011, tzinfo=UTC)),
        ("2022-12-07T00:45:05.2Z", datetime(2022, 12, 7, 0, 45, 5, 200000, tzinfo=UTC)),
        ("2022-12-07T00:45:05.123456789+00:00", datetime(2022, 12, 7, 0, 45, 5, 123456, tzinfo=UTC)),
        ("2022-12-07T00:45:05", datetime(2022, 12, 7, 0, 45, 5, tzinfo=UTC)),
        ("not a date", None),
        (None, None),
    ],
)
def test_parse_datetime(text: str | None, expected: datetime | None) -> None:
    assert parse_datetime(text) == expected


def test_operation_from_api_tolerates_unknown_fields_and_actions() -> None:
    raw = {
        "id": "0b1c", "project_id": "p", "branch_id": "br-a", "action": "brand_new_action",
        "status": "weird", "failures_count": 2, "retry_at": "2024-01-01T00:00:00Z",
        "created_at": "2024-01-01T00:00:00Z", "updated_at": "2024-01-01T00:00:01Z",
        "total_duration_ms": 5, "new_field": {"x": 1},
    }  # fmt: skip
    op = Operation.from_api(raw)
    assert op.action == "brand_new_action"
    assert op.status is OperationStatus.UNKNOWN
    assert op.retry_at == datetime(2024, 1, 1, tzinfo=UTC)
    assert op.raw["new_field"] == {"x": 1}
    assert "brand_new_action" in op.describe()
    assert "br-a" in op.describe()


def test_branch_and_endpoint_parse_minimal_and_deprecated_fields() -> None:
    branch = Branch.from_api({"id": "br-a", "project_id": "p", "name": "main", "primary": True})
    assert branch.default
    assert branch.current_state == "unknown"
    assert not branch.is_ready
    ready = Branch.from_api({"id": "br-b", "name": "x", "current_state": "ready", "default": False})
    assert ready.is_ready
    ep = Endpoint.from_api(
        {"id": "ep-a", "branch_id": "br-a", "type": "read_write", "host": "ep-a.us-east-2.aws.neon.tech",
         "autoscaling_limit_min_cu": 0.25, "autoscaling_limit_max_cu": 2}
    )  # fmt: skip
    assert ep.pooled_host == "ep-a-pooler.us-east-2.aws.neon.tech"
    assert (ep.min_cu, ep.max_cu) == (0.25, 2)


def test_role_password_not_in_repr_or_raw() -> None:
    role = Role.from_api({"branch_id": "br-a", "name": "alice", "password": "Pa55-secret-word"})
    assert role.password == "Pa55-secret-word"
    assert "Pa55-secret-word" not in repr(role)
    assert "password" not in role.raw


def test_branch_creation_hides_connection_uris() -> None:
    body = {
        "branch": {"id": "br-a", "name": "dev"},
        "endpoints": [{"id": "ep-ro", "type": "read_only"}, {"id": "ep-rw", "type": "read_write"}],
        "operations": [{"id": "o1", "status": "running", "action": "create_branch"}],
        "roles": [{"name": "owner", "password": "Pa55-secret-word"}],
        "connection_uris": [
            {
                "connection_uri": "postgresql://owner:Pa55-secret-word@ep-rw.host/db?sslmode=require",
                "connection_parameters": {"host": "ep-rw.host", "database": "db", "role": "owner"},
            }
        ],
    }
    creation = BranchCreation.from_api(body)
    assert creation.read_write_endpoint is not None
    assert creation.read_write_endpoint.id == "ep-rw"
    assert creation.connection_uris[0].password == "Pa55-secret-word"
    assert "Pa55-secret-word" not in repr(creation)
    assert [op.status for op in creation.operations] == [OperationStatus.RUNNING]
    assert ConnectionDetails.from_api({}).password is None


@pytest.mark.parametrize(
    ("raw", "schema_only_root"),
    [
        ({"parent_id": None, "init_source": "schema-only"}, True),
        ({"init_source": "schema-only"}, True),
        ({}, True),  # a non-default root that does not say how it was made
        ({"init_source": "parent-data"}, False),  # e.g. the first branch of an imported project
        ({"default": True, "init_source": "parent-data"}, False),
        ({"primary": True}, False),  # the default branch, in the deprecated spelling
        ({"parent_id": "br-main", "init_source": "schema-only"}, False),
    ],
)
def test_branch_schema_only_root(raw: dict[str, object], schema_only_root: bool) -> None:
    branch = Branch.from_api({"id": "br-x", "project_id": "p", "name": "x", **raw})
    assert branch.is_schema_only_root is schema_only_root
    assert branch.init_source == raw.get("init_source")


@pytest.mark.parametrize(
    ("status", "retry_at", "pending", "failed"),
    [
        ("scheduling", None, True, False),
        ("running", None, True, False),
        ("cancelling", None, True, False),
        ("teleporting", None, True, False),  # unknown: the service may still be working on it
        ("failed", "2026-06-01T12:00:05Z", True, False),  # the service retries it at retry_at
        ("failed", None, False, True),
        ("error", None, False, True),
        ("cancelled", None, False, True),
        ("finished", None, False, False),
        ("skipped", None, False, False),
    ],
)
def test_one_definition_of_a_pending_operation(
    status: str, retry_at: str | None, pending: bool, failed: bool
) -> None:
    op = Operation.from_api({"id": "op-1", "project_id": "p", "status": status, "retry_at": retry_at})
    assert op.is_pending is pending
    assert op.is_failed is failed
    assert op.is_succeeded is (not pending and not failed)


def test_trigger_events_are_built_and_parsed_in_one_place() -> None:
    from airflow_provider_jambo.triggers.operation_events import operation_event, parse_operation_event

    event = operation_event("timeout", ("op-1", "op-2"), "still running")
    assert event == {"status": "timeout", "operation_ids": ["op-1", "op-2"], "message": "still running"}
    assert parse_operation_event(dict(event)) == event
    # What comes back from the metadata database is not trusted to be well formed.
    assert parse_operation_event({"status": "weird", "operation_ids": None}) == {
        "status": "error",
        "operation_ids": [],
        "message": "",
    }
