"""``python -m airflow_provider_jambo.emulator``: the same as ``jambo-emulator``."""

from __future__ import annotations

import sys

from airflow_provider_jambo.emulator.cli import main

sys.exit(main())
