"""The emulator as a network service: one test per way it could be abused (issue 11)."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import httpx
import pytest

from jambo_emulator import EmulatorConfig, JamboEmulator, create_app
from jambo_emulator.server import exposure_warning


@pytest.fixture(scope="module")
def emu() -> Iterator[JamboEmulator]:
    with JamboEmulator(api_key="sec-key", deterministic=True, data_plane="off") as emulator:
        yield emulator


@pytest.fixture
def control(emu: JamboEmulator) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=emu.control_url) as client:
        yield client
    emu.reset()


async def test_control_api_refuses_clients_beyond_loopback() -> None:
    transport = httpx.ASGITransport(app=create_app(EmulatorConfig(api_keys=["k"])), client=("192.0.2.7", 1))
    async with httpx.AsyncClient(transport=transport, base_url="http://192.0.2.1") as client:
        minted = await client.post("/_emulator/api_keys", json={})
        assert minted.status_code == 403
        assert "--control-token" in minted.json()["message"]
        assert (await client.post("/_emulator/reset", json={})).status_code == 403
        # The API itself still answers (with a key): only the control API is local.
        listed = await client.get("/api/v2/projects", headers={"Authorization": "Bearer k"})
        assert listed.status_code == 200


async def test_a_control_token_is_then_required_from_everyone() -> None:
    config = EmulatorConfig(api_keys=["k"], control_token="tok-5e1f")
    for host in ("192.0.2.7", "127.0.0.1"):
        transport = httpx.ASGITransport(app=create_app(config), client=(host, 1))
        async with httpx.AsyncClient(transport=transport, base_url="http://emulator:8080") as client:
            refused = await client.get("/_emulator/config")
            assert refused.status_code == 401
            assert "X-Emulator-Control-Token" in refused.json()["message"]
            wrong = await client.get("/_emulator/config", headers={"X-Emulator-Control-Token": "nope"})
            assert wrong.status_code == 401
            ok = await client.get("/_emulator/config", headers={"X-Emulator-Control-Token": "tok-5e1f"})
            assert ok.status_code == 200
            assert "tok-5e1f" not in ok.text


def test_listening_beyond_loopback_warns_loudly(capfd: pytest.CaptureFixture[str]) -> None:
    assert exposure_warning("127.0.0.1", EmulatorConfig()) is None
    assert exposure_warning("::1", EmulatorConfig()) is None
    assert exposure_warning("localhost", EmulatorConfig()) is None
    warning = exposure_warning("0.0.0.0", EmulatorConfig())
    assert warning is not None
    assert warning.startswith("WARNING")
    assert "0.0.0.0" in warning
    assert "loopback clients only" in warning


def test_cli_prints_the_warning_for_all_interfaces() -> None:
    import subprocess
    import sys

    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jambo_emulator",
            "--host",
            "0.0.0.0",
            "--port",
            "0",
            "--postgres",
            "off",
            "--api-key",
            "k",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stderr is not None
        assert proc.stdout.readline().startswith("Jambo API emulator listening on http://0.0.0.0:")
        banner = "".join(proc.stderr.readline() for _ in range(4))
        assert "WARNING: the Jambo API emulator listens on 0.0.0.0, beyond loopback" in banner
    finally:
        proc.terminate()
        proc.wait(timeout=15)


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded"])
def test_control_changes_must_be_sent_as_json(control: httpx.Client, content_type: str | None) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    for path, body in (("/reset", b""), ("/api_keys", b"{}"), ("/clock/advance", b'{"seconds": 1}')):
        response = control.post(path, content=body, headers=headers)
        assert response.status_code == 415, (path, response.text)
        assert "application/json" in response.json()["message"]


def test_control_api_refuses_a_rebound_host_name(control: httpx.Client) -> None:
    refused = control.post("/reset", json={}, headers={"Host": "attacker.example:8080"})
    assert refused.status_code == 403
    assert "DNS rebinding" in refused.json()["message"]
    for host in ("localhost:1", "127.0.0.1:1", "[::1]:1", "app.localhost"):
        assert control.get("/health", headers={"Host": host}).status_code == 200, host


async def test_allowed_host_names_are_accepted() -> None:
    app = create_app(EmulatorConfig(api_keys=["k"], allowed_hosts=["emulator"]))
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 1))
    async with httpx.AsyncClient(transport=transport, base_url="http://emulator:8080") as client:
        assert (await client.get("/_emulator/health")).status_code == 200
        assert (await client.get("/_emulator/health", headers={"Host": "other:80"})).status_code == 403


def _raw_request(emu: JamboEmulator, head: bytes) -> tuple[bytes, float]:
    """Send only a request head; return the answer and how long it took."""
    started = time.perf_counter()
    with socket.create_connection(("127.0.0.1", emu.port), timeout=10) as sock:
        sock.sendall(head)
        answer = sock.recv(65536)
    return answer, time.perf_counter() - started


@pytest.mark.parametrize(
    "path", ["/api/v2/projects", "/_emulator/api_keys", "/api/v2/no/such/route", "/api/v2/projects/shared"]
)
def test_a_declared_body_over_the_limit_is_413_before_it_is_read(emu: JamboEmulator, path: str) -> None:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer sec-key\r\nContent-Length: 300000000\r\n\r\n"
    ).encode()
    answer, took = _raw_request(emu, head)  # the 300 MB are never sent: the answer must not wait
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b"request body too large" in answer
    assert took < 5


def test_a_streamed_body_over_the_limit_is_413(emu: JamboEmulator) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"project": {"name": "'
        for _ in range(40):  # 2.5 MB in 64 KiB chunks, no Content-Length
            yield b"x" * 65536
        yield b'"}}'

    with emu.client() as api:
        response = api.post("/projects", content=chunks(), headers={"Content-Type": "application/json"})
    assert response.status_code == 413
    assert "at most 1048576 bytes" in response.json()["message"]
    with emu.client() as api:
        assert api.get("/projects").status_code == 200  # the emulator carries on


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/clock/advance", b'{"seconds": 1e308}', "seconds"),
        ("/clock/advance", b'{"seconds": 1e400}', "seconds"),
        ("/clock/advance", b'{"seconds": NaN}', "NaN"),
        ("/clock/advance", b'{"seconds": -1}', "seconds"),
        ("/clock/advance", b'{"seconds": 100000000000000000000000000000}', "seconds"),
        ("/clock/advance", b'{"seconds": true}', "seconds"),
    ],
)
def test_numeric_control_values_are_finite_and_bounded(
    control: httpx.Client, path: str, body: bytes, field: str
) -> None:
    response = control.post(path, content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 400, response.text
    assert field in response.json()["message"]


@pytest.mark.parametrize("value", ["NaN", "Infinity", "1e400", "-1", "3601"])
def test_operation_durations_are_finite_and_bounded(control: httpx.Client, value: str) -> None:
    response = control.put(
        "/operation_durations",
        content=f'{{"default": {value}}}'.encode(),
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 400, response.text
    assert "NaN" not in control.get("/config").text
    assert "Infinity" not in control.get("/config").text


def test_fault_numbers_are_bounded(control: httpx.Client) -> None:
    base = '"method": "GET", "route": "/projects"'
    for extra, field in (
        ('"faults": [{"kind": "latency", "seconds": 1e300}]', "seconds"),
        ('"faults": [{"kind": "pass"}], "probability": 2', "probability"),
        ('"faults": [{"kind": "pass"}], "times": 1000000000000', "times"),
        ('"faults": [{"kind": "rate_limit", "retry_after": 1e400}]', "retry_after"),
    ):
        body = f"{{{base}, {extra}}}".encode()
        response = control.post("/faults", content=body, headers={"Content-Type": "application/json"})
        assert response.status_code == 400, response.text
        assert field in response.json()["message"]


def test_unknown_control_routes_and_methods_are_400_naming_the_allowed_ones(control: httpx.Client) -> None:
    unknown = control.get("/nonsense")
    assert unknown.status_code == 400
    assert "/clock/advance" in unknown.json()["message"]
    assert "/reset" in unknown.json()["message"]
    wrong = control.get("/reset")
    assert wrong.status_code == 400
    assert "allowed: POST" in wrong.json()["message"]


def test_unknown_actions_outcomes_fields_and_fault_kinds_are_400_naming_the_allowed_ones(
    control: httpx.Client,
) -> None:
    action = control.post("/operation_outcomes", json={"action": "create_brunch", "outcome": "error"})
    assert action.status_code == 400
    assert "create_branch" in action.json()["message"]
    outcome = control.post("/operation_outcomes", json={"action": "create_branch", "outcome": "boom"})
    assert outcome.status_code == 400
    assert "failed_then_finished" in outcome.json()["message"]
    duration = control.put("/operation_durations", json={"create_brunch": 1})
    assert duration.status_code == 400
    assert "create_branch" in duration.json()["message"]
    field = control.put("/rate_limits", json={"enabled": True, "extra": 1})
    assert field.status_code == 400
    assert "allowed: enabled" in field.json()["message"]
    kind = control.post("/faults", json={"method": "GET", "route": "/projects", "faults": [{"kind": "boom"}]})
    assert kind.status_code == 400
    assert "drop_after_apply" in kind.json()["message"]
    route = control.post("/faults", json={"method": "GET", "route": "/project", "faults": [{"kind": "pass"}]})
    assert route.status_code == 400
    assert "/projects" in route.json()["message"]
    method = control.post(
        "/faults", json={"method": "PUT", "route": "/projects", "faults": [{"kind": "pass"}]}
    )
    assert method.status_code == 400
    assert "GET, POST" in method.json()["message"]


def test_put_replaces_durations_and_patch_merges(control: httpx.Client) -> None:
    assert control.put("/operation_durations", json={"create_branch": 6}).json() == {
        "default": 0.0,
        "create_branch": 6.0,
    }
    merged = control.patch("/operation_durations", json={"default": 3})
    assert merged.json() == {"default": 3.0, "create_branch": 6.0}
    replaced = control.put("/operation_durations", json={"default": 2})
    assert replaced.json() == {"default": 2.0}  # create_branch takes the default again


def test_the_request_log_covers_every_path(emu: JamboEmulator, control: httpx.Client) -> None:
    emu.clear_requests()
    with emu.client() as api:
        api.get("/projects")
        api.get("/no/such/route")
    httpx.get(f"{emu.root_url}/outside/the/api")
    control.get("/health")
    control.get("/nonsense")
    logged = {(entry["path"], entry["status"]) for entry in emu.requests()}
    assert logged >= {
        ("/api/v2/projects", 200),
        ("/api/v2/no/such/route", 404),
        ("/outside/the/api", 404),
        ("/_emulator/health", 200),
        ("/_emulator/nonsense", 400),
    }


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/_emulator/clock/advance", b'{"seconds": 1e308}'),
        ("POST", "/_emulator/clock/advance", b"[1, 2]"),
        ("POST", "/_emulator/clock/advance", b"{not json"),
        ("PUT", "/_emulator/operation_durations", b'{"default": "1"}'),
        ("POST", "/_emulator/faults", b'{"faults": 7}'),
        ("POST", "/_emulator/api_keys", b'{"project_id": 7}'),
        ("POST", "/api/v2/projects", b"\xff\xfe"),
        ("POST", "/api/v2/projects", b'{"project": {"name": 1e400}}'),
        ("PATCH", "/api/v2/projects/p-1", b"null"),
    ],
)
def test_bad_input_is_never_a_500(emu: JamboEmulator, method: str, path: str, body: bytes) -> None:
    response = httpx.request(
        method,
        emu.root_url + path,
        content=body,
        headers={"Content-Type": "application/json", "Authorization": "Bearer sec-key"},
    )
    assert 400 <= response.status_code < 500, response.text
    assert response.json()["message"]
