"""Real PostgreSQL data behind emulated branches (optional; see ``base.DataPlane``).

``create_data_plane(mode)`` is what the emulator's ``--postgres auto|on|off`` resolves through.
"""

from __future__ import annotations

import sys

from jambo_emulator.dataplane.base import (
    DataPlane,
    DataPlaneError,
    EndpointAddress,
    NullDataPlane,
)
from jambo_emulator.dataplane.schema import diff_schemas

MODES = ("auto", "on", "off")


def create_data_plane(
    mode: str, *, bind_host: str = "127.0.0.1", port: int = 0, advertise_host: str | None = None
) -> DataPlane:
    """``off``: control plane only. ``on``: a real PostgreSQL data plane, or DataPlaneError when
    this machine cannot run one. ``auto``: ``on`` when possible, otherwise one line on stderr and
    the control plane alone. The returned plane is not started yet. ``bind_host``/``port``: the
    one listener of all endpoints; ``advertise_host``: the address URIs name (``hostaddr``)."""
    if mode not in MODES:
        raise ValueError(f"data plane mode must be one of {', '.join(MODES)}, got {mode!r}")
    if mode == "off":
        return NullDataPlane()
    # Imported here: the control-plane-only path must not pay for (or depend on) any of this.
    from jambo_emulator.dataplane.pg_server import unavailable_reason

    reason = unavailable_reason()
    if reason is None:
        try:
            from jambo_emulator.dataplane.postgres import PostgresDataPlane
        except ImportError as exc:  # the proxies' TLS needs `cryptography` (an Airflow dependency)
            reason = f"cannot import {exc.name or 'a dependency'} ({exc})"
        else:
            return PostgresDataPlane(bind_host=bind_host, port=port, advertise_host=advertise_host)
    if mode == "on":
        raise DataPlaneError(f"data plane requested (postgres=on) but unavailable: {reason}")
    print(
        f"jambo-emulator: data plane off ({reason}); the API works, connection URIs do not connect",
        file=sys.stderr,
        flush=True,
    )
    return NullDataPlane()


__all__ = [
    "MODES",
    "DataPlane",
    "DataPlaneError",
    "EndpointAddress",
    "NullDataPlane",
    "create_data_plane",
    "diff_schemas",
]
