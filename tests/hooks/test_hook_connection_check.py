"""``airflow connections test`` (``JamboHook.test_connection``) checks the whole connection against
the emulator: key, host, and that the ``project_id`` and ``org_id`` extras exist and are visible to
the key; each failure says which part is wrong (issue 24)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from airflow_provider_jambo.hooks.jambo import JamboHook


@pytest.fixture
def project(jambo_emulator: Any) -> dict[str, Any]:
    project: dict[str, Any] = jambo_emulator.create_project(name="first-hour")["project"]
    return project


def check(set_connection: Callable[..., str], emu: Any, **conn: Any) -> tuple[bool, str]:
    conn.setdefault("host", emu.base_url)
    conn.setdefault("password", emu.api_key)
    return JamboHook(set_connection("jambo_check", max_retries=0, **conn)).test_connection()


def test_everything_right_lists_what_was_checked(
    jambo_emulator: Any, project: dict[str, Any], set_connection: Callable[..., str]
) -> None:
    ok, message = check(set_connection, jambo_emulator, project_id=project["id"], org_id=project["org_id"])
    assert ok, message
    with jambo_emulator.client() as client:
        org_name = client.get(f"/organizations/{project['org_id']}").json()["name"]
    assert message == (
        f"Connected to the Jambo API (connection 'jambo_check' at {jambo_emulator.base_url}): the API key "
        f"is accepted; organization {project['org_id']!r} ({org_name}) is visible; "
        f"project {project['id']!r} (first-hour) is visible"
    )


def test_a_project_that_does_not_exist_fails_naming_the_extra(
    jambo_emulator: Any, project: dict[str, Any], set_connection: Callable[..., str]
) -> None:
    ok, message = check(set_connection, jambo_emulator, project_id="nope-123")
    assert not ok
    assert message.startswith(
        "extra project_id 'nope-123' is not a project this key can see: GET /projects/nope-123 -> 404"
    )
    assert f"connection 'jambo_check' at {jambo_emulator.base_url}" in message


def test_an_organization_that_does_not_exist_fails_naming_the_extra(
    jambo_emulator: Any, project: dict[str, Any], set_connection: Callable[..., str]
) -> None:
    ok, message = check(set_connection, jambo_emulator, project_id=project["id"], org_id="org-nope-123")
    assert not ok
    assert message.startswith(
        "extra org_id 'org-nope-123' is not an organization this key can see: "
        "GET /organizations/org-nope-123 -> 404"
    )


def test_a_project_of_another_organization_fails(
    jambo_emulator: Any, project: dict[str, Any], set_connection: Callable[..., str]
) -> None:
    other = jambo_emulator.add_organization("other-org")
    ok, message = check(set_connection, jambo_emulator, project_id=project["id"], org_id=other["id"])
    assert not ok
    assert message == (
        f"extra project_id {project['id']!r} belongs to organization {project['org_id']!r}, "
        f"not to the connection's org_id {other['id']!r}"
    )


def test_a_project_scoped_key_sees_its_project_only(
    jambo_emulator: Any, project: dict[str, Any], set_connection: Callable[..., str]
) -> None:
    scoped = jambo_emulator.add_org_api_key(project["org_id"], project_id=project["id"])
    # It may not read its organization, but its project shows that it belongs there.
    ok, message = check(
        set_connection, jambo_emulator, password=scoped, project_id=project["id"], org_id=project["org_id"]
    )
    assert ok, message
    assert f"organization {project['org_id']!r} holds the project" in message
    other = jambo_emulator.create_project(name="not-for-this-key")["project"]
    ok, message = check(set_connection, jambo_emulator, password=scoped, project_id=other["id"])
    assert not ok
    assert message.startswith(f"extra project_id {other['id']!r} is not a project this key can see: ")
    assert scoped not in message


def test_wrong_key_and_unreachable_host_say_which(
    jambo_emulator: Any, project: dict[str, Any], set_connection: Callable[..., str]
) -> None:
    ok, message = check(set_connection, jambo_emulator, password="wrong-key-77aa", project_id=project["id"])
    assert not ok
    assert message.startswith("the API key was refused: GET /projects -> 401")
    assert message.endswith("check the API key in the connection's password")
    assert "wrong-key-77aa" not in message
    ok, message = check(set_connection, jambo_emulator, host="http://127.0.0.1:9", project_id=project["id"])
    assert not ok
    assert message.startswith("the API did not answer: GET /projects -> no response: ConnectError")
    assert (
        "connection 'jambo_check' at http://127.0.0.1:9/api/v2: check the connection's host and port"
        in message
    )
