"""Concurrent waits in one asyncio loop (as in a triggerer) against the emulator with its limits on.

    .venv/bin/python benchmarks/concurrent_waits.py [--waits 100,500,1000] [--duration 20] [--projects 10]

For each N, N operations are started (``create_branch``, each ``--duration`` seconds, created over
a few seconds with the emulator's limits off: the set-up is not measured), then the limits
(700 requests/min per key, 40/s per route) are switched on and N waits run in this process:

- **ours**: N ``JamboOperationTrigger``s (one per operation), all in one loop: they share the
  process's poller and request budget;
- **baseline, measured in the same run**: a minimal poller per operation reading it by id every
  5 s (the documented approach), on one shared ``httpx.AsyncClient``, retrying a 429 at its next tick.

The http provider's ``HttpSensorTrigger`` (the issue's second baseline) is not measured:
apache-airflow-providers-http is not a dependency of this project.

Printed per run: requests/min in total (emulator request log), 429s, errors (waits not ending in
success), CPU of this process per wait-minute, RSS growth per wait, detection delay p50/p95 (local
time the wait returned minus the operation's ``updated_at`` when it finished; same machine clock).
``--projects`` adds a run of the largest N spread over that many projects (fairness: the slowest
project's p95 is printed too).

Measured 2026-12-01 on the busy 2-core development machine (20-s operations; ours vs 5-s poller):
N=100: 38 vs 1,130 req/min, 0 vs 60 429s, p50 1.77 vs 3.71 s, 9.8 ms CPU/wait-minute, 49 KiB/wait;
N=500: 30 vs 600 req/min, 0 vs 78 429s, p50 4.65 vs 30.3 s, 3.5 ms, 5 KiB; N=1,000: 0 errors and
0 429s vs 778 baseline waits not done in 240 s, p50 10.8 s (the emulator was saturated; suspect).
Detection p50 <= 1.5 s and <= 10 KiB/wait at N=100 are not met yet.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

from emulator_throughput import API_KEY, Server, _http, _start  # noqa: E402

BASELINE_INTERVAL = 5.0


def start_emulator() -> Server:
    exe = Path(sys.executable).with_name("jambo-emulator")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "airflow_provider_jambo.emulator"]
    cmd += ["--host", "127.0.0.1", "--port", "0", "--api-key", API_KEY, "--postgres", "off"]
    return _start("emulator", cmd, 0, dict(os.environ))


def control(origin: str, method: str, path: str, body: Any = None) -> Any:
    return _http(method, f"{origin}/_emulator{path}", body)


def api(origin: str, method: str, path: str, body: Any = None) -> Any:
    return _http(method, f"{origin}/api/v2{path}", body)


def set_up(origin: str, n: int, projects: int, duration: float) -> dict[str, list[str]]:
    """N create_branch operations spread over ``projects`` projects; limits off while creating."""
    control(origin, "POST", "/reset")
    control(origin, "PUT", "/rate_limits", {"enabled": False})
    control(origin, "PUT", "/lock_rule", {"enabled": False})
    control(origin, "PUT", "/operation_durations", {"default": 0.0})
    pids = [
        api(origin, "POST", "/projects", {"project": {"name": f"bench-{i}"}})["project"]["id"]
        for i in range(projects)
    ]
    control(origin, "PUT", "/operation_durations", {"default": duration})
    ops: dict[str, list[str]] = {pid: [] for pid in pids}
    for i in range(n):
        pid = pids[i % projects]
        made = api(origin, "POST", f"/projects/{pid}/branches", {"branch": {"name": f"w-{i}"}})
        ops[pid].append(made["operations"][0]["id"])
    control(origin, "DELETE", "/requests")
    control(origin, "PUT", "/rate_limits", {"enabled": True})
    return ops


def finished_at(origin: str, ops: dict[str, list[str]]) -> dict[str, float]:
    from airflow_provider_jambo.models import parse_datetime

    control(origin, "PUT", "/rate_limits", {"enabled": False})
    out: dict[str, float] = {}
    for pid, ids in ops.items():
        page = api(origin, "GET", f"/projects/{pid}/operations?limit=1000")["operations"]
        for op in page:
            if op["id"] in ids and op["status"] == "finished":
                when = parse_datetime(op["updated_at"])
                assert when is not None
                out[op["id"]] = when.timestamp()
    return out


def rss_kib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 1024


@dataclass
class Run:
    name: str
    n: int
    seconds: float
    requests: int
    rate_limited: int
    errors: int
    cpu_ms_per_wait_minute: float
    rss_kib_per_wait: float
    delays: list[float]
    per_project_p95: dict[str, float]

    def line(self) -> str:
        p50 = statistics.median(self.delays) if self.delays else float("nan")
        p95 = statistics.quantiles(self.delays, n=20)[18] if len(self.delays) >= 20 else float("nan")
        worst = max(self.per_project_p95.values()) if len(self.per_project_p95) > 1 else float("nan")
        return (
            f"{self.name:10} {self.n:5d} {self.requests / self.seconds * 60:9.0f} {self.rate_limited:6d} "
            f"{self.errors:6d} {self.cpu_ms_per_wait_minute:8.2f} {self.rss_kib_per_wait:8.1f} "
            f"{p50:7.2f} {p95:7.2f} {worst:9.2f}"
        )


async def ours(origin: str, ops: dict[str, list[str]]) -> tuple[dict[str, float], dict[str, str]]:
    from airflow_provider_jambo.triggers.operation import JamboOperationTrigger

    done: dict[str, float] = {}
    status: dict[str, str] = {}

    async def one(pid: str, op_id: str) -> None:
        trigger = JamboOperationTrigger(
            jambo_conn_id="jambo_bench", project_id=pid, operation_ids=[op_id], deadline=time.time() + 240
        )
        async for event in trigger.run():
            done[op_id] = time.time()
            status[op_id] = event.payload["status"]

    await asyncio.gather(*(one(pid, op_id) for pid, ids in ops.items() for op_id in ids))
    return done, status


async def five_second_poller(
    origin: str, ops: dict[str, list[str]]
) -> tuple[dict[str, float], dict[str, str]]:
    import httpx

    done: dict[str, float] = {}
    status: dict[str, str] = {}
    limits = httpx.Limits(max_connections=100)
    async with httpx.AsyncClient(
        base_url=f"{origin}/api/v2", headers={"Authorization": f"Bearer {API_KEY}"}, limits=limits, timeout=60
    ) as client:

        async def one(pid: str, op_id: str) -> None:
            end = time.time() + 240
            while time.time() < end:
                try:
                    resp = await client.get(f"/projects/{pid}/operations/{op_id}")
                except httpx.HTTPError:
                    resp = None
                if resp is not None and resp.status_code == 200:
                    state = resp.json()["operation"]["status"]
                    if state in ("finished", "skipped", "error", "cancelled"):
                        done[op_id] = time.time()
                        status[op_id] = "success" if state in ("finished", "skipped") else "failed"
                        return
                await asyncio.sleep(BASELINE_INTERVAL)
            status[op_id] = "timeout"

        await asyncio.gather(*(one(pid, op_id) for pid, ids in ops.items() for op_id in ids))
    return done, status


def measure(name: str, origin: str, n: int, projects: int, duration: float) -> Run:
    from airflow_provider_jambo.hooks.budget import reset_budgets
    from airflow_provider_jambo.hooks.waiting import forget_durations

    reset_budgets()
    forget_durations()
    ops = set_up(origin, n, projects, duration)
    runner = ours if name == "ours" else five_second_poller
    rss0, cpu0, t0 = rss_kib(), time.process_time(), time.time()
    peak = [rss0]

    async def main() -> tuple[dict[str, float], dict[str, str]]:
        async def sample() -> None:
            while True:
                peak[0] = max(peak[0], rss_kib())
                await asyncio.sleep(0.5)

        sampler = asyncio.ensure_future(sample())
        try:
            return await runner(origin, ops)
        finally:
            sampler.cancel()

    done, status = asyncio.run(main())
    cpu, seconds = time.process_time() - cpu0, time.time() - t0
    log = control(origin, "GET", "/requests")["requests"]
    reads = [r for r in log if r["method"] == "GET"]
    ends = finished_at(origin, ops)
    delays = [done[i] - ends[i] for i in done if i in ends]
    wait_minutes = sum(done[i] - t0 for i in done) / 60 or 1.0
    per_project: dict[str, float] = {}
    for pid, ids in ops.items():
        d = sorted(done[i] - ends[i] for i in ids if i in done and i in ends)
        per_project[pid] = d[int(0.95 * (len(d) - 1))] if d else float("inf")
    return Run(
        name,
        n,
        seconds,
        len(reads),
        sum(1 for r in reads if r["status"] == 429),
        sum(1 for i in status.values() if i != "success") + (sum(len(v) for v in ops.values()) - len(status)),
        cpu * 1000 / wait_minutes,
        (peak[0] - rss0) / n,
        delays,
        per_project,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--waits", default="100,500,1000", help="comma-separated N")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds per operation")
    parser.add_argument("--projects", type=int, default=10, help="projects for the fairness run (0: skip)")
    parser.add_argument("--baseline", action=argparse.BooleanOptionalAction, default=True)
    args = parser.parse_args()
    home = tempfile.mkdtemp(prefix="jambo-bench-home-")
    os.environ["AIRFLOW_HOME"] = home
    # Imports paid before anything is measured (a triggerer has them loaded already).
    import httpx  # noqa: F401

    import airflow_provider_jambo.triggers.operation  # noqa: F401

    server = start_emulator()
    try:
        os.environ["AIRFLOW_CONN_JAMBO_BENCH"] = json.dumps(
            {"conn_type": "jambo", "host": server.origin + "/api/v2", "password": API_KEY}
        )
        print(
            f"{'poller':10} {'waits':>5} {'req/min':>9} {'429s':>6} {'errors':>6} {'cpu ms/wm':>8} "
            f"{'KiB/wait':>8} {'p50 s':>7} {'p95 s':>7} {'worst p95':>9}"
        )
        sizes = [int(x) for x in args.waits.split(",") if x]
        plan = [(n, 1) for n in sizes]
        if args.projects:
            plan.append((max(sizes), args.projects))
        for n, projects in plan:
            names = ["ours", "5s-poller"] if args.baseline else ["ours"]
            runs = [measure(name, server.origin, n, projects, args.duration) for name in names]
            for run in runs:
                print(run.line() + (f"   ({projects} projects)" if projects > 1 else ""), flush=True)
            if len(runs) == 2 and runs[1].requests:
                print(
                    f"{'':10} ratio ours/baseline requests: {runs[0].requests / runs[1].requests:.3f}",
                    flush=True,
                )
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
