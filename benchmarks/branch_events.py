"""Branch watchers (issue 20): what N watchers on one project cost, and how soon a branch starts a run.

    .venv/bin/python benchmarks/branch_events.py [--seconds 60] [--poll 5] [--branches 12] [--stack]

**Requests per minute**, against the emulator in this process (real clock): N
``JamboBranchEventTrigger``s on one project (different prefixes), their ``run()`` in one event loop
as in a triggerer, for ``--seconds``; the emulator's request log counts the branch listings. The
baseline, in the same run, is N watchers each with its own poll (one hook and one listing loop
each, what N unshared watchers would cost). Printed: listings per minute for N = 1 and 20, ours and
the baseline, and the ratio of ours(20) to ours(1).

**Detection delay** (same emulator): one watcher; ``--branches`` branches created one at a time at
random moments of the poll; delay = the event in the trigger minus the create's answer. p50/p95.

**Creation -> DAG run** (``--stack``; boots the LocalExecutor stack, ~1 min): the example DAG
``example_jambo_branch_events`` unpaused; ``--branches`` branches made through the raw API, one every
~7 s; delay = the run's ``queued_at`` minus the create's answer. p50/p95. It adds the triggerer's
sync, the scheduler's loop and the asset-event queueing to the poll.

Measured 2026-12-05 16:37-16:47 UTC on the shared 2-core machine (other engineers' jobs running),
``--stack`` with the defaults (60 s per rate, poll 5 s, 12 branches):

    listings per minute over 60 s, poll 5 s (emulator request log):
      watchers     ours  own poll each
             1     12.0           12.0
            20     12.0          225.0
      20 watchers / 1 watcher: 1.00x
    creation -> trigger event (12/12 branches): p50 2.68 s, p95 4.44 s
    creation -> DAG run queued, real stack (12 branches): p50 4.2 s, p95 5.9 s

The detection delay is the poll's phase (uniform in [0, 5 s], plus the listing's own time); the
stack adds the triggerer's sync to its supervisor and the scheduler's loop, about a second or two
(the emulator's timestamps are whole seconds, so single delays carry up to 1 s of rounding).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
LISTING = "/projects/{project_id}/branches"


def _quantiles(values: list[float]) -> tuple[float, float]:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return statistics.median(ordered), p95


def _listings(emu: Any) -> int:
    return sum(1 for r in emu.requests() if r["method"] == "GET" and r["route"] == LISTING)


async def _drain(events: AsyncIterator[Any], sink: list[tuple[float, dict[str, Any]]]) -> None:
    async for event in events:
        sink.append((time.time(), event.payload))


async def _own_poll(project_id: str, interval: float) -> None:
    """The baseline: one watcher polling the listing alone (its own hook and loop)."""
    from airflow_provider_jambo.hooks.branch_feed import poll_listings
    from airflow_provider_jambo.hooks.jambo import JamboHook

    hook = JamboHook()
    try:
        async for _ in poll_listings(hook, project_id, interval):
            pass
    finally:
        await hook.aclose()


async def _rate(emu: Any, project_id: str, n: int, seconds: float, poll: float, shared: bool) -> float:
    from airflow_provider_jambo.triggers.events import JamboBranchEventTrigger

    sink: list[tuple[float, dict[str, Any]]] = []
    if shared:
        tasks = [
            asyncio.ensure_future(
                _drain(JamboBranchEventTrigger(name_prefix=f"w{i}/", poll_interval=poll).run(), sink)
            )
            for i in range(n)
        ]
    else:
        tasks = [asyncio.ensure_future(_own_poll(project_id, poll)) for _ in range(n)]
    await asyncio.sleep(1.0)  # every watcher's first listing is in
    emu.clear_requests()
    await asyncio.sleep(seconds)
    count = _listings(emu)
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task
    return count * 60.0 / seconds


async def _delays(emu: Any, branches: int, poll: float) -> list[float]:
    from airflow_provider_jambo.create_branch_request import CreateBranchRequest
    from airflow_provider_jambo.hooks.jambo import JamboHook
    from airflow_provider_jambo.triggers.events import JamboBranchEventTrigger

    sink: list[tuple[float, dict[str, Any]]] = []
    task = asyncio.ensure_future(
        _drain(JamboBranchEventTrigger(name_prefix="d/", poll_interval=poll).run(), sink)
    )
    await asyncio.sleep(1.0)
    made: dict[str, float] = {}
    hook = JamboHook()
    rng = random.Random(20)
    for i in range(branches):
        await asyncio.sleep(rng.uniform(0.2, poll))
        name = f"d/{i}"
        await asyncio.to_thread(hook.branches.create, CreateBranchRequest(name=name))
        made[name] = time.time()
    end = time.monotonic() + 3 * poll
    while len(sink) < branches and time.monotonic() < end:
        await asyncio.sleep(0.1)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    hook.close()
    return [at - made[p["branch_name"]] for at, p in sink if p["branch_name"] in made]


def in_process(seconds: float, poll: float, branches: int) -> None:
    from jambo_emulator import JamboEmulator

    with JamboEmulator(api_key="bench-key", operation_duration=0.0) as emu:
        project_id = emu.create_project(name="bench")["project"]["id"]
        os.environ["AIRFLOW_CONN_JAMBO_DEFAULT"] = json.dumps(
            {
                "conn_type": "jambo",
                "host": emu.base_url,
                "password": emu.api_key,
                "extra": {"project_id": project_id},
            }
        )
        emu.set_lock_rule(enabled=False)
        print(f"listings per minute over {seconds:.0f} s, poll {poll:g} s (emulator request log):")
        print(f"  {'watchers':>8} {'ours':>8} {'own poll each':>14}")
        ours: dict[int, float] = {}
        for n in (1, 20):
            ours[n] = asyncio.run(_rate(emu, project_id, n, seconds, poll, shared=True))
            base = asyncio.run(_rate(emu, project_id, n, seconds, poll, shared=False))
            print(f"  {n:>8} {ours[n]:>8.1f} {base:>14.1f}")
        print(f"  20 watchers / 1 watcher: {ours[20] / ours[1]:.2f}x")
        delays = asyncio.run(_delays(emu, branches, poll))
        p50, p95 = _quantiles(delays)
        print(
            f"creation -> trigger event ({len(delays)}/{branches} branches): p50 {p50:.2f} s, p95 {p95:.2f} s"
        )


def on_stack(branches: int) -> None:
    sys.path.insert(0, str(ROOT / "scripts"))
    sys.path.insert(0, str(ROOT / "tests" / "deployment"))
    from airflow_stack import AirflowStack, StackOptions, wait_until
    from test_local_executor import BRANCH_EVENTS, _consumed, _create_outside, _watch

    with AirflowStack(StackOptions(executor="local", operation_duration=3.0)) as stack:
        _watch(stack)
        made: dict[str, float] = {}
        rng = random.Random(20)
        for i in range(branches):
            made[f"preview/bench-{i}"] = _create_outside(stack, f"preview/bench-{i}")
            time.sleep(rng.uniform(4.0, 10.0))
        wait_until(
            lambda: set(made) <= set(_consumed(stack)[0]), 240, "every run", stack.check_running, interval=1
        )
        delays = []
        for run in stack.dag_runs(BRANCH_EVENTS):
            for b in stack.xcom(BRANCH_EVENTS, run["dag_run_id"], "branches_from_events"):
                delays.append(datetime.fromisoformat(run["queued_at"]).timestamp() - made[b["branch_name"]])
        p50, p95 = _quantiles(delays)
        line = "creation -> DAG run queued, real stack"
        print(f"{line} ({len(delays)} branches): p50 {p50:.1f} s, p95 {p95:.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--poll", type=float, default=5.0)
    parser.add_argument("--branches", type=int, default=12)
    parser.add_argument(
        "--stack", action="store_true", help="also measure creation -> DAG run on the real stack"
    )
    args = parser.parse_args()
    os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp())
    in_process(args.seconds, args.poll, args.branches)
    if args.stack:
        on_stack(args.branches)


if __name__ == "__main__":
    main()
