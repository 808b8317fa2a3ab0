"""One real data plane (private PostgreSQL server) for the whole session; each test gets its own
project id, so tests never see each other's branches."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

from jambo_emulator.dataplane.pg_server import unavailable_reason
from jambo_emulator.dataplane.postgres import PostgresDataPlane

from .support import Project

_HERE = Path(__file__).resolve().parent
_REASON = unavailable_reason()
_projects = itertools.count(1)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.is_relative_to(_HERE):
            item.add_marker(pytest.mark.postgres)
            if _REASON is not None:
                item.add_marker(pytest.mark.skip(reason=f"PostgreSQL data plane unavailable: {_REASON}"))


@pytest.fixture(scope="session")
def plane() -> Iterator[PostgresDataPlane]:
    dp = PostgresDataPlane()
    dp.start()
    yield dp
    dp.stop()


@pytest.fixture
def project(plane: PostgresDataPlane) -> Iterator[Project]:
    proj = Project(plane, f"proj-{next(_projects)}")
    plane.create_branch(proj.id, "br-main", None)
    plane.create_role(proj.id, "br-main", "neondb_owner", proj.password)
    plane.create_database(proj.id, "br-main", "neondb", "neondb_owner")
    yield proj
    plane.delete_project(proj.id)
