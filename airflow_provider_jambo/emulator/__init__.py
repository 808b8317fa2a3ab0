"""The local Jambo API emulator (control plane; optional real-PostgreSQL data plane).

``JamboEmulator`` runs it in process, ``create_app`` gives the ASGI app, ``jambo-emulator`` (or
``python -m airflow_provider_jambo.emulator``) runs it from a shell.

The names are imported on first use, not with the package: importing a submodule (the pytest
plugin, ``config``) costs nothing and pulls no server in, and no submodule's import comes back
here half-done (the cycle ``__init__`` -> ``server`` -> ``control`` -> ``routes`` -> ``__init__``).
The server needs the ``emulator`` extra; without it the first use says what to install.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_provider_jambo.emulator.app import create_app
    from airflow_provider_jambo.emulator.config import EmulatorConfig
    from airflow_provider_jambo.emulator.server import JamboEmulator

__all__ = ["EmulatorConfig", "JamboEmulator", "create_app"]

_HOMES = {
    "EmulatorConfig": "airflow_provider_jambo.emulator.config",
    "JamboEmulator": "airflow_provider_jambo.emulator.server",
    "create_app": "airflow_provider_jambo.emulator.app",
}
#: What to tell someone whose install lacks the server's dependencies.
MISSING_EXTRA = (
    "the Jambo API emulator needs its server dependencies (FastAPI, uvicorn, cryptography): "
    "pip install 'airflow-provider-jambo[emulator]'"
)


class EmulatorDependencyError(ImportError):
    """The ``emulator`` extra is not installed."""


def require_server() -> None:
    """Raise ``EmulatorDependencyError`` naming the extra when a server dependency is missing."""
    for module in ("fastapi", "uvicorn", "cryptography"):
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise EmulatorDependencyError(f"{MISSING_EXTRA} ({module} is missing)") from exc


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    if name != "EmulatorConfig":
        require_server()
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value
