"""Anonymized branches in the emulator, validated against the spec like test_contract.py.

The five operations (create, masking rules get/replace, anonymize, status), the state machine
``created -> initialized -> anonymizing -> anonymized`` (or ``initialization_error``/``error``
with a status message), the 400s for what the emulator cannot run, and that an anonymized branch
deletes like any other. The masking itself (data plane on) is tested in emulator/tests/dataplane.
"""

from __future__ import annotations

from typing import Any

import test_contract as contract
from test_contract import ContractClient, covered, new_project, settle

from jambo_emulator import JamboEmulator

# The contract tests' fixtures (pytest registers them by their own names: spec, emu, api).
spec, emu, api = contract.spec, contract.emu, contract.api

OPERATIONS = (
    "createProjectBranchAnonymized",
    "getMaskingRules",
    "updateMaskingRules",
    "startAnonymization",
    "getAnonymizedBranchStatus",
)
EMAIL_RULE = {
    "database_name": "neondb",
    "schema_name": "public",
    "table_name": "customers",
    "column_name": "email",
    "masking_function": "anon.fake_email()",
}
NAME_RULE = {**EMAIL_RULE, "column_name": "name", "masking_function": "anon.fake_first_name()"}


def _create(api: ContractClient, pid: str, **extra: Any) -> dict[str, Any]:
    body = {
        "branch_create": {"branch": {"name": "anon-preview"}, "endpoints": [{"type": "read_write"}]},
        "masking_rules": [EMAIL_RULE],
        **extra,
    }
    created: dict[str, Any] = api.call("POST", f"/projects/{pid}/branch_anonymized", json=body, expect=201)
    return created


def _status(api: ContractClient, pid: str, bid: str) -> dict[str, Any]:
    body: dict[str, Any] = api.call("GET", f"/projects/{pid}/branches/{bid}/anonymized_status", expect=200)
    return body


def test_the_five_operations_and_the_state_machine(api: ContractClient, emu: JamboEmulator) -> None:
    pid = new_project(api, emu)["project"]["id"]
    emu.set_operation_durations(default=2.0, anonymize=3.0)
    created = _create(api, pid, annotation_value={"pr": "42"})
    bid = created["branch"]["id"]
    # A branch create's operations (the spec's enum has no anonymization action) and its endpoint.
    assert [op["action"] for op in created["operations"]] == ["create_branch", "start_compute"]
    assert created["connection_uris"]
    body = api.call("GET", f"/projects/{pid}/branches/{bid}", expect=200)
    assert body["annotation"]["value"] == {"pr": "42"}

    assert _status(api, pid, bid)["state"] == "created"
    rules = api.call("GET", f"/projects/{pid}/branches/{bid}/masking_rules", expect=200)
    assert rules == {"masking_rules": [EMAIL_RULE]}

    emu.advance(2.0)  # create_branch finished: initialized, nothing masked yet
    status = _status(api, pid, bid)
    assert status["state"] == "initialized"
    assert "last_run" not in status

    replaced = api.call(
        "PATCH",
        f"/projects/{pid}/branches/{bid}/masking_rules",
        json={"masking_rules": [EMAIL_RULE, NAME_RULE]},
        expect=200,
    )
    assert replaced == {"masking_rules": [EMAIL_RULE, NAME_RULE]}

    started = api.call("POST", f"/projects/{pid}/branches/{bid}/anonymize", expect=200)
    assert started["state"] == "anonymizing"
    assert "2 column(s)" in started["status_message"]
    assert "completed_at" not in started["last_run"]
    # Not again while it runs.
    again = api.call("POST", f"/projects/{pid}/branches/{bid}/anonymize", expect=400)
    assert "is anonymizing" in again["message"]

    emu.advance(3.0)
    done = _status(api, pid, bid)
    assert done["state"] == "anonymized"
    assert done["last_run"]["masked_columns"] == 2
    assert done["last_run"]["completed_at"] >= done["last_run"]["started_at"]
    # An anonymized branch may be anonymized again (e.g. after new rules).
    assert api.call("POST", f"/projects/{pid}/branches/{bid}/anonymize", expect=200)["state"] == "anonymizing"
    covered(api, OPERATIONS)


def test_start_anonymization_runs_once_the_branch_is_initialized(
    api: ContractClient, emu: JamboEmulator
) -> None:
    pid = new_project(api, emu)["project"]["id"]
    emu.set_operation_durations(default=1.0, anonymize=1.0)
    created = _create(api, pid, start_anonymization=True)
    bid = created["branch"]["id"]
    assert _status(api, pid, bid)["state"] == "created"
    settle(api, emu, pid, created["operations"][:1])
    assert _status(api, pid, bid)["state"] == "anonymizing"
    emu.advance(1.0)
    assert _status(api, pid, bid)["state"] == "anonymized"


def test_a_run_that_cannot_mask_ends_in_error_with_a_message(api: ContractClient, emu: JamboEmulator) -> None:
    pid = new_project(api, emu)["project"]["id"]
    rule = {**EMAIL_RULE, "database_name": "nodb"}
    bid = _create(api, pid, masking_rules=[rule], start_anonymization=True)["branch"]["id"]
    emu.advance(1.0)
    status = _status(api, pid, bid)
    assert status["state"] == "error"
    assert "nodb" in status["status_message"]
    assert status["failed_at"]
    assert status["last_run"]["masked_columns"] == 0
    # error -> fix the rules -> anonymize again.
    api.call(
        "PATCH",
        f"/projects/{pid}/branches/{bid}/masking_rules",
        json={"masking_rules": [EMAIL_RULE]},
        expect=200,
    )
    api.call("POST", f"/projects/{pid}/branches/{bid}/anonymize", expect=200)
    emu.advance(1.0)
    status = _status(api, pid, bid)
    assert status["state"] == "anonymized"
    assert "failed_at" not in status


def test_a_failed_create_is_initialization_error(api: ContractClient, emu: JamboEmulator) -> None:
    pid = new_project(api, emu)["project"]["id"]
    emu.set_operation_outcome("create_branch", "error")
    bid = _create(api, pid, start_anonymization=True)["branch"]["id"]
    emu.advance(1.0)
    status = _status(api, pid, bid)
    assert status["state"] == "initialization_error"
    assert "initialization failed" in status["status_message"]
    refused = api.call("POST", f"/projects/{pid}/branches/{bid}/anonymize", expect=400)
    assert "initialization_error" in refused["message"]


def test_unsupported_functions_and_bad_rules_are_400_and_create_nothing(
    api: ContractClient, emu: JamboEmulator
) -> None:
    pid = new_project(api, emu)["project"]["id"]
    path = f"/projects/{pid}/branch_anonymized"
    cases = [
        (
            {**EMAIL_RULE, "masking_function": "anon.lorem_ipsum()"},
            "unsupported masking function anon.lorem_ipsum",
        ),
        ({**EMAIL_RULE, "masking_function": "md5(email)"}, "unsupported masking function md5"),
        ({**EMAIL_RULE, "masking_function": "anon.partial(email, 2)"}, "anon.partial takes 4 argument(s)"),
        ({**EMAIL_RULE, "masking_value": "x"}, "not both"),
        ({k: v for k, v in EMAIL_RULE.items() if k != "masking_function"}, "needs a masking_function"),
        ({**EMAIL_RULE, "masking_function": "anon.fake_email(); DROP TABLE x"}, "cannot parse"),
    ]
    for rule, message in cases:
        body = {"branch_create": {"branch": {"name": "never"}}, "masking_rules": [rule]}
        error = api.call("POST", path, json=body, expect=400)
        assert message in error["message"], error
    twice = {"masking_rules": [EMAIL_RULE, EMAIL_RULE]}
    assert "a second rule" in api.call("POST", path, json=twice, expect=400)["message"]
    missing = {"masking_rules": [{"database_name": "neondb"}]}
    api.call("POST", path, json=missing, expect=400, valid_request=False)
    branches = api.call("GET", f"/projects/{pid}/branches", expect=200)["branches"]
    assert [b["name"] for b in branches] == ["main"]


def test_a_plain_branch_has_no_anonymization(api: ContractClient, emu: JamboEmulator) -> None:
    body = new_project(api, emu)
    pid, main = body["project"]["id"], body["branch"]["id"]
    for method, suffix in (("GET", "anonymized_status"), ("GET", "masking_rules"), ("POST", "anonymize")):
        error = api.call(method, f"/projects/{pid}/branches/{main}/{suffix}", expect=400)
        assert "not an anonymized branch" in error["message"]
    api.call("GET", f"/projects/{pid}/branches/br-gone-123/anonymized_status", expect=404)


def test_an_anonymized_branch_deletes_like_any_other(api: ContractClient, emu: JamboEmulator) -> None:
    pid = new_project(api, emu)["project"]["id"]
    created = _create(api, pid, start_anonymization=True)
    bid = created["branch"]["id"]
    settle(api, emu, pid, created["operations"])
    deleted = api.call("DELETE", f"/projects/{pid}/branches/{bid}", expect=200)
    assert [op["action"] for op in deleted["operations"]] == ["suspend_compute", "delete_timeline"]
    settle(api, emu, pid, deleted["operations"])
    api.call("GET", f"/projects/{pid}/branches/{bid}", expect=404)
    api.call("GET", f"/projects/{pid}/branches/{bid}/anonymized_status", expect=404)
