"""One port for every endpoint, routed by the TLS server name (the endpoint host), and URIs that
work from elsewhere: a URI built from the endpoint host alone (as other clients build them) plus
``hostaddr``; a client in another network namespace through the advertised address."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator

import psycopg
import pytest

from jambo_emulator.dataplane.postgres import PostgresDataPlane
from jambo_emulator.server import resolve_data_plane

from .support import Project, scalar


def _bare_uri(project: Project, endpoint_host: str, port: int) -> str:
    """What the official CLI prints for an endpoint, with only the port changed (no emulator
    query parameters)."""
    return (
        f"postgresql://neondb_owner:{project.password}@{endpoint_host}:{port}/neondb"
        "?sslmode=require&channel_binding=require"
    )


def test_every_endpoint_shares_one_port_and_the_host_picks_the_branch(project: Project) -> None:
    with project.connect(project.endpoint("br-main")) as conn:
        conn.execute("CREATE TABLE marker AS SELECT 'main' AS branch")
    project.branch("br-other")
    with project.connect(project.endpoint("br-other")) as conn:
        conn.execute("UPDATE marker SET branch = 'other'")
    main, other = project.endpoint("br-main"), project.endpoint("br-other")
    assert main.port == other.port == project.plane.port
    for address, expected in ((main, "main"), (other, "other")):
        for host in (address.host, address.pooler_host):
            with psycopg.connect(f"{_bare_uri(project, host, address.port)}&hostaddr=127.0.0.1") as conn:
                assert scalar(conn, "SELECT branch FROM marker") == expected


def test_unknown_endpoint_host_is_refused(project: Project) -> None:
    port = project.plane.port
    assert port is not None
    with pytest.raises(psycopg.OperationalError, match='endpoint "ep-nobody" not found'):
        psycopg.connect(f"{_bare_uri(project, 'ep-nobody.us-east-2.aws.neon.tech', port)}&hostaddr=127.0.0.1")


def test_cli_options_reach_the_data_plane() -> None:
    plane = resolve_data_plane("on", bind_host="127.0.0.1", port=0, advertise_host="localhost")
    assert isinstance(plane, PostgresDataPlane)
    assert plane._advertise == "127.0.0.1"  # a name is resolved: hostaddr must be numeric


# -- another network namespace --------------------------------------------------------------------


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)


@pytest.fixture
def namespace() -> Iterator[tuple[str, str, str]]:
    """(namespace name, host-side address, namespace-side address) on a fresh veth pair."""
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.skip("network namespaces need root and iproute2 (ip)")
    tag = os.getpid() % 200 + 20
    ns, host_if, ns_if = f"jambo-t{tag}", f"jvh{tag}", f"jvn{tag}"
    host_ip, ns_ip = f"10.200.{tag}.1", f"10.200.{tag}.2"
    created = _run("ip", "netns", "add", ns)
    if created.returncode != 0:
        pytest.skip(f"cannot create a network namespace here: {created.stderr.strip()}")
    try:
        for argv in (
            ("ip", "link", "add", host_if, "type", "veth", "peer", "name", ns_if),
            ("ip", "link", "set", ns_if, "netns", ns),
            ("ip", "addr", "add", f"{host_ip}/24", "dev", host_if),
            ("ip", "link", "set", host_if, "up"),
            ("ip", "netns", "exec", ns, "ip", "addr", "add", f"{ns_ip}/24", "dev", ns_if),
            ("ip", "netns", "exec", ns, "ip", "link", "set", ns_if, "up"),
            ("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up"),
        ):
            step = _run(*argv)
            if step.returncode != 0:
                pytest.skip(
                    f"cannot set up the namespace's network ({' '.join(argv)}): {step.stderr.strip()}"
                )
        yield ns, host_ip, ns_ip
    finally:
        _run("ip", "netns", "del", ns)  # also removes the veth pair
        _run("ip", "link", "del", host_if)


@pytest.mark.skipif(shutil.which("psql") is None, reason="psql CLI not installed")
def test_client_in_another_network_namespace_reaches_a_branch(namespace: tuple[str, str, str]) -> None:
    ns, host_ip, _ = namespace
    plane = PostgresDataPlane(bind_host=host_ip, advertise_host=host_ip)
    plane.start()
    try:
        project = Project(plane, "netns")
        plane.create_branch(project.id, "br-main", None)
        plane.create_role(project.id, "br-main", "neondb_owner", project.password)
        plane.create_database(project.id, "br-main", "neondb", "neondb_owner")
        address = project.endpoint("br-main")
        assert f"hostaddr={host_ip}" in address.query
        uri = f"postgresql://neondb_owner:{project.password}@{address.host}:{address.port}/neondb?{address.query}"
        result = _run("ip", "netns", "exec", ns, "psql", uri, "-Atc", "SELECT 'from the namespace'")
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == "from the namespace"
        # And 127.0.0.1 inside the namespace is not the data plane: the advertised address did it.
        local = uri.replace(f"hostaddr={host_ip}", "hostaddr=127.0.0.1")
        assert _run("ip", "netns", "exec", ns, "psql", local, "-Atc", "SELECT 1").returncode != 0
    finally:
        plane.stop()
