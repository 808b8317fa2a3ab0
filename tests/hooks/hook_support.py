"""Shared helpers of the hook tests (imported by conftest.py and the test modules)."""

from __future__ import annotations

import pytest

API_KEY = "jambo-test-key-5f2b9c"
FAKE_BASE = "http://127.0.0.1:9/api/v2"


class SleepRecorder:
    """Stands in for time.sleep/asyncio.sleep and a clock that advances by the slept time."""

    def __init__(self) -> None:
        self.calls: list[float] = []
        self.now = 1_700_000_000.0

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)
        self.now += seconds

    async def asleep(self, seconds: float) -> None:
        self(seconds)

    def clock(self) -> float:
        return self.now


def logged_text(caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]) -> str:
    """Everything logged so far, whichever way Airflow routed it (stdlib records or structlog)."""
    out, err = capsys.readouterr()
    return "\n".join([caplog.text, out, err])
