"""Emulator tests: an API client on the plugin's ``jambo_emulator`` and a fresh project."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from jambo_emulator import JamboEmulator


@pytest.fixture
def api(jambo_emulator: JamboEmulator) -> Iterator[httpx.Client]:
    with jambo_emulator.client() as client:
        yield client


@pytest.fixture
def project(jambo_emulator: JamboEmulator) -> dict[str, Any]:
    """A project whose bootstrap operations have finished."""
    body = jambo_emulator.create_project(name="tests")
    jambo_emulator.advance(0)
    return body
