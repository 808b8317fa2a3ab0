"""``JamboEmulator`` defaults to ``data_plane="auto"``, like ``jambo-emulator --postgres``.

The emulator is only constructed here (PostgreSQL starts with the server), so these stay fast.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from jambo_emulator import JamboEmulator
from jambo_emulator.dataplane.base import DataPlaneError
from jambo_emulator.dataplane.pg_server import unavailable_reason


def test_auto_without_binaries_says_so_once_and_serves_the_api_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("JAMBO_PG_BINDIR", str(tmp_path))  # an empty dir: no PostgreSQL here
    emu = JamboEmulator(api_key="k")
    assert not emu.ctx.data_plane.enabled
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1
    assert err[0].startswith("jambo-emulator: data plane off (no PostgreSQL 14+ server binaries")
    assert f"$JAMBO_PG_BINDIR ({tmp_path})" in err[0]


def test_on_without_binaries_fails_naming_the_reason(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JAMBO_PG_BINDIR", str(tmp_path))
    with pytest.raises(DataPlaneError, match=r"postgres=on.*no PostgreSQL 14\+ server binaries"):
        JamboEmulator(api_key="k", data_plane="on")


def test_off_never_looks_for_postgres(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("JAMBO_PG_BINDIR", str(tmp_path))
    assert not JamboEmulator(api_key="k", data_plane="off").ctx.data_plane.enabled
    assert capsys.readouterr().err == ""


@pytest.mark.skipif(unavailable_reason() is not None, reason=f"no PostgreSQL here: {unavailable_reason()}")
def test_auto_with_binaries_picks_the_real_data_plane(capsys: pytest.CaptureFixture[str]) -> None:
    emu = JamboEmulator(api_key="k")
    assert emu.ctx.data_plane.enabled
    assert type(emu.ctx.data_plane).__name__ == "PostgresDataPlane"
    assert capsys.readouterr().err == ""
