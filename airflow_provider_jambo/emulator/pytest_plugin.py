"""pytest fixtures for DAG and hook tests: a local Jambo API emulator.

Registered through the ``pytest11`` entry point, so any project that installs this provider gets
``jambo_emulator`` (function scope: a fresh deterministic emulator, zero operation durations) and
``jambo_emulator_session`` (one server for the whole session). Must not import Airflow.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from airflow_provider_jambo.emulator.server import JamboEmulator

SESSION_KEY = "jambo-emulator-test-key"


@pytest.fixture(scope="session")
def jambo_emulator_session() -> Iterator[JamboEmulator]:
    """One deterministic emulator (zero operation durations) for the session; state accumulates."""
    with JamboEmulator(api_key=SESSION_KEY, deterministic=True, operation_duration=0.0) as emulator:
        yield emulator


@pytest.fixture
def jambo_emulator(jambo_emulator_session: JamboEmulator) -> Iterator[JamboEmulator]:
    """The session's emulator, reset to its fresh state (same seed, no projects, faults or logs)."""
    jambo_emulator_session.reset()
    yield jambo_emulator_session
    jambo_emulator_session.reset()
