"""Fixtures for the hook tests: env-var connections and a hook whose sleeps are recorded, not slept."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hook_support import API_KEY, FAKE_BASE, SleepRecorder

from airflow_provider_jambo.hooks.jambo import JamboHook


@pytest.fixture
def set_connection(monkeypatch: pytest.MonkeyPatch) -> Callable[..., str]:
    """Define a `jambo` connection through AIRFLOW_CONN_<ID> (JSON form); returns the conn id."""

    def define(
        conn_id: str = "jambo_test",
        *,
        host: str | None = FAKE_BASE,
        password: str | None = API_KEY,
        **extra: Any,
    ) -> str:
        payload: dict[str, Any] = {"conn_type": "jambo", "host": host, "password": password}
        if extra:
            payload["extra"] = extra
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(payload))
        return conn_id

    return define


@pytest.fixture
def sleeps() -> SleepRecorder:
    return SleepRecorder()


@pytest.fixture
def make_hook(
    set_connection: Callable[..., str], sleeps: SleepRecorder
) -> Iterator[Callable[..., JamboHook]]:
    """A hook on a fresh env-var connection, with recorded sleeps and the matching fake clock."""
    hooks: list[JamboHook] = []

    def build(conn_kwargs: dict[str, Any] | None = None, **hook_kwargs: Any) -> JamboHook:
        conn_id = set_connection(**(conn_kwargs or {"project_id": "proj-1"}))
        hook = JamboHook(jambo_conn_id=conn_id, **hook_kwargs)
        hook.sleep = sleeps
        hook.asleep = sleeps.asleep
        hook.clock = sleeps.clock
        hooks.append(hook)
        return hook

    yield build
    for hook in hooks:
        hook.close()
