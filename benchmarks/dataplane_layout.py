"""Costs of the emulator's data-plane layout: branch create, first connection, memory per branch,
point-in-time copy.

    .venv/bin/python benchmarks/dataplane_layout.py [--branches 20] [--repeat 5]
        [--json out.json] [--baseline baseline.json]

One ``PostgresDataPlane``, one project whose ``main`` holds ``neondb`` with a 1,000-row table.
Measured (medians of ``--repeat``):

- ``branch create``: ``create_branch`` from ``main`` (nobody connected to it);
- ``first connection``: ``start_endpoint`` on a new branch, then connect through the proxy and run
  ``SELECT 1`` (what a client waits for after a create);
- ``memory per branch``: with ``--branches`` live branches (each with a started endpoint and one
  connection made and closed), the resident (RSS) and proportional (PSS: shared pages split among
  the processes sharing them) memory of every PostgreSQL process this run started, divided by the
  number of live branches; and the size of the servers' files (data, WAL archive, base backup;
  memory too when they live on tmpfs, as by default) per live branch;
- the same PSS once every compute but ``main``'s is suspended, and the first connection to a
  suspended branch (``start_endpoint``, connect, ``SELECT 1``);
- ``point-in-time copy``: ``create_branch`` from ``main`` at a timestamp before its last write.

A layout cannot be chosen inside the product, so the figures of another layout come from running
this same script on that commit (``git worktree add /tmp/base <commit>``) with ``--json``, and
passing the file here as ``--baseline``: both are printed side by side with the ratio new/baseline.
Run both on the same machine, one after the other. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import psycopg

from jambo_emulator.dataplane.base import EndpointAddress, PointInTime
from jambo_emulator.dataplane.postgres import PostgresDataPlane

PROJECT, PASSWORD = "bench", "bench-secret"


def _median(fn: Callable[[int], object], repeat: int) -> float:
    times = []
    for i in range(repeat):
        start = time.perf_counter()
        fn(i)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _uri(address: EndpointAddress) -> str:
    return f"postgresql://neondb_owner:{PASSWORD}@{address.host}:{address.port}/neondb?{address.query}"


def _descendants(root: int) -> list[int]:
    """Every process below ``root`` (the PostgreSQL servers are children of their watchdogs)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path("/proc", entry, "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _postgres_memory_kb() -> tuple[int, int]:
    """(RSS, PSS) in kB, summed over the PostgreSQL processes below this process."""
    rss = pss = 0
    for pid in _descendants(os.getpid()):
        try:
            if Path("/proc", str(pid), "comm").read_text().strip() != "postgres":
                continue
            for line in Path("/proc", str(pid), "smaps_rollup").read_text().splitlines():
                if line.startswith("Rss:"):
                    rss += int(line.split()[1])
                elif line.startswith("Pss:"):
                    pss += int(line.split()[1])
        except OSError:
            continue
    return rss, pss


def _server_files_kb(plane: PostgresDataPlane) -> int:
    """kB of the servers' directories (data, WAL archive, base backup: memory when on tmpfs)."""
    servers = getattr(plane, "servers", None) or [plane.server]  # one shared server before the pool
    total = 0
    for server in servers:
        for root, _, files in os.walk(server.base_dir):
            for name in files:
                with contextlib.suppress(OSError):
                    total += os.lstat(os.path.join(root, name)).st_blocks * 512
    return total // 1024


def measure(branches: int, repeat: int) -> dict[str, float]:
    plane = PostgresDataPlane()
    started = time.perf_counter()
    plane.start()
    results = {"data plane start (s)": time.perf_counter() - started}
    try:
        plane.create_branch(PROJECT, "br-main", None)
        plane.create_role(PROJECT, "br-main", "neondb_owner", PASSWORD)
        plane.create_database(PROJECT, "br-main", "neondb", "neondb_owner")
        main = plane.start_endpoint(PROJECT, "br-main", "ep-main", host="ep-main.local")
        assert main is not None
        with psycopg.connect(_uri(main), autocommit=True) as conn:
            conn.execute("CREATE TABLE orders (id int PRIMARY KEY, note text)")
            conn.execute("INSERT INTO orders SELECT g, repeat('x', 80) FROM generate_series(1, 1000) g")

        results["branch create (s)"] = _median(
            lambda i: plane.create_branch(PROJECT, f"br-c{i}", "br-main"), repeat
        )

        def first_connection(i: int) -> None:
            address = plane.start_endpoint(PROJECT, f"br-c{i}", f"ep-c{i}", host=f"ep-c{i}.local")
            assert address is not None
            with psycopg.connect(_uri(address), autocommit=True) as conn:
                conn.execute("SELECT 1")

        results["first connection (s)"] = _median(first_connection, repeat)

        for i in range(repeat, branches - 1):  # main and the ones above are live already
            plane.create_branch(PROJECT, f"br-c{i}", "br-main")
            first_connection(i)
        live = branches
        rss, pss = _postgres_memory_kb()
        results["live branches"] = live
        results["RSS per branch (MB)"] = rss / 1024 / live
        results["PSS per branch (MB)"] = pss / 1024 / live
        results["server files per branch (MB)"] = _server_files_kb(plane) / 1024 / live
        for i in range(branches - 1):  # every compute but main's suspended
            plane.suspend_endpoint(PROJECT, f"br-c{i}", f"ep-c{i}")
        rss, pss = _postgres_memory_kb()
        results["PSS per branch, suspended (MB)"] = pss / 1024 / live
        results["first connection, suspended (s)"] = _median(first_connection, repeat)

        with psycopg.connect(_uri(main), autocommit=True) as conn:
            conn.execute("UPDATE orders SET note = 'before' WHERE id = 1")
            time.sleep(0.05)
            point = time.time()
            time.sleep(0.05)
            conn.execute("UPDATE orders SET note = 'after' WHERE id = 1")
        results["point-in-time copy (s)"] = _median(
            lambda i: plane.create_branch(PROJECT, f"br-pit{i}", "br-main", at=PointInTime(timestamp=point)),
            max(1, repeat // 2),
        )
    finally:
        plane.stop()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--branches", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--baseline", type=Path, help="figures of another layout (this script's --json)")
    args = parser.parse_args()
    if args.branches <= args.repeat:
        parser.error("--branches must exceed --repeat")
    results = measure(args.branches, args.repeat)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    baseline: dict[str, float] = json.loads(args.baseline.read_text()) if args.baseline else {}
    print(f"{'':28}{'this layout':>14}{'baseline':>12}{'ratio':>8}")
    for name, value in results.items():
        base = baseline.get(name)
        ratio = f"{value / base:8.2f}" if base else ""
        base_text = f"{base:12.3f}" if base is not None else ""
        print(f"{name:28}{value:14.3f}{base_text}{ratio}")


if __name__ == "__main__":
    main()
