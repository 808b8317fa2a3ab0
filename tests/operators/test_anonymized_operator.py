"""JamboCreateAnonymizedBranchOperator against the emulator: parse-time rule checks, the sync and
deferred paths, all-or-nothing on failure, and adopting an existing branch only when anonymized."""

from __future__ import annotations

from typing import Any

import pytest
from airflow.providers.common.compat.sdk import TaskDeferred
from jambo_support import JamboProject, make_context
from operators.deferral import defer, resume, roundtrip, run_trigger

from airflow_provider_jambo.create_branch_request import CreateBranchRequest
from airflow_provider_jambo.exceptions import (
    JamboConfigError,
    JamboOperationFailedError,
    JamboOperationTimeoutError,
)
from airflow_provider_jambo.masking_rules import MaskingRule, check_masking_rules
from airflow_provider_jambo.operators.anonymized_branch_operator import JamboCreateAnonymizedBranchOperator
from airflow_provider_jambo.triggers.anonymization_trigger import JamboAnonymizationTrigger
from airflow_provider_jambo.triggers.operation_trigger import JamboOperationTrigger

EMAIL = {
    "database_name": "neondb",
    "schema_name": "public",
    "table_name": "customers",
    "column_name": "email",
    "masking_function": "anon.fake_email()",
}
NAME = {**EMAIL, "column_name": "name", "masking_function": "anon.fake_first_name()"}


def _operator(**kwargs: Any) -> JamboCreateAnonymizedBranchOperator:
    kwargs.setdefault("masking_rules", [EMAIL, NAME])
    return JamboCreateAnonymizedBranchOperator(task_id="anon", branch_name="preview-anon", **kwargs)


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        ([], "non-empty list"),
        ("anon.fake_email()", "non-empty list"),
        (
            [{**EMAIL, "masking_function": "anon.fake_emial()"}],
            "unknown PostgreSQL Anonymizer function 'anon.fake_emial'",
        ),
        ([{**EMAIL, "masking_function": "fake_email"}], "not a function call"),
        ([{k: v for k, v in EMAIL.items() if k != "table_name"}], r"masking_rules\[0\].table_name"),
        ([{**EMAIL, "masking_value": "x"}], "exactly one of masking_function and masking_value"),
        (
            [EMAIL, {**EMAIL, "masking_function": "NULL"}],
            "a second rule for column neondb.public.customers.email",
        ),
        ([{**EMAIL, "colum_name": "x"}], "unknown keys"),
    ],
)
def test_bad_rules_fail_when_the_dag_is_parsed(rules: Any, message: str) -> None:
    with pytest.raises(JamboConfigError, match=message):
        _operator(masking_rules=rules)


def test_templated_rules_are_checked_at_run_time_and_wait_for_completion_is_required() -> None:
    _operator(masking_rules="{{ params.rules }}")  # not known yet: no error at parse time
    with pytest.raises(JamboConfigError, match="wait_for_completion=False is not allowed"):
        _operator(wait_for_completion=False)


def test_rules_accept_dataclasses_and_null_and_constants() -> None:
    rules = check_masking_rules(
        [
            MaskingRule(**EMAIL),
            {**NAME, "masking_function": "NULL"},
            {**EMAIL, "column_name": "note", "masking_function": None, "masking_value": "redacted"},
        ]
    )
    assert [r.masking_value for r in rules] == [None, None, "redacted"]


def test_sync_creates_anonymizes_and_returns_only_then(jambo_project: JamboProject) -> None:
    emu = jambo_project.emu
    result = _operator().execute(make_context())
    assert result is not None
    assert result["created"] is True
    assert result["masked_columns"] == 2
    assert result["parent_id"] == jambo_project.default_branch_id
    hook = jambo_project.hook()
    assert hook.anonymization.get_status(result["branch_id"]).state == "anonymized"
    assert set(hook.anonymization.get_masking_rules(result["branch_id"])) == {
        MaskingRule(**EMAIL),
        MaskingRule(**NAME),
    }
    posts = [r["route"] for r in emu.requests() if r["method"] == "POST" and r["route"] != "/projects"]
    assert posts == ["/projects/{project_id}/branch_anonymized"]  # one create, no separate anonymize


def test_deferrable_waits_in_two_triggers(jambo_project: JamboProject) -> None:
    # No inline grace: the create's own operations are waited for in a trigger too.
    op = _operator(deferrable=True, defer_grace_seconds=0)
    context = make_context()
    first = defer(op, context)
    assert isinstance(first.trigger, JamboOperationTrigger)
    with pytest.raises(TaskDeferred) as second:
        resume(op, context, first)
    trigger = second.value.trigger
    assert isinstance(trigger, JamboAnonymizationTrigger)
    assert jambo_project.emu.api_key not in str(trigger.serialize())
    # Like every deferral, it carries the settle hold against Airflow's deferral race.
    assert trigger.not_before is not None
    assert roundtrip(trigger).serialize() == trigger.serialize()
    result = resume(op, context, second.value)
    assert result["masked_columns"] == 2
    assert jambo_project.hook().anonymization.get_status(result["branch_id"]).state == "anonymized"


def test_a_failed_anonymization_fails_and_deletes_the_branch(jambo_project: JamboProject) -> None:
    op = _operator(masking_rules=[{**EMAIL, "database_name": "nodb"}])
    with pytest.raises(JamboOperationFailedError, match=r"anonymization failed: .*nodb"):
        op.execute(make_context())
    assert jambo_project.branch_named("preview-anon") is None


def test_a_failed_anonymization_deferred_also_deletes_the_branch(jambo_project: JamboProject) -> None:
    op = _operator(masking_rules=[{**EMAIL, "database_name": "nodb"}], deferrable=True, defer_grace_seconds=0)
    context = make_context()
    with pytest.raises(TaskDeferred) as second:
        resume(op, context, defer(op, context))
    event = run_trigger(roundtrip(second.value.trigger))
    assert (event.payload["status"], event.payload["state"]) == ("failed", "error")
    with pytest.raises(JamboOperationFailedError, match=r"anonymization failed: .*nodb"):
        op.resume_execution(
            second.value.method_name, {**(second.value.kwargs or {}), "event": event.payload}, context
        )
    assert jambo_project.branch_named("preview-anon") is None


def test_a_failed_create_deletes_the_branch(jambo_project: JamboProject) -> None:
    jambo_project.emu.set_operation_outcome("create_branch", "error")
    with pytest.raises(JamboOperationFailedError, match=r"create_branch .* error"):
        _operator().execute(make_context())
    assert jambo_project.branch_named("preview-anon") is None


def test_a_timeout_deletes_the_branch(jambo_project: JamboProject) -> None:
    jambo_project.emu.set_operation_durations(anonymize=3600.0)
    with pytest.raises(JamboOperationTimeoutError, match=r"still anonymizing"):
        _operator(timeout=1.0, poll_interval=0.2).execute(make_context())
    assert jambo_project.branch_named("preview-anon") is None


def test_an_existing_plain_branch_is_refused_and_kept(jambo_project: JamboProject) -> None:
    hook = jambo_project.hook()
    plain = hook.branches.create(
        CreateBranchRequest(name="preview-anon", parent_id=jambo_project.default_branch_id)
    )
    with pytest.raises(JamboConfigError, match="not an anonymized branch"):
        _operator().execute(make_context())
    assert jambo_project.branch_named("preview-anon").id == plain.branch.id


def test_an_anonymized_branch_is_adopted_and_reanonymized_with_new_rules(jambo_project: JamboProject) -> None:
    first = _operator(masking_rules=[EMAIL]).execute(make_context())
    assert first is not None
    again = _operator().execute(make_context(try_number=2))
    assert again is not None
    assert (again["branch_id"], again["created"]) == (first["branch_id"], False)
    assert again["masked_columns"] == 2
    hook = jambo_project.hook()
    assert set(hook.anonymization.get_masking_rules(first["branch_id"])) == {
        MaskingRule(**EMAIL),
        MaskingRule(**NAME),
    }


def test_a_lost_create_response_adopts_the_branch_instead_of_a_second_create(
    jambo_project: JamboProject,
) -> None:
    emu = jambo_project.emu
    emu.inject_fault(
        "POST", "/projects/{project_id}/branch_anonymized", faults=[{"kind": "drop_after_apply"}], times=1
    )
    creation = jambo_project.hook().branches.create(
        CreateBranchRequest(
            name="lost-answer", parent_id=jambo_project.default_branch_id, masking_rules=[EMAIL]
        )
    )
    assert creation.created is True
    assert [b.name for b in jambo_project.branches()].count("lost-answer") == 1
    posts = [r for r in emu.requests() if r["route"] == "/projects/{project_id}/branch_anonymized"]
    assert len(posts) == 1  # looked up by name, never re-sent
