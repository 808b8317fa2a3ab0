"""SCRAM-SHA-256-PLUS with ``tls-server-end-point`` channel binding, as the official CLI's URIs
(``channel_binding=require``) need; plain SCRAM-SHA-256 stays accepted."""

from __future__ import annotations

import shutil
import subprocess

import psycopg
import pytest

from .support import Project, scalar, uri


@pytest.mark.parametrize("binding", ["require", "prefer", "disable"])
def test_psycopg_connects_with_each_channel_binding_mode(project: Project, binding: str) -> None:
    address = project.endpoint("br-main")
    target = f"{uri(address, 'neondb_owner', project.password, 'neondb')}&channel_binding={binding}"
    with psycopg.connect(target, autocommit=True) as conn:
        assert scalar(conn, "SELECT 1") == 1


def test_channel_binding_with_a_wrong_password_still_fails(project: Project) -> None:
    address = project.endpoint("br-main")
    target = f"{uri(address, 'neondb_owner', 'wrong', 'neondb')}&channel_binding=require"
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(target)


def test_channel_binding_require_without_tls_is_refused_by_the_client(project: Project) -> None:
    """No TLS, no binding: libpq must refuse rather than authenticate unbound."""
    address = project.endpoint("br-main")
    plain = uri(address, "neondb_owner", project.password, "neondb").replace(
        "sslmode=require", "sslmode=disable"
    )
    plain += "&options=endpoint%3Dep-br-main"  # no TLS, no SNI: the service's way to name it
    with pytest.raises(psycopg.OperationalError, match="channel binding"):
        psycopg.connect(f"{plain}&channel_binding=require")
    with psycopg.connect(plain, autocommit=True) as conn:  # plain SCRAM without TLS still works
        assert scalar(conn, "SELECT 1") == 1


@pytest.mark.skipif(shutil.which("psql") is None, reason="psql CLI not installed")
def test_psql_with_channel_binding_require(project: Project) -> None:
    address = project.endpoint("br-main")
    target = f"{uri(address, 'neondb_owner', project.password, 'neondb')}&channel_binding=require"
    result = subprocess.run(
        ["psql", target, "-Atc", "SELECT 40 + 2"], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "42"
