from __future__ import annotations

from operators.jambo_testing import jambo_project  # noqa: F401  (fixture)
from operators.realtime import live_project, realtime_emulator  # noqa: F401  (fixtures)
