from __future__ import annotations

from operators.jambo_testing import jambo_project  # noqa: F401  (fixture)
