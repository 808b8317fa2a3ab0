"""An emulator bug answers a JSON 500 with a request id, never a traceback (logged server-side)."""

from __future__ import annotations

import logging

import httpx
import pytest

from jambo_emulator import JamboEmulator
from jambo_emulator.api import serialize


def test_unexpected_error_is_a_json_500_and_logged(
    jambo_emulator: JamboEmulator,
    api: httpx.Client,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise KeyError("simulated bug")

    monkeypatch.setattr(serialize, "project_list_item", broken)
    jambo_emulator.create_project(name="p")
    with caplog.at_level(logging.ERROR, logger="jambo_emulator.api.app"):
        response = api.get("/projects")
    assert response.status_code == 500
    body = response.json()
    assert set(body) == {"code", "message", "request_id"}
    assert "Traceback" not in response.text
    assert "simulated bug" not in response.text
    assert response.headers["x-neon-ret-request-id"] == body["request_id"]
    assert any("simulated bug" in (r.exc_text or "") for r in caplog.records)
    assert jambo_emulator.requests()[-1]["status"] == 500


def test_wrong_method_is_a_json_405(api: httpx.Client) -> None:
    response = api.put("/projects")
    assert response.status_code == 405
    assert response.json()["message"].startswith("method not allowed")
