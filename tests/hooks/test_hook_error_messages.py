"""Errors that say where to look: every request error names the connection and the base URL it
used (never the key), and what to check when the answer points at the connection (issue 24)."""

from __future__ import annotations

import asyncio
import pickle
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import respx
from hook_support import API_KEY, FAKE_BASE, logged_text

from airflow_provider_jambo.exceptions import (
    ApiTarget,
    JamboAPIError,
    JamboAuthError,
    JamboConflictError,
    JamboTLSError,
    JamboTransportError,
)
from airflow_provider_jambo.hooks.client import DEFAULT_BASE_URL, ApiRequest
from airflow_provider_jambo.hooks.jambo import JamboHook

WRONG_KEY = "wrong-key-3c1d9e8f7a6b"


def test_wrong_key_names_the_connection_the_url_and_the_password(
    jambo_emulator: Any, set_connection: Callable[..., str]
) -> None:
    conn_id = set_connection("jambo_default", host=jambo_emulator.base_url, password=WRONG_KEY)
    with JamboHook(conn_id) as hook, pytest.raises(JamboAuthError) as raised:
        hook.projects.get("old-violet-32930710")
    text = str(raised.value)
    assert text.startswith("GET /projects/old-violet-32930710 -> 401 authentication failed")
    assert text.endswith(
        f"; connection 'jambo_default' at {jambo_emulator.base_url}: check the API key in the "
        "connection's password"
    )
    assert WRONG_KEY not in text
    assert raised.value.target == ApiTarget("jambo_default", jambo_emulator.base_url)


def test_no_host_says_it_uses_the_default_url_when_loaded(
    set_connection: Callable[..., str], caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    conn_id = set_connection("jambo_nohost", host=None)
    caplog.set_level("INFO")
    settings = JamboHook(conn_id).load()
    assert settings.default_url
    assert settings.base_url == DEFAULT_BASE_URL
    assert (
        f"Connection 'jambo_nohost' has no host: using the service's default URL {DEFAULT_BASE_URL}"
        in logged_text(caplog, capsys)
    )
    # A connection with a host says nothing of the kind (what was logged so far is set aside: on
    # Airflow 2.11 and 3.0 the records stay in caplog, later lines only reach capsys).
    caplog.clear()
    JamboHook(set_connection("jambo_host")).load()
    assert "has no host" not in logged_text(caplog, capsys)


def test_no_host_unreachable_names_the_default_url_and_what_to_check(
    set_connection: Callable[..., str],
) -> None:
    conn_id = set_connection("jambo_default", host=None, max_retries=0)
    with respx.mock(base_url=DEFAULT_BASE_URL) as api:
        api.get("/projects").mock(side_effect=httpx.ConnectError("[Errno -2] Name or service not known"))
        with JamboHook(conn_id) as hook, pytest.raises(JamboTransportError) as raised:
            list(hook.projects.list())
    text = str(raised.value)
    assert text.startswith("GET /projects -> no response: ConnectError: [Errno -2] Name or service not known")
    assert (
        "; connection 'jambo_default' has no host, so it uses the service's default URL "
        f"{DEFAULT_BASE_URL}: check this machine's network access to it" in text
    )
    assert (
        "set the connection's host to the API you meant (for a local emulator: http://127.0.0.1:PORT)" in text
    )
    assert API_KEY not in text


def test_unreachable_host_names_the_url_and_what_to_check(set_connection: Callable[..., str]) -> None:
    # Port 9 (discard) on loopback: nothing listens there, the connect is refused at once.
    conn_id = set_connection("jambo_down", host="http://127.0.0.1:9", max_retries=0)
    with JamboHook(conn_id) as hook, pytest.raises(JamboTransportError) as raised:
        hook.projects.get("old-violet-32930710")
    assert raised.value.sent is False
    assert str(raised.value).endswith(
        "; connection 'jambo_down' at http://127.0.0.1:9/api/v2: check the connection's host and port, "
        "and that the server is running and reachable from this machine"
    )


def test_async_errors_name_the_connection_too(set_connection: Callable[..., str]) -> None:
    conn_id = set_connection("jambo_async", project_id="proj-1")

    async def read_branches() -> None:
        hook = JamboHook(conn_id)
        try:
            await hook.arequest(ApiRequest("GET", "/projects/{project_id}", {"project_id": "proj-1"}))
        finally:
            await hook.aclose()

    with respx.mock(base_url=FAKE_BASE) as api:
        api.get("/projects/proj-1").mock(return_value=httpx.Response(403, json={"message": "forbidden"}))
        with pytest.raises(JamboAuthError) as raised:
            asyncio.run(read_branches())
    assert str(raised.value).endswith(
        f"; connection 'jambo_async' at {FAKE_BASE}: the API key is not allowed to do this: check its "
        "scope (personal, organization or project key) and the connection's org_id"
    )


def test_other_statuses_name_the_target_without_a_hint(make_hook: Callable[..., JamboHook]) -> None:
    hook = make_hook()
    with respx.mock(base_url=FAKE_BASE) as api:
        api.get("/projects/proj-1").mock(
            return_value=httpx.Response(404, json={"message": "project not found", "request_id": "r1"})
        )
        with pytest.raises(JamboAPIError) as raised:
            hook.projects.get()
    assert str(raised.value) == (
        "GET /projects/proj-1 -> 404 project not found (request id r1); "
        f"connection 'jambo_test' at {FAKE_BASE}"
    )


def test_tls_mismatch_names_the_url(jambo_emulator: Any, set_connection: Callable[..., str]) -> None:
    https_url = jambo_emulator.base_url.replace("http://", "https://")
    conn_id = set_connection("jambo_tls", host=https_url, max_retries=0)
    with JamboHook(conn_id) as hook, pytest.raises(JamboTLSError) as raised:
        hook.projects.get("old-violet-32930710")
    text = str(raised.value)
    assert "put an http:// URL in the connection's host" in text
    assert text.endswith(
        f"; connection 'jambo_tls' at {https_url}: check the scheme (http or https) of the connection's host"
    )


def test_errors_keep_their_target_through_pickling() -> None:
    target = ApiTarget("jambo_default", DEFAULT_BASE_URL, default_url=True)
    errors: list[Exception] = [
        JamboConflictError(
            409, "branch already exists", method="POST", path="/projects/p/branches", target=target
        ),
        JamboTransportError("GET", "/projects", "ConnectError", request_id="r", sent=False, target=target),
        JamboTLSError("GET", "/projects", "TLS handshake failed", request_id="r", target=target),
    ]
    for err in errors:
        copy = pickle.loads(pickle.dumps(err))
        assert type(copy) is type(err)
        assert str(copy) == str(err)
        assert copy.target == target  # type: ignore[attr-defined]
        assert "has no host, so it uses the service's default URL" in str(copy)
