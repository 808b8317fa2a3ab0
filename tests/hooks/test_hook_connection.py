"""Connection handling: lazy loading, normalisation, validation, secrets kept out of reprs and errors."""

from __future__ import annotations

import json
from collections.abc import Callable
from unittest import mock

import httpx
import pytest
import respx
from hook_support import API_KEY, FAKE_BASE, logged_text

from airflow_provider_jambo.exceptions import JamboAuthError, JamboConfigError
from airflow_provider_jambo.hooks.client import DEFAULT_BASE_URL
from airflow_provider_jambo.hooks.jambo import JamboHook
from airflow_provider_jambo.hooks.retry import RetryPolicy


def test_construction_reads_nothing() -> None:
    with mock.patch.object(JamboHook, "get_connection", side_effect=AssertionError("looked up")) as lookup:
        hook = JamboHook(jambo_conn_id="does_not_exist")
        assert repr(hook) == "JamboHook(jambo_conn_id='does_not_exist', base_url='<not loaded>')"
    lookup.assert_not_called()
    assert JamboHook().jambo_conn_id == "jambo_default"
    assert (JamboHook.conn_type, JamboHook.conn_name_attr, JamboHook.hook_name) == (
        "jambo",
        "jambo_conn_id",
        "Jambo",
    )


def test_settings_from_json_connection(set_connection: Callable[..., str]) -> None:
    conn_id = set_connection(
        project_id="old-violet-32930710", org_id="org-abc", timeout="12.5", max_retries=3, retry_max_wait=40
    )
    settings = JamboHook(conn_id).load()
    assert settings.base_url == FAKE_BASE
    assert settings.project_id == "old-violet-32930710"
    assert settings.org_id == "org-abc"
    assert settings.timeout == 12.5
    assert settings.retry_policy == RetryPolicy(max_attempts=4, max_elapsed=40.0)
    assert JamboHook(conn_id).project_id == "old-violet-32930710"


def test_uri_connection_with_empty_host_uses_public_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_JAMBO_URI", f"jambo://:{API_KEY}@?project_id=proj-1")
    hook = JamboHook("jambo_uri")
    assert hook.load().base_url == DEFAULT_BASE_URL
    assert hook.project_id == "proj-1"


def test_uri_connection_to_loopback_emulator(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_JAMBO_URI", f"jambo://:{API_KEY}@127.0.0.1:8123/api%2Fv2")
    assert JamboHook("jambo_uri").load().base_url == "http://127.0.0.1:8123/api/v2"


def test_missing_key_names_the_connection(set_connection: Callable[..., str]) -> None:
    conn_id = set_connection("jambo_nokey", password=None)
    with pytest.raises(JamboConfigError, match="connection 'jambo_nokey' has no API key"):
        JamboHook(conn_id).load()


def test_plain_http_to_remote_host_is_refused(set_connection: Callable[..., str]) -> None:
    conn_id = set_connection("jambo_http", host="http://console.neon.tech")
    with pytest.raises(JamboConfigError, match="connection 'jambo_http': plain http is only allowed"):
        JamboHook(conn_id).load()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"project_id": "Not Valid"}, "extra project_id must be a Jambo id"),
        ({"timeout": "soon"}, "extra timeout must be a positive number"),
        ({"timeout": 0}, "extra timeout must be a positive number"),
        ({"max_retries": -2}, "extra max_retries must be a whole number >= 0"),
        ({"retry_max_wait": "x"}, "extra retry_max_wait must be a non-negative number"),
    ],
)
def test_bad_extras_are_clear_errors(
    set_connection: Callable[..., str], extra: dict[str, object], message: str
) -> None:
    conn_id = set_connection("jambo_bad", **extra)
    with pytest.raises(JamboConfigError, match=message):
        JamboHook(conn_id).load()


def test_undefined_connection_is_a_config_error() -> None:
    with pytest.raises(JamboConfigError, match="connection 'jambo_nowhere' is not defined"):
        JamboHook("jambo_nowhere").load()


def test_project_id_needed_when_not_on_connection(set_connection: Callable[..., str]) -> None:
    conn_id = set_connection("jambo_noproj")
    with pytest.raises(JamboConfigError, match="no project_id given and connection 'jambo_noproj'"):
        _ = JamboHook(conn_id).project_id
    with pytest.raises(JamboConfigError, match="project_id must be a Jambo id"):
        JamboHook(conn_id).projects.get("BAD ID")


async def test_async_load_uses_get_async_connection(set_connection: Callable[..., str]) -> None:
    conn_id = set_connection("jambo_async", project_id="proj-1", max_retries=0)
    hook = JamboHook(conn_id)
    with mock.patch(
        "airflow.providers.common.compat.connection.get_async_connection",
        wraps=__import__("airflow.providers.common.compat.connection", fromlist=["x"]).get_async_connection,
    ) as spy:
        settings = await hook.aload()
    spy.assert_awaited_once()
    assert settings.project_id == "proj-1"
    assert settings.retry_policy.max_attempts == 1


def test_api_key_is_registered_with_the_masker(set_connection: Callable[..., str]) -> None:
    conn_id = set_connection("jambo_mask")
    with mock.patch("airflow_provider_jambo.hooks.secret_masking.mask_secret") as masker:
        JamboHook(conn_id).load()
    masker.assert_any_call(API_KEY)


def test_key_never_in_repr_errors_or_logs(
    set_connection: Callable[..., str], caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    conn_id = set_connection("jambo_secret", project_id="proj-1")
    hook = JamboHook(conn_id, retry_policy=RetryPolicy(max_attempts=2, initial_wait=0.0))
    texts = []
    with respx.mock(base_url=FAKE_BASE) as api:
        api.get("/projects/proj-1").mock(
            side_effect=[
                httpx.Response(503, json={"message": "unavailable"}),
                # A (hypothetical) server that echoes the credential back must not leak it.
                httpx.Response(401, json={"message": f"bad token Bearer {API_KEY}"}),
            ]
        )
        with pytest.raises(JamboAuthError) as raised:
            hook.projects.get()
    texts += [
        str(raised.value),
        repr(raised.value),
        repr(hook),
        repr(hook.load()),
        repr(hook.get_conn().auth),
    ]
    texts.append(logged_text(caplog, capsys))
    for text in texts:
        assert API_KEY not in text
    assert "401 bad token Bearer ***" in str(raised.value)
    hook.close()


def test_test_connection_success_and_readable_failures(
    set_connection: Callable[..., str], make_hook: Callable[..., JamboHook]
) -> None:
    with respx.mock(base_url=FAKE_BASE) as api:
        route = api.get("/projects").mock(return_value=httpx.Response(200, json={"projects": []}))
        api.get("/projects/proj-1").mock(
            return_value=httpx.Response(200, json={"project": {"id": "proj-1", "name": "demo"}})
        )
        ok, message = make_hook().test_connection()
        assert ok, message
        assert route.calls.last.request.url.params["limit"] == "1"
        route.mock(return_value=httpx.Response(401, json={"code": "", "message": "authentication required"}))
        ok, message = make_hook().test_connection()
    assert not ok
    request_id = message.split("request id ")[1].split(")")[0]
    assert message == (
        f"the API key was refused: GET /projects -> 401 authentication required (request id {request_id}); "
        f"connection 'jambo_test' at {FAKE_BASE}: check the API key in the connection's password"
    )
    conn_id = set_connection("jambo_test_nokey", password="")
    ok, message = JamboHook(conn_id).test_connection()
    assert not ok
    assert "has no API key" in message


def test_ui_field_behaviour_matches_provider_info() -> None:
    behaviour = JamboHook.get_ui_field_behaviour()
    assert behaviour["relabeling"] == {"password": "API key", "host": "API base URL"}
    assert set(behaviour["hidden-fields"]) == {"login", "schema", "port"}
    assert json.dumps(behaviour)  # plain values
