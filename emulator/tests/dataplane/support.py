"""Helpers for the data-plane tests: a project on the plane, URIs as the API builds them."""

from __future__ import annotations

import os
from dataclasses import dataclass

import psycopg

from jambo_emulator.dataplane.base import EndpointAddress
from jambo_emulator.dataplane.pg_server import PostgresServer
from jambo_emulator.dataplane.postgres import PostgresDataPlane


@dataclass
class Project:
    """A project with a default branch ``br-main`` holding ``neondb`` owned by ``neondb_owner``."""

    plane: PostgresDataPlane
    id: str
    password: str = "main-secret-1"
    #: Endpoint ids are global (the proxy routes by the endpoint host): projects alive at the
    #: same time need different ones.
    endpoint_prefix: str = "ep-"

    def branch(self, branch_id: str, parent: str | None = "br-main", *, schema_only: bool = False) -> None:
        self.plane.create_branch(self.id, branch_id, parent, schema_only=schema_only)

    def endpoint(
        self, branch_id: str, endpoint_id: str | None = None, *, read_only: bool = False
    ) -> EndpointAddress:
        ep = endpoint_id or f"{self.endpoint_prefix}{branch_id}"
        address = self.plane.start_endpoint(
            self.id, branch_id, ep, host=f"{ep}.us-east-2.aws.neon.tech", read_only=read_only
        )
        assert address is not None
        return address

    def connect(
        self,
        address: EndpointAddress,
        *,
        role: str = "neondb_owner",
        password: str | None = None,
        database: str = "neondb",
        pooled: bool = False,
    ) -> psycopg.Connection:
        return psycopg.connect(
            uri(address, role, password or self.password, database, pooled=pooled), autocommit=True
        )


def uri(address: EndpointAddress, role: str, password: str, database: str, *, pooled: bool = False) -> str:
    """The URI exactly as the control plane builds it from an EndpointAddress."""
    host = address.pooler_host if pooled else address.host
    return f"postgresql://{role}:{password}@{host}:{address.port}/{database}?{address.query}"


def scalar(conn: psycopg.Connection, sql: str) -> object:
    row = conn.execute(sql).fetchone()
    assert row is not None
    return row[0]


def kept_while_paused(server: PostgresServer) -> bool:
    """A branch server without a running compute: no processes, its files kept."""
    return (
        server.paused
        and not os.path.exists(os.path.join(server.data_dir, "postmaster.pid"))
        and (os.path.isfile(os.path.join(server.data_dir, "PG_VERSION")))
    )


def server_databases(server: PostgresServer) -> set[str]:
    """The databases on one of the data plane's servers (none once it is stopped)."""
    if not os.path.exists(server.socket_path):
        return set()
    admin = server.admin()
    try:
        return {row[0] for row in admin.execute("SELECT datname FROM pg_database") if row[0]}
    finally:
        admin.close()
