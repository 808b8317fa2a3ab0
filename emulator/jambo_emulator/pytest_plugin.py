"""pytest fixtures for DAG and hook tests: a local Jambo API emulator.

Registered through the ``pytest11`` entry point, so any project that installs the emulator gets
``jambo_emulator`` (function scope: a fresh deterministic emulator, zero operation durations) and
``jambo_emulator_session`` (one server for the whole session). Real PostgreSQL behind the branches:
``--jambo-emulator-postgres=auto`` or the ini option ``jambo_emulator_postgres = auto``.

Unlike ``jambo-emulator`` and ``JamboEmulator`` (data plane ``auto``), the fixtures default to the
control plane only: most tests of DAGs and hooks check API calls, not data, while with a data plane
the session starts a private PostgreSQL server, every project and branch creates real databases and
a proxy, and each test's reset drops them again. Suites that run SQL on branches opt in.
Must not import Airflow.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    # Imported inside the fixture: the plugin loads with every pytest run of every project that
    # installs the emulator, and must cost nothing there.
    from jambo_emulator.server import JamboEmulator

SESSION_KEY = "jambo-emulator-test-key"
_POSTGRES_MODES = ("auto", "on", "off")


def pytest_addoption(parser: pytest.Parser) -> None:
    help_text = (
        "Jambo API emulator fixtures: real PostgreSQL behind branches (auto, on, off; default off, "
        "as most tests need the API only)"
    )
    parser.addoption("--jambo-emulator-postgres", choices=_POSTGRES_MODES, default=None, help=help_text)
    parser.addini("jambo_emulator_postgres", help_text, default="off")


def _postgres_mode(config: pytest.Config) -> str:
    mode = config.getoption("--jambo-emulator-postgres") or config.getini("jambo_emulator_postgres") or "off"
    if mode not in _POSTGRES_MODES:
        raise pytest.UsageError(
            f"jambo_emulator_postgres must be one of {', '.join(_POSTGRES_MODES)}, got {mode!r}"
        )
    return str(mode)


@pytest.fixture(scope="session")
def jambo_emulator_session(pytestconfig: pytest.Config) -> Iterator[JamboEmulator]:
    """One deterministic emulator (zero operation durations) for the session; state accumulates."""
    from jambo_emulator import EmulatorDependencyError, require_server

    try:
        require_server()
    except EmulatorDependencyError as exc:
        pytest.fail(str(exc), pytrace=False)
    from jambo_emulator.server import JamboEmulator

    with JamboEmulator(
        api_key=SESSION_KEY,
        deterministic=True,
        operation_duration=0.0,
        data_plane=_postgres_mode(pytestconfig),
    ) as emulator:
        yield emulator


@pytest.fixture
def jambo_emulator(jambo_emulator_session: JamboEmulator) -> Iterator[JamboEmulator]:
    """The session's emulator, reset to its fresh state (same seed, no projects, faults or logs)."""
    jambo_emulator_session.reset()
    yield jambo_emulator_session
    jambo_emulator_session.reset()
