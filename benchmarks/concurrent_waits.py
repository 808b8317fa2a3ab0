"""Concurrent waits in one asyncio loop (as in a triggerer) against the emulator with its limits on.

    .venv/bin/python benchmarks/concurrent_waits.py [--waits 100,500,1000] [--duration 20] [--projects 10]
    .venv/bin/python benchmarks/concurrent_waits.py --sensors 500

``--sensors N`` measures only the no-history case (issue 23): N ``create_branch`` of 32 s on one
fresh project, sent over ~9 s with the limits off (no ``create_branch`` finished there before, so
nothing is learned of them), then, limits on, N ``JamboOperationSensor(deferrable=True)`` tasks,
each started at a random (seeded) offset over 5 s: ``execute`` defers, its trigger is rebuilt from
``serialize()`` and run in this loop, as a triggerer does. Measured 2026-12-05 (before: 19:38 UTC,
the previous rules; after: 20:09, issue 23's), and ``--waits 1000 --projects 0 --baselines none``
after (20:10), so that the 1,000-wait figures can be compared with those below:

    waits by        N  req/min   429s errors cpu ms/wm KiB/wait   p50 s   p95 s  load
    sensors (before) 500    37      0      0      2.74     14.2    2.67    6.59  3.37
    sensors (after)  500   121      0      0      6.20     15.7    0.26    0.50  0.93
    ours (after)    1000   123      0      0      2.71     10.7    0.43    0.94  1.06
    sensors (look rule) 500  121    0      0      5.48     16.0    0.26    0.49  1.25
    ours (look rule) 1000   123     0      0      3.28     10.7    0.50    1.01  1.82
    sensors (round trip) 500 124    0      0      6.16     16.1    0.27    0.51  0.00
    ours (round trip) 1000  140     0      0      4.34     10.7    0.43    0.80  0.04
    sensors (longest likely) 500 124 0     0      6.19     16.0    0.27    0.51  0.03
    ours (longest likely) 1000 140  0      0      3.21     10.9    0.40    0.81  0.01

Rows 4-5: the same commands at 23:14-23:17 UTC with issue 23's later look rule (the
latest 65 % of learned ends seen within 0.5 s, ``hooks/waiting.py`` ``look_at``): no regression
(one learned duration, 32 s, is a narrow spread: one look at it). Rows 6-7: 2026-12-06
06:03-06:05 UTC, looks allowing for the round trip and one-request rounds 0.4 s apart at the
closest (``max_requests_per_second`` 2.5, was 2): 14 % more requests a minute for 1,000 waits,
far under the 600 allowed, p95 0.80 s instead of 0.94-1.01 s. Rows 8-9: 09:40-09:41 UTC, looks
running past the longest learned span by the spans' spacing (``longest_likely``): no regression.

With nothing learned, every wait backed off alone to its cap (the sensor's 5 s), and the first
learned look was timed from the trigger's start, not the operation's; now waits backing off share
the watch's rounds (one list call every 0.5 s serves all 500) and ages come from ``created_at``.

For each N, N operations are started (``create_branch``, created with the emulator's limits off:
the set-up is not measured; each batch's duration is set so that it ends ``--duration`` to twice
that after the set-up, so every wait starts before its operation ends), then the limits (700
requests/min per key, 40/s per route) are switched on and N waits run in this process, pinned to
the cores the emulator (on core 0, its own process) does not use:

- **ours**: N ``JamboOperationTrigger``s (one per operation), all in one loop: they share the
  process's poller and request budget;
- **5s-poller** (baseline, same run): a minimal poller per operation reading it by id every 5 s
  (the documented approach), on one shared ``httpx.AsyncClient``, retrying a 429 at its next tick;
- **HttpSensor** (baseline, same run): N of the http provider's ``HttpSensorTrigger`` for as long
  as ours took. It fires on the first answer that is not a 404, and an operation's URL answers 200
  while it runs, so it cannot wait for an operation: each waits on a URL that stays 404, which is
  what N generic HTTP waits cost (requests, 429s, CPU, memory; no detection delay).

Printed per run: requests/min in total (emulator request log), 429s, errors (waits not ending in
success), CPU of this process per wait-minute, RSS growth per wait over a warm baseline (a warm-up
run first; RSS never shrinks, so only the first measured run's figure is meaningful: later ones
start above their peak and print 0 or little), detection delay p50/p95 (when the wait returned minus
when the operation finished, the emulator's exact time from ``/_emulator/operation_times``; the
API's stamps are whole seconds), and the load average. ``--projects`` adds a run of the largest N
spread over that many projects (fairness: per-project p50/p95 ranges, projects with a wait not done).

Measured 2026-12-02 06:12-06:30 UTC on the shared 2-core machine (load 0-2; 10-20-s operations):

    waits by        N  req/min   429s errors cpu ms/wm KiB/wait   p50 s   p95 s
    ours          100       39      0      0      2.99      2.8    1.72    1.75
    5s-poller     100    1,150    320      0     16.17     28.2    5.81   10.88
    HttpSensor    100   10,376  3,069      -     70.29    120.7       -       -
    ours          500       47      0      0      1.31        -    1.69    1.93
    5s-poller     500    3,670  2,102      0     32.71        -    8.78   31.00
    HttpSensor    500   42,539 16,242      -     86.62        -       -       -
    ours         1000       57      0      0      1.48        -    0.92    1.90
    5s-poller    1000    4,676  4,497      0     28.29        -   15.42   49.42
    HttpSensor   1000   51,303 26,410      -     57.07        -       -       -
    ours    1000/10 projects  409   0      0      1.93        -    0.74    1.92  (per project p50
            0.72-0.76 s, p95 1.92-1.95 s; none starved)
    5s-poller 1000/10 projects 4,135 3,258 0     33.10        -   12.11   43.67  (p50 7.9-22.8 s)

    --waits 1000 --projects 0 (06:30 UTC, load 0.4), so that RSS is the first run's:
    ours         1000       61      0      0      1.50      8.4    0.55    1.97

Detection is bounded by the trigger's ``poll_interval`` (2 s): these operations' durations differ
batch to batch, so what was learned says little and the waits back off to the cap. The 100-wait
run's operations end together, so its p50 and p95 are one phase of that 2-s grid.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import resource
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
#: Longest wait of a run (seconds): every configuration is bounded in time.
WAIT_LIMIT = 150.0


def start_emulator() -> Server:
    """The emulator on core 0, this process (the waiters) on the others: the emulator's CPU is not
    counted as ours, and the waiters' loop cannot starve it (nor it them)."""
    exe = Path(sys.executable).with_name("jambo-emulator")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "jambo_emulator"]
    cmd += ["--host", "127.0.0.1", "--port", "0", "--api-key", API_KEY, "--postgres", "off"]
    server = _start("emulator", cmd, 0, dict(os.environ))
    others = set(os.sched_getaffinity(0)) - {0}
    if others:
        os.sched_setaffinity(0, others)
    return server


def control(origin: str, method: str, path: str, body: Any = None) -> Any:
    # The control API takes every change as JSON, an empty one too.
    if body is None and method != "GET":
        body = {}
    return _http(method, f"{origin}/_emulator{path}", body)


def api(origin: str, method: str, path: str, body: Any = None) -> Any:
    return _http(method, f"{origin}/api/v2{path}", body)


def set_up(origin: str, n: int, projects: int, duration: float) -> dict[str, list[str]]:
    """N create_branch operations spread over ``projects`` projects; limits off while creating.

    Creating 1,000 operations takes longer than an operation here, so each batch is given the
    duration that makes it end ``duration`` to ``2 * duration`` seconds after the set-up is over
    (spread evenly): every wait starts before its operation ends, and they end at different times.
    """
    control(origin, "POST", "/reset")
    control(origin, "PUT", "/rate_limits", {"enabled": False})
    control(origin, "PUT", "/lock_rule", {"enabled": False})
    control(origin, "PUT", "/operation_durations", {"default": 0.0})
    pids = [
        api(origin, "POST", "/projects", {"project": {"name": f"bench-{i}"}})["project"]["id"]
        for i in range(projects)
    ]
    ops: dict[str, list[str]] = {pid: [] for pid in pids}
    batch = 50
    started = time.monotonic()
    for first in range(0, n, batch):
        elapsed = time.monotonic() - started
        left = (n - first) * (elapsed / first if first else 0.02) + 2.0
        spread = duration * (first + batch / 2) / n
        control(origin, "PUT", "/operation_durations", {"default": min(3600.0, left + duration + spread)})
        for i in range(first, min(n, first + batch)):
            pid = pids[i % projects]
            made = api(origin, "POST", f"/projects/{pid}/branches", {"branch": {"name": f"w-{i}"}})
            ops[pid].append(made["operations"][0]["id"])
    control(origin, "DELETE", "/requests")
    control(origin, "PUT", "/rate_limits", {"enabled": True})
    return ops


def finished_at(origin: str, ops: dict[str, list[str]]) -> dict[str, float]:
    """When each waited operation finished: the emulator's exact time (the API writes whole
    seconds, too coarse for sub-second delays)."""
    out: dict[str, float] = {}
    for pid, ids in ops.items():
        wanted = set(ids)
        for op in control(origin, "GET", f"/operation_times?project_id={pid}")["operations"]:
            if op["id"] in wanted and op["status"] == "finished":
                out[op["id"]] = op["finished_at"]
    return out


def rss_kib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 1024


def quantile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


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
    per_project: dict[str, list[float]]
    load: float

    @property
    def per_minute(self) -> float:
        return self.requests / self.seconds * 60

    def line(self) -> str:
        p50, p95 = quantile(self.delays, 0.5), quantile(self.delays, 0.95)
        return (
            f"{self.name:11} {self.n:5d} {self.per_minute:8.0f} {self.rate_limited:6d} "
            f"{self.errors:6d} {self.cpu_ms_per_wait_minute:9.2f} {self.rss_kib_per_wait:8.1f} "
            f"{p50:7.2f} {p95:7.2f} {self.load:5.2f}"
        )

    def fairness(self) -> str:
        p50s = {pid: quantile(d, 0.5) for pid, d in self.per_project.items()}
        p95s = {pid: quantile(d, 0.95) for pid, d in self.per_project.items()}
        starved = [pid for pid, d in self.per_project.items() if not d]
        return (
            f"{'':11} per project ({len(p50s)}): p50 {min(p50s.values()):.2f}-{max(p50s.values()):.2f} s, "
            f"p95 {min(p95s.values()):.2f}-{max(p95s.values()):.2f} s; "
            f"projects with a wait not done: {len(starved)}"
        )


Outcomes = tuple[dict[str, float], dict[str, str]]


async def ours(origin: str, ops: dict[str, list[str]]) -> Outcomes:
    from airflow_provider_jambo.triggers.operation_trigger import JamboOperationTrigger

    done: dict[str, float] = {}
    status: dict[str, str] = {}
    deadline = time.time() + WAIT_LIMIT

    async def one(pid: str, op_id: str) -> None:
        trigger = JamboOperationTrigger(
            jambo_conn_id="jambo_bench", project_id=pid, operation_ids=[op_id], deadline=deadline
        )
        async for event in trigger.run():
            done[op_id] = time.time()
            status[op_id] = event.payload["status"]

    await asyncio.gather(*(one(pid, op_id) for pid, ids in ops.items() for op_id in ids))
    return done, status


async def five_second_poller(origin: str, ops: dict[str, list[str]]) -> Outcomes:
    import httpx

    done: dict[str, float] = {}
    status: dict[str, str] = {}
    limits = httpx.Limits(max_connections=100)
    end = time.time() + WAIT_LIMIT
    async with httpx.AsyncClient(
        base_url=f"{origin}/api/v2", headers={"Authorization": f"Bearer {API_KEY}"}, limits=limits, timeout=60
    ) as client:

        async def one(pid: str, op_id: str) -> None:
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


async def http_sensor_trigger(origin: str, ops: dict[str, list[str]]) -> Outcomes:
    """N ``HttpSensorTrigger``s (poke_interval 5 s) for as long as ours took.

    That trigger fires on the first answer that is not a 404, and an operation's URL answers 200
    while it runs, so it cannot wait for an operation; what it can wait for is a resource to appear.
    Each one here waits on a URL that stays 404 (an operation id that does not exist), which
    measures what N such generic waits cost the account (requests, 429s, CPU, memory); there is no
    detection delay to report.
    """
    import logging

    from airflow.providers.http.triggers.http import HttpSensorTrigger

    # Its hook logs every 404 and retry: N waits' worth of lines would drown the figures.
    logging.getLogger("airflow.providers.http").setLevel(logging.CRITICAL)

    headers = {"Authorization": f"Bearer {API_KEY}"}
    window = float(os.environ.get("BENCH_HTTP_WINDOW", "30"))

    async def one(pid: str, i: int) -> None:
        trigger = HttpSensorTrigger(
            endpoint=f"api/v2/projects/{pid}/operations/{'0' * 8}-0000-4000-8000-{i:012d}",
            http_conn_id="http_bench",
            headers=headers,
            poke_interval=BASELINE_INTERVAL,
        )
        async for _event in trigger.run():
            return

    tasks = [asyncio.ensure_future(one(pid, i)) for pid, ids in ops.items() for i, _ in enumerate(ids)]
    await asyncio.sleep(window)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return {}, {}


#: The no-history sensor case (issue 23): each create lasts this long, all sent over ``SENSOR_SEND``
#: seconds, the sensors started at random offsets over ``SENSOR_START`` seconds.
SENSOR_OP_SECONDS = 32.0
SENSOR_SEND = 9.0
SENSOR_START = 5.0


def set_up_sensors(origin: str, n: int) -> dict[str, list[str]]:
    """N ``create_branch`` of 32 s on one fresh project, sent over ~9 s (limits off while sending):
    no ``create_branch`` has finished in the project before, so nothing about them is learned."""
    control(origin, "POST", "/reset")
    control(origin, "PUT", "/rate_limits", {"enabled": False})
    control(origin, "PUT", "/lock_rule", {"enabled": False})
    control(origin, "PUT", "/operation_durations", {"default": 0.0, "create_branch": SENSOR_OP_SECONDS})
    pid = api(origin, "POST", "/projects", {"project": {"name": "sensors"}})["project"]["id"]
    ids: list[str] = []
    started = time.monotonic()
    for i in range(n):
        # Paced: the i-th create is sent at i/n of the ~9-s window.
        delay = started + SENSOR_SEND * i / n - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        ids.append(
            api(origin, "POST", f"/projects/{pid}/branches", {"branch": {"name": f"s-{i}"}})["operations"][0][
                "id"
            ]
        )
    control(origin, "DELETE", "/requests")
    control(origin, "PUT", "/rate_limits", {"enabled": True})
    return {pid: ids}


async def sensors(origin: str, ops: dict[str, list[str]]) -> Outcomes:
    """``JamboOperationSensor(deferrable=True)`` per operation, as a DAG runs it: ``execute`` defers,
    its trigger is rebuilt from ``serialize()`` (as the triggerer does) and run in this loop; each
    sensor starts at a random offset (seeded) over ``SENSOR_START`` seconds."""
    import random

    from airflow.providers.common.compat.module_loading import import_string
    from airflow.providers.common.compat.sdk import TaskDeferred

    from airflow_provider_jambo.sensors.operation_sensor import JamboOperationSensor

    done: dict[str, float] = {}
    status: dict[str, str] = {}
    rng = random.Random(23)

    async def one(pid: str, op_id: str, offset: float) -> None:
        await asyncio.sleep(offset)
        sensor = JamboOperationSensor(
            task_id=f"wait-{op_id}",
            operation_ids=[op_id],
            project_id=pid,
            jambo_conn_id="jambo_bench",
            deferrable=True,
            timeout=WAIT_LIMIT,
        )
        try:
            sensor.execute({})
        except TaskDeferred as deferred:
            classpath, kwargs = deferred.trigger.serialize()
            trigger = import_string(classpath)(**kwargs)
        else:
            raise RuntimeError("the sensor did not defer")
        async for event in trigger.run():
            done[op_id] = time.time()
            status[op_id] = event.payload["status"]

    await asyncio.gather(
        *(one(pid, op_id, rng.uniform(0, SENSOR_START)) for pid, ids in ops.items() for op_id in ids)
    )
    return done, status


RUNNERS = {
    "ours": ours,
    "sensors": sensors,
    "5s-poller": five_second_poller,
    "HttpSensor": http_sensor_trigger,
}


def warm_up(origin: str) -> None:
    """A few short waits of each kind first, so a measured run pays no first-use cost (imports,
    connection set-up, allocator arenas) and the RSS baseline is a warm process's."""
    from airflow_provider_jambo.hooks.budget import reset_budgets
    from airflow_provider_jambo.hooks.operation_durations import forget_durations

    for name in ("ours", "5s-poller"):
        ops = set_up(origin, 20, 1, 0.5)
        asyncio.run(RUNNERS[name](origin, ops))
    reset_budgets()
    forget_durations()


def measure(name: str, origin: str, n: int, projects: int, duration: float) -> Run:
    from airflow_provider_jambo.hooks.budget import reset_budgets
    from airflow_provider_jambo.hooks.operation_durations import forget_durations

    reset_budgets()
    forget_durations()
    ops = set_up_sensors(origin, n) if name == "sensors" else set_up(origin, n, projects, duration)
    runner = RUNNERS[name]
    gc.collect()
    rss0, cpu0, t0 = rss_kib(), time.process_time(), time.time()
    peak = [rss0]

    async def main() -> Outcomes:
        async def sample() -> None:
            while True:
                peak[0] = max(peak[0], rss_kib())
                await asyncio.sleep(0.25)

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
    # From the operation's end, or from the start of the waits for one that ended before (none should).
    delays = {i: done[i] - max(ends[i], t0) for i in done if i in ends}
    wait_minutes = (sum(done[i] - t0 for i in done) if done else seconds * n) / 60 or 1.0
    expected = sum(len(v) for v in ops.values())
    errors = 0 if name == "HttpSensor" else expected - sum(1 for v in status.values() if v == "success")
    return Run(
        name,
        n,
        seconds,
        len(reads),
        sum(1 for r in reads if r["status"] == 429),
        errors,
        cpu * 1000 / wait_minutes,
        (peak[0] - rss0) / n,
        list(delays.values()),
        {pid: [delays[i] for i in ids if i in delays] for pid, ids in ops.items()},
        os.getloadavg()[0],
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--waits", default="100,500,1000", help="comma-separated N")
    parser.add_argument("--duration", type=float, default=10.0, help="operations end 1-2x this after set-up")
    parser.add_argument("--projects", type=int, default=10, help="projects for the fairness run (0: skip)")
    parser.add_argument(
        "--baselines", default="5s-poller,HttpSensor", help="comma-separated: 5s-poller, HttpSensor (or none)"
    )
    parser.add_argument(
        "--sensors",
        type=int,
        default=0,
        help="instead: N deferred JamboOperationSensors, one 32-s create each, nothing learned before",
    )
    args = parser.parse_args()
    home = tempfile.mkdtemp(prefix="jambo-bench-home-")
    os.environ["AIRFLOW_HOME"] = home
    baselines = [b for b in args.baselines.split(",") if b in RUNNERS and b != "ours"]
    # Imports paid before anything is measured (a triggerer has them loaded already).
    import httpx  # noqa: F401

    import airflow_provider_jambo.triggers.operation_trigger  # noqa: F401

    if "HttpSensor" in baselines:
        import airflow.providers.http.triggers.http  # noqa: F401

    server = start_emulator()
    try:
        host, port = server.origin.removeprefix("http://").rsplit(":", 1)
        os.environ["AIRFLOW_CONN_JAMBO_BENCH"] = json.dumps(
            {"conn_type": "jambo", "host": server.origin + "/api/v2", "password": API_KEY}
        )
        os.environ["AIRFLOW_CONN_HTTP_BENCH"] = json.dumps(
            {"conn_type": "http", "host": host, "port": int(port), "schema": "http"}
        )
        warm_up(server.origin)
        print(
            f"{'waits by':11} {'N':>5} {'req/min':>8} {'429s':>6} {'errors':>6} {'cpu ms/wm':>9} "
            f"{'KiB/wait':>8} {'p50 s':>7} {'p95 s':>7} {'load':>5}",
            flush=True,
        )
        if args.sensors:
            print(measure("sensors", server.origin, args.sensors, 1, 0.0).line(), flush=True)
            return 0
        sizes = [int(x) for x in args.waits.split(",") if x]
        plan = [(n, 1) for n in sizes]
        if args.projects:
            plan.append((max(sizes), args.projects))
        for n, projects in plan:
            runs = []
            for name in ["ours", *baselines]:
                if name == "HttpSensor":
                    os.environ["BENCH_HTTP_WINDOW"] = f"{runs[0].seconds:.1f}"
                runs.append(measure(name, server.origin, n, projects, args.duration))
                print(runs[-1].line() + (f"   ({projects} projects)" if projects > 1 else ""), flush=True)
                if projects > 1:
                    print(runs[-1].fairness(), flush=True)
            for run in runs[1:]:
                if run.requests:
                    print(
                        f"{'':11} ours/{run.name} requests per minute: "
                        f"{runs[0].per_minute / run.per_minute:.3f}",
                        flush=True,
                    )
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
