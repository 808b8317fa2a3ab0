"""Requests and detection delay per ephemeral-branch lifecycle, ours vs polling each operation every 5 s.

    .venv/bin/python benchmarks/lifecycle_cost.py [--runs 10] [--durations 3,10] [--spread 0.5] [--seed 23]
        [--warmup 0]

A lifecycle is: create a branch with its compute (two operations, create_branch then
start_compute), wait for them, delete the branch, wait for its operations. Each operation lasts a
time drawn from U((1 - spread)·D, (1 + spread)·D) (the emulator's seeded
``/_emulator/operation_duration_spread``; ±50 % by default, so runs repeat), as real ones vary.
Measured against the in-process emulator (limits on), each lifecycle on one project:

- **baseline, same run**: the documented approach: the two calls over plain HTTP, then each
  operation the call returned read by id every 5 s (first read 5 s after the call) until done;
- **hook**: ``JamboHook`` alone: ``branches.create`` + ``operations.wait``, ``branches.delete`` +
  ``operations.wait``;
- **operators**: ``JamboCreateBranchOperator`` / ``JamboDeleteBranchOperator`` with
  ``deferrable=True`` and their defaults, as a DAG runs them: ``execute`` (the inline grace, 10 s);
  when it defers, its trigger rebuilt from ``serialize()`` and run to its event (as a triggerer
  does; the settle hold is 0 here, the trigger runs in process) and a fresh operator resumed.

Requests are the emulator's request log for the whole lifecycle (every method); ``waits`` are the
reads of operations among them (the rest are the calls and the delete's safety read of the branch).
Detection delay: when a wait returned minus when the last of its operations finished (the
emulator's exact time, ``/_emulator/operation_times``; the API's stamps are whole seconds). Durations
learned persist across the runs of a process, as in a triggerer that has waited before; each D
starts from nothing learned (or after ``--warmup`` unmeasured hook lifecycles), so its first run
(shown apart) is what a fresh process pays; ``hook, learned`` runs the hook path again after the
other rows, with 16 spans an action; the mean is of the other runs, the p50/p95 of every wait.
Ratios are against the baseline's mean.

Measured 2026-12-05 on the shared 2-core machine (a CI run beside it, load 2-4), ±50 %, seed 23:
before = the previous rule (each look where another 15 % of the learned spans would be over; 10
lifecycles a row, 19:39-20:09 UTC); after = issue 23's (the latest 65 % of ends seen within
0.5 s, a predecessor's end timing the rest), run A ``--runs 8 --durations 3,10`` (23:21-23:58),
run B the same with ``--warmup 8`` (23:31-00:17):

     op s path           requests  first run  ratio  waits  ratio  p50 s  p95 s
    before
        3 baseline           7.33          8   1.00   5.33   1.00   3.22   4.98
        3 hook               9.78          6   1.33   7.78   1.46   0.49   1.34
        3 operators          9.33          7   1.27   6.33   1.19   0.31   1.06
       10 baseline          16.00         18   1.00  14.00   1.00   2.89   4.99
       10 hook              11.89         10   0.74   9.89   0.71   1.72   4.49
       10 operators         10.00          7   0.62   7.00   0.50   1.22   6.56
    after, run A
        3 baseline           7.29          8   1.00   5.29   1.00   3.10   5.01
        3 hook               6.29          6   0.86   4.29   0.81   0.69   2.57
        3 operators          7.86          5   1.08   4.86   0.92   0.33   2.01
        3 hook, learned      4.86          9   0.67   2.86   0.54   0.40   2.16
       10 baseline          16.00         18   1.00  14.00   1.00   2.63   4.94
       10 hook              13.57         30   0.85  11.57   0.83   0.56   5.40
       10 operators         14.57          6   0.91  11.57   0.83   0.44   9.29
       10 hook, learned      8.29         24   0.52   6.29   0.45   0.56   4.03
    after, run B (--warmup 8)
        3 baseline           7.29          8   1.00   5.29   1.00   2.73   4.91
        3 hook               7.14          4   0.98   5.14   0.97   0.38   2.26
        3 operators          6.29         10   0.86   3.29   0.62   0.43   2.19
        3 hook, learned      5.57          5   0.76   3.57   0.68   0.87   1.39
       10 baseline          15.71         17   1.00  13.71   1.00   2.39   4.92
       10 hook              14.43         15   0.92  12.43   0.91   0.54   9.26
       10 operators          9.14         25   0.58   6.14   0.45   0.76   3.84
       10 hook, learned      8.00         12   0.51   6.00   0.44   0.35   4.70

What bounds it. The target is the median delay, so only half the ends need be seen within the
tolerance τ = 0.5 s, and the cheapest are the latest: a first look that sees every end before it
(the earlier ones late), then looks τ apart paid only by the waits still pending, ``1 + sum(P(still
pending at each later look))`` reads. For one operation in U(0.5·D, 1.5·D), half its ends seen in
time: 1.5 reads at D = 3, 3.25 at D = 10. A wait here is two queued operations (create_branch then
start_compute; suspend_compute then delete_timeline), its end their sum (triangular over D..3D):
covered blind that is 1.76 / 4.09 reads; with the first one's end known for free it is one
uniform again, 1.5 / 3.25. So a lifecycle (2 calls + 2 waits) needs at least 5.0 requests at D = 3
and 8.5 at D = 10 (5.5 / 10.2 blind): the hook's 0.75x is 5.47 and 12.0, the operators' 1.0x 7.29
and 16.0 (they add one safety read of the branch, so at least 6.0 / 9.5).

Against that, with spans learned (8-16 an action), each target is met in one of the two runs,
and none in both: the hook at 3 s (run A: 0.67x, 0.40 s) and at 10 s (run B: 0.51x, 0.35 s); the operators
at 3 s (run B: 0.86x, 0.43 s) and at 10 s (run A: 0.91x, 0.44 s). With 16 waits a row, a p50
moves by a few tenths of a second between runs, the size of the margin the bound leaves at 3 s.
From nothing learned the hook stays above 0.75x (0.85-0.98x): from 0-7 finished operations
quantiles misplace the looks (a fake-clock replay of the rule gives p50 by run 4.6, 1.4, 2.1,
0.9, 0.6, 1.1, 0.7, 0.5 s). The 15-% rule before bought its p50 at 3 s with looks every 15 % of
the spread (1.33x the baseline); this one pays for the ends it must see in time and no others,
and lets the late ends wait longer (p95 up to 9 s at 10 s).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

import httpx

os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="jambo-bench-home-"))
# The settle hold guards a real deferral; here the trigger runs in process.
os.environ.setdefault("AIRFLOW__JAMBO__DEFERRAL_SETTLE_SECONDS", "0")


from task_runner import run_task

from airflow_provider_jambo.create_branch_request import CreateBranchRequest
from airflow_provider_jambo.hooks.jambo import JamboHook
from airflow_provider_jambo.hooks.operation_durations import forget_durations
from airflow_provider_jambo.operators.branch_operators import (
    JamboCreateBranchOperator,
    JamboDeleteBranchOperator,
)
from jambo_emulator import JamboEmulator

# Everything the operators import lazily (in execute, on deferral), paid before anything is measured.
for _lazy in ("hooks.poller", "triggers.operation_trigger", "triggers.project_idle_trigger"):
    importlib.import_module(f"airflow_provider_jambo.{_lazy}")

BASELINE_INTERVAL = 5.0
#: The requests that wait (reads of operations); the rest are the calls themselves and the
#: operators' safety reads.
WAIT_ROUTES = ("/projects/{project_id}/operations", "/projects/{project_id}/operations/{operation_id}")
DONE = ("finished", "skipped", "error", "cancelled")


def run_operator(make: Any) -> tuple[Any, float]:
    """Execute (and, when it defers, run its trigger and resume); returns (result, end time)."""
    result, _ = run_task(make)
    return result, time.time()


def last_end(emu: JamboEmulator, project_id: str, since: float) -> float:
    """When the last of the project's operations created at or after ``since`` finished: the
    emulator's exact time (the API writes whole seconds, too coarse for sub-second delays)."""
    ends = [
        op["finished_at"]
        for op in emu.operation_times(project_id)
        if op["created_at"] >= since and op["finished_at"] is not None
    ]
    return max(ends)


def hook_path(name: str, emu: JamboEmulator, project_id: str) -> list[float]:
    """``JamboHook`` alone: create (with a compute) + wait, delete + wait."""
    delays = []
    with JamboHook() as hook:
        started = time.time()
        made = hook.branches.create(
            CreateBranchRequest(name=name, endpoints=[{"type": "read_write"}]), project_id=project_id
        )
        hook.operations.wait(made.operations, project_id=project_id).raise_for_status()
        delays.append(time.time() - last_end(emu, project_id, started))
        started = time.time()
        gone = hook.branches.delete(made.branch.id, project_id=project_id)
        hook.operations.wait(gone, project_id=project_id).raise_for_status()
        delays.append(time.time() - last_end(emu, project_id, started))
    return delays


def operators_path(name: str, emu: JamboEmulator, project_id: str) -> list[float]:
    """The operators as a DAG runs them (``deferrable=True``, their default grace and poll interval):
    execute, and when it defers its trigger rebuilt from ``serialize()`` and a fresh operator resumed."""
    delays = []
    started = time.time()
    created, done = run_operator(
        lambda: JamboCreateBranchOperator(task_id="create", branch_name=name, deferrable=True)
    )
    delays.append(done - last_end(emu, project_id, started))
    started = time.time()
    _, done = run_operator(
        lambda: JamboDeleteBranchOperator(task_id="delete", branch=created["branch_id"], deferrable=True)
    )
    delays.append(done - last_end(emu, project_id, started))
    return delays


def _poll_each(client: httpx.Client, project_id: str, ops: list[dict[str, Any]]) -> float:
    """Read each operation by id every 5 s until all are done; returns when the last was seen done."""
    pending = [op["id"] for op in ops]
    while pending:
        time.sleep(BASELINE_INTERVAL)
        for op_id in list(pending):
            state = client.get(f"/projects/{project_id}/operations/{op_id}").json()["operation"]["status"]
            if state in DONE:
                pending.remove(op_id)
    return time.time()


def baseline(name: str, client: httpx.Client, emu: JamboEmulator, project_id: str) -> list[float]:
    started = time.time()
    made = (
        client.post(
            f"/projects/{project_id}/branches",
            json={"branch": {"name": name}, "endpoints": [{"type": "read_write"}]},
        )
        .raise_for_status()
        .json()
    )
    delays = [_poll_each(client, project_id, made["operations"]) - last_end(emu, project_id, started)]
    started = time.time()
    gone = client.delete(f"/projects/{project_id}/branches/{made['branch']['id']}").raise_for_status().json()
    delays.append(_poll_each(client, project_id, gone["operations"]) - last_end(emu, project_id, started))
    return delays


#: "hook, learned": the hook path again after the hook and operators rows, each action's spans
#: learned from 16 or more finished operations (what a process that has waited before knows).
PATHS = {"hook": hook_path, "operators": operators_path, "hook, learned": hook_path}
ROWS = ("baseline", "hook", "operators", "hook, learned")
#: A detection this quick counts as in time (the issue's p50 target: half the waits at most).
IN_TIME = 0.5

#: Per (D, path): each lifecycle's requests, each lifecycle's reads of operations, each wait's delay.
Figures = dict[tuple[float, str], tuple[list[int], list[int], list[float]]]


def measure(args: argparse.Namespace, seed: int) -> Figures:
    """One stream: every D's rows on an in-process emulator, each D on a project of its own (so
    the history a first list page teaches is that D's, as in a project whose operations took
    that long); durations drawn with ``seed``."""
    figures: Figures = {}
    with JamboEmulator(
        api_key="bench-key", deterministic=True, manual_clock=False, operation_duration=0.0, data_plane="off"
    ) as emu:
        client = httpx.Client(base_url=emu.base_url, headers={"Authorization": f"Bearer {emu.api_key}"})
        n = 0
        durations = [float(d) for d in args.durations.split(",")]
        # Made before any duration is set: a project's own operations are instant then (made
        # later, they would lock it for a D's time).
        projects = {duration: emu.create_project(name=f"bench-{duration:g}") for duration in durations}
        for duration, created in projects.items():
            project_id = created["project"]["id"] if "project" in created else created["id"]
            os.environ["AIRFLOW_CONN_JAMBO_DEFAULT"] = json.dumps(
                {
                    "conn_type": "jambo",
                    "host": emu.base_url,
                    "password": emu.api_key,
                    "extra": {"project_id": project_id},
                }
            )
            emu.set_operation_durations(default=duration)
            emu.set_operation_duration_spread(args.spread, seed)
            # Each duration starts from nothing learned: its first run is a fresh process's.
            forget_durations()
            for _ in range(args.warmup):
                n += 1
                hook_path(f"bench-{n}", emu, project_id)
            for path in ROWS:
                counts: list[int] = []
                waits: list[int] = []
                delays: list[float] = []
                for _ in range(args.runs):
                    n += 1
                    emu.clear_requests()
                    delays += (
                        PATHS[path](f"bench-{n}", emu, project_id)
                        if path != "baseline"
                        else (baseline(f"bench-{n}", client, emu, project_id))
                    )
                    log = emu.requests()
                    counts.append(len(log))
                    waits.append(sum(1 for r in log if r["route"] in WAIT_ROUTES))
                    if os.environ.get("BENCH_SHOW_REQUESTS"):
                        print(path, [f"{r['method']} {r['path']}" for r in log])
                figures[(duration, path)] = (counts, waits, delays)
        client.close()
    return figures


def report(streams: list[Figures]) -> None:
    """One line per (D, path) over every stream: the mean of the lifecycles after each stream's
    first (the first runs' mean shown apart), the p50/p95 and the share in time of every wait."""
    print(
        f"{'op s':>5} {'path':13} {'requests':>9} {'first run':>10} {'ratio':>6} {'waits':>6}"
        f" {'ratio':>6} {'p50 s':>6} {'p95 s':>6} {'in time':>8} {'lifecycles':>10}"
    )
    for duration in dict.fromkeys(d for d, _ in streams[0]):
        rows = {
            path: (
                [c for f in streams for c in f[(duration, path)][0][1:]],
                [w for f in streams for w in f[(duration, path)][1][1:]],
                [x for f in streams for x in f[(duration, path)][2]],
                [f[(duration, path)][0][0] for f in streams],
            )
            for path in ROWS
        }
        base = statistics.mean(rows["baseline"][0] or rows["baseline"][3])
        base_wait = statistics.mean(rows["baseline"][1] or [1])
        for path, (later, later_waits, delays, firsts) in rows.items():
            ordered = sorted(delays)
            mean = statistics.mean(later or firsts)
            mean_waits = statistics.mean(later_waits) if later_waits else float("nan")
            print(
                f"{duration:5g} {path:13} {mean:9.2f} {statistics.mean(firsts):10.2f} {mean / base:6.2f} "
                f"{mean_waits:6.2f} {mean_waits / base_wait:6.2f} {statistics.median(delays):6.2f} "
                f"{ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]:6.2f} "
                f"{sum(d <= IN_TIME for d in delays) / len(delays):8.2f} {len(later) + len(firsts):10d}",
                flush=True,
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10, help="lifecycles per path and duration")
    parser.add_argument("--durations", default="3,10", help="seconds per operation (D)")
    parser.add_argument(
        "--spread", type=float, default=0.5, help="operations last U((1-spread)·D, (1+spread)·D)"
    )
    parser.add_argument("--seed", type=int, default=23, help="seed of the emulator's duration draws")
    parser.add_argument(
        "--warmup",
        type=int,
        default=0,
        help="hook lifecycles run (not measured) before each D's rows: a process that has waited before",
    )
    parser.add_argument(
        "--streams",
        type=int,
        default=1,
        help="independent processes (each its own emulator, seed + i) measured at once, pooled",
    )
    parser.add_argument("--stream-json", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.stream_json:  # one stream of a --streams run: its figures for the parent
        figures = measure(args, args.seed)
        print(json.dumps([[d, path, *values] for (d, path), values in figures.items()]))
        return
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    if args.streams <= 1:
        report([measure(args, args.seed)])
        return
    argv = [f"--runs={args.runs}", f"--durations={args.durations}", f"--spread={args.spread}"]
    argv += [f"--warmup={args.warmup}", "--stream-json"]
    workers = [
        subprocess.Popen(
            [sys.executable, __file__, *argv, f"--seed={args.seed + i}"],
            stdout=subprocess.PIPE,
            text=True,
            # A home of its own: streams share nothing but the machine.
            env={**os.environ, "AIRFLOW_HOME": tempfile.mkdtemp(prefix="jambo-bench-home-")},
        )
        for i in range(args.streams)
    ]
    streams: list[Figures] = []
    for worker in workers:
        out, _ = worker.communicate()
        if worker.returncode:
            raise SystemExit(f"a stream failed (exit {worker.returncode})")
        rows = json.loads(out.strip().splitlines()[-1])
        streams.append({(float(d), path): (c, w, x) for d, path, c, w, x in rows})
    report(streams)


if __name__ == "__main__":
    main()
