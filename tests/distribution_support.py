"""Building the repository's wheels as a release would, and running commands on them (shared by
``test_distributions.py`` and ``test_readme_quickstart.py``)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def uv() -> str:
    found = shutil.which("uv")
    assert found, "uv is not on PATH: scripts/bootstrap installs it"
    return found


def run(*args: str | Path, cwd: Path = ROOT) -> str:
    result = subprocess.run(
        [str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=600, check=False
    )
    assert result.returncode == 0, f"{args} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def build_wheels(out: Path) -> dict[str, Path]:
    """``uv build`` of the provider (the root) and of the emulator; the wheels by package name."""
    run(uv(), "build", "--wheel", "--out-dir", out, ROOT)
    run(uv(), "build", "--wheel", "--out-dir", out, ROOT / "emulator")
    found = {p.name.split("-")[0]: p for p in out.glob("*.whl")}
    assert set(found) == {"airflow_provider_jambo", "jambo_emulator"}, sorted(out.iterdir())
    return found
