"""What the secret-leak tests share: a watch over everything a secret could leak into.

``LeakWatch`` turns the loggers up to DEBUG (root, httpx, httpcore, airflow, the provider, uvicorn,
psycopg), captures log records (``caplog``) and the process's stdout/stderr (``capfd``: Airflow's
structlog loggers print there), and takes the values a test hands it (XCom values, return values,
reprs, exception texts with their whole chain, serialized trigger kwargs, rendered fields). It knows
the secrets from the emulator's own state (every API key and every role password it ever held,
snapshotted after each step, since a password reset replaces one) and from what the API returned.

The capture is checked too (``expect`` markers, a minimum number of passwords), so a broken watch
fails instead of passing vacuously. Assertion messages never print a secret: they name where it
leaked and show the surrounding text with the secret replaced.
"""

from __future__ import annotations

import json
import logging
import traceback
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import pytest
from jambo_support import JamboProject
from jambo_support import connection_json as shared_connection_json

from airflow_provider_jambo.hooks.jambo import JamboHook

#: Loggers turned up to DEBUG while a test runs (httpcore's trace logs headers tuples at DEBUG).
DEBUG_LOGGERS = (
    "",
    "httpx",
    "httpcore",
    "airflow",
    "airflow.task",
    "airflow_provider_jambo",
    "tenacity",
    "uvicorn",
    "uvicorn.error",
    "uvicorn.access",
    "psycopg",
    "asyncio",
)


def uri_password(uri: str) -> str | None:
    """The password of a ``postgresql://role:password@host/db`` URI (decoded)."""
    secret = urlsplit(uri).password
    return unquote(secret) if secret else None


def describe(value: Any) -> str:
    """Every textual form of ``value`` a log line, an XCom or an error report could show."""
    if isinstance(value, BaseException):
        chain = "".join(traceback.format_exception(type(value), value, value.__traceback__))
        return f"{value}\n{value!r}\n{chain}"
    try:
        as_json = json.dumps(value, default=repr)
    except (TypeError, ValueError):
        as_json = ""
    return f"{value}\n{value!r}\n{as_json}"


class LeakWatch:
    """Captures what a test produced and asserts no known secret is in it."""

    def __init__(self, emulator: Any, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]):
        self.emulator = emulator
        self.caplog = caplog
        self.capfd = capfd
        self.api_keys: set[str] = set()
        self.passwords: set[str] = set()
        self._seen: list[tuple[str, str]] = []
        self._io = ""
        self._levels: dict[str, int] = {}

    # -- setup ---------------------------------------------------------------------------------------

    def start(self) -> None:
        for name in DEBUG_LOGGERS:
            logger = logging.getLogger(name)
            self._levels[name] = logger.level
            logger.setLevel(logging.DEBUG)
        self.caplog.set_level(logging.DEBUG)
        self.collect()

    def stop(self) -> None:
        for name, level in self._levels.items():
            logging.getLogger(name).setLevel(level)

    # -- secrets -------------------------------------------------------------------------------------

    def collect(self) -> None:
        """Snapshot every API key and role password the emulator holds right now."""
        store = self.emulator.ctx.store
        with store.lock:
            self.api_keys.update(store.api_keys)
            for project in store.projects.values():
                for branch in project.branches.values():
                    self.passwords.update(role.password for role in branch.roles.values() if role.password)

    def remember(self, *secrets: str | None) -> None:
        """Secrets the test got from the API (or made up, e.g. a wrong key)."""
        self.passwords.update(s for s in secrets if s)

    def secrets(self) -> dict[str, str]:
        """secret -> its kind (for messages that must not show the secret itself)."""
        found: dict[str, str] = {}
        for kind, values in (("API key", self.api_keys), ("role password", self.passwords)):
            for value in values:
                found[value] = kind
                found[quote(value, safe="")] = f"{kind} (URL-encoded)"
        return found

    # -- what was produced -----------------------------------------------------------------------------

    def see(self, label: str, *values: Any) -> None:
        """Record values a user or Airflow could see: results, XComs, reprs, errors, kwargs."""
        for value in values:
            self._seen.append((label, describe(value)))

    def sources(self) -> list[tuple[str, str]]:
        out, err = self.capfd.readouterr()
        self._io += out + err
        return [("log records", self.caplog.text), ("stdout/stderr", self._io), *self._seen]

    # -- the check -----------------------------------------------------------------------------------

    def assert_clean(self, *, expect: Iterable[str] = ("HTTP Request:",), min_passwords: int = 1) -> str:
        """No secret anywhere; returns all captured text (for further checks by the caller)."""
        self.collect()
        sources = self.sources()
        everything = "\n".join(text for _, text in sources)
        for marker in expect:
            assert marker in everything, f"capture is broken: {marker!r} not in the captured output"
        assert len(self.passwords) >= min_passwords, (
            f"only {len(self.passwords)} role passwords known; the test did not exercise what it claims"
        )
        assert self.api_keys, "no API key known"
        leaks = []
        for secret, kind in self.secrets().items():
            for where, text in sources:
                at = text.find(secret)
                if at >= 0:
                    context = text[max(0, at - 120) : at + len(secret) + 60].replace(secret, f"<{kind}>")
                    leaks.append(f"{kind} leaked into {where}: ...{context}...")
        assert not leaks, "\n".join(leaks)
        return everything


class SecProject(JamboProject):
    def hook(self) -> JamboHook:
        """A hook on the default connection that does not sleep between retries."""
        hook = JamboHook()
        hook.sleep = lambda seconds: None

        async def no_sleep(seconds: float) -> None:
            return None

        hook.asleep = no_sleep
        return hook


def connection_json(emu: Any, project_id: str, api_key: str | None = None) -> str:
    """The shared connection with short retries: leak checks send many failing requests."""
    return shared_connection_json(emu, project_id, api_key, max_retries=3, retry_max_wait=5)
