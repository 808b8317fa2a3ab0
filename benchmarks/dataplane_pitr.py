"""Cost of a branch create on the real data plane: plain (copy now) vs. at a point in time.

    .venv/bin/python benchmarks/dataplane_pitr.py [--rows 100000] [--repeat 3]

One private PostgreSQL server (``PostgresDataPlane``), one project whose ``neondb`` holds a table
of ``--rows`` rows (about 100 bytes each). Measured, each ``--repeat`` times (median printed):

- ``plain``: ``create_branch`` with no point in time (``CREATE DATABASE ... TEMPLATE``), the
  baseline measured in the same run;
- ``plain, parent busy``: the same with a client connected to the parent (pg_dump | pg_restore);
- ``at timestamp`` / ``at lsn``: ``create_branch`` at a point taken before the last write
  (point-in-time recovery into a temporary server, then pg_dump | pg_restore).

The ratio (point-in-time / plain) is what to compare across machines. Nothing here is asserted:
targets are read off the printed numbers.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import psycopg

from jambo_emulator.dataplane import base
from jambo_emulator.dataplane.postgres import PostgresDataPlane

PROJECT, PASSWORD = "bench", "bench-secret"


def _timed(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    started = time.perf_counter()
    plane = PostgresDataPlane()
    plane.start()
    print(f"data plane start: {time.perf_counter() - started:.2f} s")
    try:
        plane.create_branch(PROJECT, "br-main", None)
        plane.create_role(PROJECT, "br-main", "neondb_owner", PASSWORD)
        plane.create_database(PROJECT, "br-main", "neondb", "neondb_owner")
        address = plane.start_endpoint(PROJECT, "br-main", "ep-main", host="ep-main.local")
        assert address is not None
        uri = f"postgresql://neondb_owner:{PASSWORD}@{address.host}:{address.port}/neondb?{address.query}"
        with psycopg.connect(uri, autocommit=True) as conn:
            conn.execute(
                "CREATE TABLE items AS SELECT g AS id, md5(g::text) || md5((g + 1)::text) AS payload "
                "FROM generate_series(1, %s) AS g",
                (args.rows,),
            )
            point_lsn = conn.execute("SELECT pg_current_wal_lsn()::text").fetchone()
            point_time = time.time()
            time.sleep(0.05)
            conn.execute("INSERT INTO items VALUES (0, 'after the point')")
        assert point_lsn is not None
        names = iter(range(1_000_000))

        def create(at: object = None) -> None:
            kwargs = {"at": at} if at is not None else {}
            plane.create_branch(PROJECT, f"br-{next(names)}", "br-main", **kwargs)  # type: ignore[arg-type]

        results = {"plain": _timed(create, args.repeat)}
        with psycopg.connect(uri, autocommit=True):
            results["plain, parent busy"] = _timed(create, args.repeat)
        point_in_time = getattr(base, "PointInTime", None)
        if point_in_time is not None:
            results["at timestamp"] = _timed(lambda: create(point_in_time(timestamp=point_time)), args.repeat)
            results["at lsn"] = _timed(lambda: create(point_in_time(lsn=point_lsn[0])), args.repeat)
        baseline = results["plain"]
        print(f"rows: {args.rows}, repeat: {args.repeat} (median)")
        for name, seconds in results.items():
            print(f"  {name:<20} {seconds * 1000:8.0f} ms   x{seconds / baseline:5.1f} of plain")
    finally:
        plane.stop()


if __name__ == "__main__":
    main()
