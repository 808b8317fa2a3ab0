"""``jambo-emulator``: serve the emulator until SIGINT/SIGTERM.

Its first line on stdout is always ``Jambo API emulator listening on http://HOST:PORT/api/v2``
(scripts and tests parse it). Then: the generated key, once, when no ``--api-key`` was given
(``API key: ...``); whether the data plane is on and which PostgreSQL it found; and a ready-to-paste
``AIRFLOW_CONN_JAMBO_DEFAULT`` for the first key (a key given with ``--api-key`` is not echoed: the
line holds a placeholder for it).
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import signal
import socket
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from jambo_emulator import EmulatorDependencyError, require_server
from jambo_emulator.state.clock import MAX_OFFSET
from jambo_emulator.state.config import DEFAULT_OPERATION_DURATION, EmulatorConfig
from jambo_emulator.state.ids import ID_PATTERN

if TYPE_CHECKING:
    from jambo_emulator.dataplane.base import DataPlane

#: What the connection line holds instead of a key the user gave (never echoed).
KEY_PLACEHOLDER = "<your --api-key>"


def _scoped_key(text: str) -> tuple[str, str]:
    key, sep, project_id = text.partition("=")
    if not sep or not key or not project_id:
        raise argparse.ArgumentTypeError(f"expected KEY=PROJECT_ID, got {text!r}")
    if not re.fullmatch(ID_PATTERN, project_id):
        raise argparse.ArgumentTypeError(f"PROJECT_ID must match {ID_PATTERN}, got {project_id!r}")
    return key, project_id


def _duration(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def _offset(text: str) -> float:
    value = float(text)
    if not -MAX_OFFSET <= value <= MAX_OFFSET:  # also refuses NaN
        raise argparse.ArgumentTypeError(f"must be within +-{MAX_OFFSET} s (a hundred years), got {text}")
    return value


def data_plane_line(plane: DataPlane, mode: str) -> str:
    """Whether real PostgreSQL is behind the branches, and which one (or why not)."""
    from jambo_emulator.dataplane.postgres import PostgresDataPlane

    if isinstance(plane, PostgresDataPlane):
        found = plane.binaries
        return (
            f"Data plane: on, PostgreSQL {found.major} ({found.bindir}), starting in the background: "
            "connection URIs connect"
        )
    if mode == "off":
        why = "--postgres off"
    else:
        from jambo_emulator.dataplane.pg_server import unavailable_reason

        why = unavailable_reason() or "its modules could not be imported"
    return f"Data plane: off ({why}): the API works, connection URIs do not connect"


def connection_line(host: str, port: int, api_key: str | None) -> str:
    """A ``jambo_default`` Airflow connection to this emulator, as a shell line to paste.

    ``api_key`` None: the key was given on the command line and is not echoed (a placeholder).
    Bound to all interfaces, Airflow on this machine reaches it on loopback (the provider allows
    plain http to loopback only).
    """
    if host in ("0.0.0.0", "", "::"):
        host = "127.0.0.1"
    url_host = f"[{host}]" if ":" in host else host
    conn = {
        "conn_type": "jambo",
        "host": f"http://{url_host}:{port}/api/v2",
        "password": api_key if api_key is not None else KEY_PLACEHOLDER,
    }
    return f"export AIRFLOW_CONN_JAMBO_DEFAULT='{json.dumps(conn)}'"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="jambo-emulator", description="Local Jambo API v2 emulator.")
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080, help="port; 0 picks a free one (default 8080)")
    parser.add_argument(
        "--api-key",
        action="append",
        default=[],
        metavar="KEY",
        help="accepted personal API key (repeatable); one is generated and printed if omitted",
    )
    parser.add_argument(
        "--project-scoped-key",
        action="append",
        default=[],
        type=_scoped_key,
        metavar="KEY=PROJECT_ID",
        help="a key limited to one project (created if missing)",
    )
    parser.add_argument(
        "--deterministic",
        action="store_true",
        help="seeded ids and keys, manual clock (moves only via /_emulator/clock/advance)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed for --deterministic (default 0)")
    parser.add_argument(
        "--operation-duration",
        type=_duration,
        default=None,
        metavar="SECONDS",
        help=f"seconds each operation takes (default {DEFAULT_OPERATION_DURATION}, 0 with --deterministic)",
    )
    parser.add_argument(
        "--clock-start-offset",
        type=_offset,
        default=0.0,
        metavar="SECONDS",
        help=(
            "start the clock this many seconds ahead of real time (negative: behind, e.g. -172800 "
            "for projects made at start to have existed two days ago; /_emulator/clock/advance "
            "catches up)"
        ),
    )
    parser.add_argument(
        "--no-rate-limits", action="store_true", help="disable the 700/min and 40/s limits (429)"
    )
    parser.add_argument(
        "--no-lock-rule", action="store_true", help="disable the conflicting-operation rule (423)"
    )
    parser.add_argument(
        "--postgres",
        choices=("auto", "on", "off"),
        default="auto",
        help=(
            "real PostgreSQL behind branches: auto (default: when the server binaries are found, "
            "else one line on stderr and the control plane alone), on (or fail), off"
        ),
    )
    parser.add_argument(
        "--control-token",
        default=None,
        metavar="TOKEN",
        help=(
            "require this token (header X-Emulator-Control-Token) on every /_emulator request, and "
            "then answer control requests from beyond loopback too (default: loopback clients only)"
        ),
    )
    parser.add_argument(
        "--allowed-host",
        action="append",
        default=[],
        metavar="NAME",
        help="a Host name the control API accepts besides IP addresses and localhost (repeatable)",
    )
    parser.add_argument(
        "--max-body-bytes",
        type=int,
        default=EmulatorConfig.max_body_bytes,
        metavar="BYTES",
        help="largest request body accepted; larger ones get 413 (default 1 MiB)",
    )
    parser.add_argument(
        "--data-plane-bind",
        default="127.0.0.1",
        metavar="ADDRESS",
        help="address the data plane's one PostgreSQL port listens on (default 127.0.0.1; 0.0.0.0: all)",
    )
    parser.add_argument(
        "--data-plane-port",
        type=int,
        default=0,
        metavar="PORT",
        help="the data plane's one port for every endpoint (default 0: a free port)",
    )
    parser.add_argument(
        "--advertise-host",
        default=None,
        metavar="ADDRESS",
        help=(
            "address connection URIs carry as hostaddr, for clients on other hosts or containers "
            "(default: the bind address, 127.0.0.1 when bound to all)"
        ),
    )
    parser.add_argument(
        "--log-level", default="warning", choices=("critical", "error", "warning", "info", "debug")
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        require_server()
    except EmulatorDependencyError as exc:
        print(f"jambo-emulator: {exc}", file=sys.stderr)
        return 2
    # The server's modules need FastAPI, uvicorn and cryptography, checked just above.
    import uvicorn

    from jambo_emulator.api.app import create_app
    from jambo_emulator.dataplane.base import DataPlaneError
    from jambo_emulator.server import (
        exposure_warning,
        raise_open_files_limit,
        resolve_data_plane,
        uvicorn_config,
    )

    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    duration = args.operation_duration
    if duration is None:
        duration = 0.0 if args.deterministic else DEFAULT_OPERATION_DURATION
    config = EmulatorConfig(
        api_keys=list(args.api_key),
        project_scoped_keys=dict(args.project_scoped_key),
        deterministic=args.deterministic,
        seed=args.seed,
        operation_duration=duration,
        rate_limits=not args.no_rate_limits,
        lock_rule=not args.no_lock_rule,
        control_token=args.control_token,
        allowed_hosts=[name.lower() for name in args.allowed_host],
        max_body_bytes=args.max_body_bytes,
        clock_start_offset=args.clock_start_offset,
    )
    if args.max_body_bytes < 1024:
        print("jambo-emulator: --max-body-bytes must be at least 1024", file=sys.stderr)
        return 2
    try:
        plane = resolve_data_plane(
            args.postgres,
            bind_host=args.data_plane_bind,
            port=args.data_plane_port,
            advertise_host=args.advertise_host,
        )
        app = create_app(config, plane)
    except (ValueError, DataPlaneError) as exc:
        print(f"jambo-emulator: {exc}", file=sys.stderr)
        return 2
    raise_open_files_limit()
    family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((args.host, args.port))
    except OSError as exc:
        print(f"jambo-emulator: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    sock.listen(2048)
    port = sock.getsockname()[1]
    host = f"[{args.host}]" if ":" in args.host else args.host
    server = uvicorn.Server(uvicorn_config(app, log_level=args.log_level))
    warning = exposure_warning(args.host, config)
    ctx = app.state.ctx
    # Print only once the server accepts connections, so "listening" is true when read.
    original_startup = server.startup

    async def startup(sockets: list[socket.socket] | None = None) -> None:
        await original_startup(sockets=sockets)
        print(f"Jambo API emulator listening on http://{host}:{port}/api/v2", flush=True)
        if warning is not None:
            print(f"\n{'!' * 78}\n{warning}\n{'!' * 78}\n", file=sys.stderr, flush=True)
        if ctx.generated_key is not None:
            print(f"API key: {ctx.generated_key}", flush=True)
        print(data_plane_line(plane, args.postgres), flush=True)
        print(
            'Connect Airflow to it (add "extra": {"project_id": "..."} for a default project):',
            flush=True,
        )
        print(connection_line(args.host, port, ctx.generated_key), flush=True)

    server.startup = startup  # type: ignore[method-assign]

    # uvicorn restores these after its own handling and re-raises the signal into them: with
    # Python's defaults that would end in KeyboardInterrupt (SIGINT) or death by SIGTERM, not exit 0.
    def stop(signum: int, frame: object) -> None:
        server.should_exit = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        server.run(sockets=[sock])  # uvicorn's loop setup (uvloop when installed)
    finally:
        sock.close()
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
