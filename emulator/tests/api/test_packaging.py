"""Packaging of the emulator: the pytest plugin costs nothing at start-up, a missing server
dependency is explained, and the package imports none of its submodules (so none loops back into it)."""

from __future__ import annotations

import subprocess
import sys

_BLOCK_FASTAPI = "import sys; sys.modules['fastapi'] = None; "


def _python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )


def test_the_pytest_plugin_imports_no_server() -> None:
    result = _python(
        "import sys, jambo_emulator.pytest_plugin; "
        "print(sorted(m for m in ('fastapi', 'uvicorn', 'starlette') if m in sys.modules))"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_a_missing_dependency_is_explained_by_the_command() -> None:
    result = _python(_BLOCK_FASTAPI + "from jambo_emulator.cli import main; sys.exit(main([]))")
    assert result.returncode == 2
    assert "pip install jambo-emulator" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_missing_dependency_is_explained_by_the_package() -> None:
    result = _python(_BLOCK_FASTAPI + "from jambo_emulator import JamboEmulator")
    assert result.returncode == 1
    assert "EmulatorDependencyError" in result.stderr
    assert "pip install jambo-emulator" in result.stderr


def test_the_package_imports_no_submodule_so_none_can_loop_back_into_it() -> None:
    # The old cycle: __init__ -> server -> control -> routes.common -> __init__ (half-done).
    result = _python(
        "import sys, jambo_emulator; print(sorted(m for m in sys.modules if m.startswith('jambo_emulator.')))"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
