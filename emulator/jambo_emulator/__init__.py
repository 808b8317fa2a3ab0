"""The local Jambo API emulator (control plane; optional real-PostgreSQL data plane).

``JamboEmulator`` runs it in process, ``create_app`` gives the ASGI app, ``jambo-emulator`` (or
``python -m jambo_emulator``) runs it from a shell.

The names are imported on first use, not with the package: importing a submodule (the pytest
plugin, ``config``) costs nothing and pulls no server in, and no submodule's import comes back
here half-done (the cycle ``__init__`` -> ``server`` -> ``control`` -> ``routes`` -> ``__init__``).
The distribution depends on the server's libraries; an environment that lacks one anyway (a
partial install, a vendored copy) is told what to install at the first use, not with a traceback.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jambo_emulator.api.app import create_app
    from jambo_emulator.server import JamboEmulator
    from jambo_emulator.state.config import EmulatorConfig

__all__ = ["EmulatorConfig", "JamboEmulator", "create_app"]

_HOMES = {
    "EmulatorConfig": "jambo_emulator.state.config",
    "JamboEmulator": "jambo_emulator.server",
    "create_app": "jambo_emulator.api.app",
}
#: What to tell someone whose install lacks the server's dependencies.
MISSING_DEPENDENCY = (
    "the Jambo API emulator needs its server dependencies (FastAPI, uvicorn, cryptography): "
    "pip install jambo-emulator"
)


class EmulatorDependencyError(ImportError):
    """A server dependency of the emulator is not installed."""


def require_server() -> None:
    """Raise ``EmulatorDependencyError`` naming the extra when a server dependency is missing."""
    for module in ("fastapi", "uvicorn", "cryptography"):
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise EmulatorDependencyError(f"{MISSING_DEPENDENCY} ({module} is missing)") from exc


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    if name != "EmulatorConfig":
        require_server()
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value
