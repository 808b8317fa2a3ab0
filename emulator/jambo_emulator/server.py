"""``JamboEmulator``: the emulator on a free port in a background thread, plus its controls."""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import socket
import threading
from types import TracebackType
from typing import Any

import httpx
import uvicorn

from jambo_emulator.api.app import TRANSPORT_KEY, create_app
from jambo_emulator.api.control import Controller
from jambo_emulator.dataplane.base import DataPlane, NullDataPlane
from jambo_emulator.state.config import DEFAULT_OPERATION_DURATION, EmulatorConfig

log = logging.getLogger(__name__)


def resolve_data_plane(data_plane: DataPlane | str | None, **options: Any) -> DataPlane:
    """``"auto"`` -> real PostgreSQL when its server binaries are found, else one line on stderr
    and the null plane; ``"on"`` -> real PostgreSQL or an error; ``"off"``/``None`` -> the null
    plane (control plane only). ``options`` go to ``create_data_plane`` (addresses)."""
    if data_plane is None or data_plane == "off":
        return NullDataPlane()
    if isinstance(data_plane, str):
        if data_plane not in ("auto", "on"):
            raise ValueError(
                f"data_plane must be 'auto', 'on', 'off', None or a DataPlane, got {data_plane!r}"
            )
        try:
            from jambo_emulator.dataplane import create_data_plane
        except ImportError:
            return NullDataPlane()  # the real data plane is not available in this build
        plane: DataPlane = create_data_plane(data_plane, **options)
        return plane
    return data_plane


def is_loopback_host(host: str) -> bool:
    """True when ``host`` (what the server binds) is reachable from this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def exposure_warning(host: str, config: EmulatorConfig) -> str | None:
    """The warning to print when the API listens beyond loopback (None when it does not)."""
    if is_loopback_host(host):
        return None
    control = (
        "The control API (/_emulator) needs the control token."
        if config.control_token
        else "The control API (/_emulator) still answers loopback clients only (no --control-token)."
    )
    return (
        f"WARNING: the Jambo API emulator listens on {host}, beyond loopback: anyone who can reach "
        f"this machine can use it with an API key it accepts. It is a test double with no real "
        f"security; do not expose it to networks you do not trust. {control}"
    )


def _protocol_class(base: type[Any]) -> type[Any]:
    """uvicorn's HTTP protocol, also putting the connection's transport into the scope's state.

    A ``drop_after_apply`` fault needs it: the response is discarded and the connection closed,
    so the client sees a transport error although the change was applied.
    """

    class TransportExposingProtocol(base):
        app_state: dict[str, Any]

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            self.app_state = {**self.app_state, TRANSPORT_KEY: transport}
            # Headers and body go out in two writes; without NODELAY, Nagle + delayed ACK add ~40 ms.
            sock = transport.get_extra_info("socket")
            if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    return TransportExposingProtocol


def raise_open_files_limit() -> None:
    """Benchmarks hold 1,000+ connections: lift the soft limit on open files to the hard one."""
    try:
        import resource
    except ImportError:  # not on this platform
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
    if soft != resource.RLIM_INFINITY and soft < target:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def http_protocol() -> type[Any]:
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

        return _protocol_class(HttpToolsProtocol)
    except ImportError:
        from uvicorn.protocols.http.h11_impl import H11Protocol

        return _protocol_class(H11Protocol)


def uvicorn_config(app: Any, *, log_level: str = "warning") -> uvicorn.Config:
    return uvicorn.Config(
        app,
        http=http_protocol(),
        lifespan="on",
        access_log=False,
        log_level=log_level,
        server_header=False,
        date_header=False,
        timeout_graceful_shutdown=3,
    )


class JamboEmulator(Controller):
    """The emulator in process (its controls are the ``Controller`` methods: ``reset``,
    ``set_operation_durations``, ``advance``, ``inject_fault``, ``requests``, ...)::

    with JamboEmulator(api_key="test-key", deterministic=True, operation_duration=0.0) as emu:
        httpx.get(f"{emu.base_url}/projects", headers={"Authorization": f"Bearer {emu.api_key}"})

    ``data_plane`` is ``"auto"`` by default, as for the ``jambo-emulator`` command: a private
    PostgreSQL server per branch (the first started with the emulator, ~0.3 s) holds its data when
    the binaries are found; otherwise one line on stderr says so and only the API is emulated. Pass
    ``"off"`` when a test needs no data (faster), ``"on"`` to fail without PostgreSQL, or a
    ``DataPlane`` instance.
    """

    def __init__(
        self,
        api_key: str | list[str] | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        deterministic: bool = False,
        seed: int = 0,
        operation_duration: float | None = None,
        operation_durations: dict[str, float] | None = None,
        manual_clock: bool | None = None,
        rate_limits: bool = True,
        lock_rule: bool = True,
        project_scoped_keys: dict[str, str] | None = None,
        control_token: str | None = None,
        data_plane: DataPlane | str | None = "auto",
        config: EmulatorConfig | None = None,
    ) -> None:
        if config is None:
            keys = [api_key] if isinstance(api_key, str) else list(api_key or [])
            config = EmulatorConfig(
                api_keys=keys,
                project_scoped_keys=dict(project_scoped_keys or {}),
                deterministic=deterministic,
                seed=seed,
                manual_clock=manual_clock,
                operation_duration=(
                    (0.0 if deterministic else DEFAULT_OPERATION_DURATION)
                    if operation_duration is None
                    else operation_duration
                ),
                operation_durations=dict(operation_durations or {}),
                rate_limits=rate_limits,
                lock_rule=lock_rule,
                control_token=control_token,
            )
        self.config = config
        self.host = host
        self._port = port
        self.app = create_app(config, resolve_data_plane(data_plane))
        super().__init__(self.app.state.ctx)
        self.controller: Controller = self.app.state.controller  # what /_emulator uses (same state)
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None

    # -- lifecycle --------------------------------------------------------------------------------
    def start(self) -> JamboEmulator:
        if self._thread is not None:
            return self
        raise_open_files_limit()
        warning = exposure_warning(self.host, self.config)
        if warning is not None:
            log.warning("%s", warning)
        sock = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self._port))
        sock.listen(2048)
        self._socket = sock
        self._port = sock.getsockname()[1]
        server = uvicorn.Server(uvicorn_config(self.app))
        self._server = server
        errors: list[BaseException] = []

        def run() -> None:
            try:
                server.run(sockets=[sock])
            except BaseException as exc:  # noqa: BLE001 - handed to the starting thread below
                errors.append(exc)

        self._thread = threading.Thread(target=run, name="jambo-emulator", daemon=True)
        self._thread.start()
        while not server.started:
            if errors or not self._thread.is_alive():
                self.stop()
                raise RuntimeError(
                    f"the Jambo API emulator failed to start: {errors[0] if errors else 'exited'}"
                )
            self._thread.join(0.01)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=15)
        if self._socket is not None:
            self._socket.close()
        self._server, self._thread, self._socket = None, None, None

    def __enter__(self) -> JamboEmulator:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- addresses --------------------------------------------------------------------------------
    @property
    def port(self) -> int:
        return self._port

    @property
    def root_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self._port}"

    @property
    def base_url(self) -> str:
        return f"{self.root_url}/api/v2"

    @property
    def control_url(self) -> str:
        return f"{self.root_url}/_emulator"

    @property
    def api_key(self) -> str:
        """The first personal key (generated when none was given)."""
        return self.ctx.primary_key

    # -- conveniences (the controls are inherited from Controller) ---------------------------------
    def client(self, **kwargs: Any) -> httpx.Client:
        """An httpx client for the API with the key set (close it, or use it as a context manager)."""
        headers = {"Authorization": f"Bearer {self.api_key}", "Accept": "application/json"}
        return httpx.Client(base_url=self.base_url, headers=headers, timeout=30, **kwargs)

    def create_project(self, name: str | None = None, **project: Any) -> dict[str, Any]:
        """``POST /projects`` (a real API call); returns the whole response body."""
        if name is not None:
            project["name"] = name
        with self.client() as client:
            response = client.post("/projects", json={"project": project})
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        return body
