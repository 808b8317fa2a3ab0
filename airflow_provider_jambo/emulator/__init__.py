"""The local Jambo API emulator (control plane; optional real-PostgreSQL data plane).

``JamboEmulator`` runs it in process, ``create_app`` gives the ASGI app, ``jambo-emulator`` (or
``python -m airflow_provider_jambo.emulator``) runs it from a shell.
"""

from __future__ import annotations

from airflow_provider_jambo.emulator.app import create_app
from airflow_provider_jambo.emulator.config import EmulatorConfig
from airflow_provider_jambo.emulator.server import JamboEmulator

__all__ = ["EmulatorConfig", "JamboEmulator", "create_app"]
