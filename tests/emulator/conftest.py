"""Emulator tests: an API client on the plugin's ``jambo_emulator`` and a fresh project."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from airflow_provider_jambo.emulator import JamboEmulator

# Modules here import ``SPEC_PATH`` via ``from conftest import ...``; in this directory that name
# resolves to this file, so it carries the same value as tests/conftest.py.
SPEC_PATH = Path(__file__).resolve().parents[3] / "shared" / "reference" / "jambo-api-v2.openapi.yaml"


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
