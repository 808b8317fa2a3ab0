"""``python -m jambo_emulator``: the same as ``jambo-emulator``."""

from __future__ import annotations

import sys

from jambo_emulator.cli import main

sys.exit(main())
