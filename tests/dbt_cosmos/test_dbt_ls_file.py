"""The dbt example's task group is rendered from a ``dbt ls`` file: it must match the project."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DBT = ROOT / ".venv-dbt" / "bin" / "dbt"


@pytest.mark.skipif(not DBT.exists(), reason="dbt's virtualenv is missing: run scripts/bootstrap")
def test_the_dbt_ls_file_matches_the_project() -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "dbt_ls_file.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
