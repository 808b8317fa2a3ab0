"""The process's shared poller: many triggers on one project, one poll per round (emulator request log).

The emulator runs on its manual clock (operations finish only when a test advances it), so every
wait here is as long as the test wants and the request log shows exactly what the poll cost.
"""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from jambo_support import JamboProject, connection_json
from operators.deferral import first_event

from airflow_provider_jambo.create_branch_request import CreateBranchRequest
from airflow_provider_jambo.hooks import client as client_module
from airflow_provider_jambo.hooks.budget import BURST, budget_for
from airflow_provider_jambo.hooks.jambo import JamboHook
from airflow_provider_jambo.hooks.poller import active_pollers
from airflow_provider_jambo.hooks.retry import RetryPolicy
from airflow_provider_jambo.triggers.operation_trigger import JamboOperationTrigger

POLICY = RetryPolicy(max_attempts=5, max_elapsed=10, initial_wait=0.01, max_wait=0.05).to_dict()
LIST = "/projects/{project_id}/operations"
BY_ID = "/projects/{project_id}/operations/{operation_id}"


def start_branches(project: JamboProject, n: int, *, project_id: str | None = None) -> list[str]:
    """``n`` branches (no compute): one create_branch operation each."""
    project.emu.set_lock_rule(enabled=False)  # several creates in flight at once
    with JamboHook() as hook:
        return [
            hook.branches.create(
                CreateBranchRequest(name=f"w-{i}"), project_id=project_id or project.project_id
            )
            .operations[0]
            .id
            for i in range(n)
        ]


def trigger(
    project_id: str, ids: list[str], *, deadline_in: float = 60, poll: float = 0.05
) -> JamboOperationTrigger:
    return JamboOperationTrigger(
        jambo_conn_id="jambo_default",
        project_id=project_id,
        operation_ids=ids,
        deadline=time.time() + deadline_in,
        poll_interval=poll,
        retry_policy=POLICY,
    )


def reads(emu: Any) -> list[dict[str, Any]]:
    return [r for r in emu.requests() if r["method"] == "GET" and r["route"] in (LIST, BY_ID)]


async def until(condition: Any, timeout: float = 10.0) -> None:
    end = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < end, "condition not reached"
        await asyncio.sleep(0.02)


async def test_waiters_on_one_project_share_one_poll(jambo_project: JamboProject) -> None:
    emu = jambo_project.emu
    emu.set_operation_durations(default=60)
    ids = start_branches(jambo_project, 20)
    emu.clear_requests()
    tasks = [asyncio.ensure_future(first_event(trigger(jambo_project.project_id, [op_id]))) for op_id in ids]
    await until(lambda: bool(active_pollers()) and active_pollers()[0].watch.rounds >= 5)
    [poller] = active_pollers()  # one poller for the twenty triggers
    assert poller.waiting == 20
    emu.advance(120)
    events = await asyncio.gather(*tasks)
    assert [e.payload["status"] for e in events] == ["success"] * 20
    assert [e.payload["operation_ids"] for e in events] == [[i] for i in ids]
    log = reads(emu)
    # One list call per round serves all twenty; never one read per trigger.
    assert {r["route"] for r in log} == {LIST}
    assert len(log) == poller.watch.rounds
    assert active_pollers() == []  # gone with its last waiter


async def test_cancelling_one_trigger_leaves_the_rest_waiting(jambo_project: JamboProject) -> None:
    emu = jambo_project.emu
    emu.set_operation_durations(default=60)
    ids = start_branches(jambo_project, 3)
    tasks = [asyncio.ensure_future(first_event(trigger(jambo_project.project_id, [op_id]))) for op_id in ids]
    await until(lambda: bool(active_pollers()) and active_pollers()[0].waiting == 3)
    tasks[0].cancel()
    with pytest.raises(asyncio.CancelledError):
        await tasks[0]
    [poller] = active_pollers()
    assert poller.waiting == 2
    rounds = poller.watch.rounds
    await until(lambda: poller.watch.rounds >= rounds + 3)  # still polling for the others
    emu.advance(120)
    events = await asyncio.gather(*tasks[1:])
    assert [e.payload["status"] for e in events] == ["success", "success"]


async def test_a_restarted_trigger_registers_again_and_resumes(jambo_project: JamboProject) -> None:
    emu = jambo_project.emu
    emu.set_operation_durations(default=60)
    ids = start_branches(jambo_project, 2)
    first = trigger(jambo_project.project_id, ids)
    other = asyncio.ensure_future(first_event(trigger(jambo_project.project_id, ids[:1])))
    task = asyncio.ensure_future(first_event(first))
    await until(lambda: bool(active_pollers()) and active_pollers()[0].waiting == 2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    again = asyncio.ensure_future(first_event(JamboOperationTrigger(**first.serialize()[1])))
    await until(lambda: active_pollers()[0].waiting == 2)
    emu.advance(120)
    assert (await again).payload["status"] == "success"
    assert (await other).payload["status"] == "success"


async def test_a_trigger_given_its_operations_looks_first_when_they_are_expected_done(
    jambo_project: JamboProject,
) -> None:
    from airflow_provider_jambo.api_models import Operation
    from airflow_provider_jambo.hooks.operation_durations import durations_for

    emu = jambo_project.emu
    emu.set_operation_durations(default=60)
    with JamboHook() as hook:
        made = hook.branches.create(
            CreateBranchRequest(name="seeded"), project_id=jambo_project.project_id
        ).operations[0]
    # What an earlier wait of this process learned: branch creates take 0.6 s, computes 2.5 s.
    durations = durations_for(jambo_project.project_id)
    for n, (action, seconds) in enumerate([("create_branch", 0.6), ("start_compute", 2.5)]):
        durations.learn(
            Operation.from_api(
                {
                    "id": f"old-{n}",
                    "action": action,
                    "status": "finished",
                    "total_duration_ms": int(seconds * 1000),
                }
            )
        )
    emu.advance(120)  # done already: the first look is the only one needed
    emu.clear_requests()
    # Created just now, as the deferring task saw it (this emulator's clock is a manual one, so its
    # own stamp says nothing about the local clock).
    fresh = {**made.raw, "created_at": datetime.now(UTC).isoformat()}
    seeded = JamboOperationTrigger(
        **{
            **trigger(jambo_project.project_id, [made.id], poll=5).serialize()[1],
            "operations": [fresh],
        }
    )
    # Rebuilt from its serialized kwargs, as a triggerer does: the operations travel with it.
    rebuilt = JamboOperationTrigger(**seeded.serialize()[1])
    started = time.monotonic()
    event = await first_event(rebuilt)
    assert event.payload["status"] == "success"
    # Its action said 0.6 s, so the one read came then; knowing only an id, the first look would
    # have come after the longest known action (2.5 s), or at once with nothing learned.
    assert len(reads(emu)) == 1
    assert time.monotonic() - started >= 0.6


async def test_a_trigger_carrying_learned_durations_looks_when_they_say(jambo_project: JamboProject) -> None:
    """A triggerer that has learned nothing (another process than the task's) times its first look
    by the spans the task handed over: one read, at 0.6 s, not one at once then a backoff."""
    emu = jambo_project.emu
    emu.set_operation_durations(default=60)
    with JamboHook() as hook:
        made = hook.branches.create(
            CreateBranchRequest(name="carried"), project_id=jambo_project.project_id
        ).operations[0]
    emu.advance(120)
    emu.clear_requests()
    fresh = {**made.raw, "created_at": datetime.now(UTC).isoformat()}
    kwargs = trigger(jambo_project.project_id, [made.id], poll=5).serialize()[1]
    rebuilt = JamboOperationTrigger(
        **{**kwargs, "operations": [fresh], "durations": {"create_branch": [0.6, 0.6, 0.6]}}
    )
    started = time.monotonic()
    event = await first_event(JamboOperationTrigger(**rebuilt.serialize()[1]))
    assert event.payload["status"] == "success"
    assert len(reads(emu)) == 1
    assert time.monotonic() - started >= 0.6


async def test_unknown_and_failed_operations_are_reported_to_their_waiters_only(
    jambo_project: JamboProject,
) -> None:
    emu = jambo_project.emu
    emu.set_operation_durations(default=60)
    emu.set_operation_outcome("create_branch", "error", times=1)
    broken, *fine = start_branches(jambo_project, 3)
    unknown = "00000000-0000-4000-8000-000000000000"
    pid = jambo_project.project_id
    tasks = [
        asyncio.ensure_future(first_event(trigger(pid, [unknown]))),
        asyncio.ensure_future(first_event(trigger(pid, [broken]))),
        *(asyncio.ensure_future(first_event(trigger(pid, [op_id]))) for op_id in fine),
    ]
    missing = await tasks[0]
    assert missing.payload["status"] == "error"
    assert "404" in missing.payload["message"]
    emu.advance(120)
    failed, *ok = await asyncio.gather(*tasks[1:])
    assert failed.payload["status"] == "failed"
    assert f"create_branch {broken}" in failed.payload["message"]
    assert [e.payload["status"] for e in ok] == ["success", "success"]


def _record_sends(monkeypatch: pytest.MonkeyPatch) -> list[tuple[float, str]]:
    """(monotonic time, path) of every request built to be sent (after its budget wait)."""
    sent: list[tuple[float, str]] = []
    original = client_module._build

    def recording(client: Any, req: Any) -> Any:
        sent.append((time.monotonic(), req.url_path))
        return original(client, req)

    monkeypatch.setattr(client_module, "_build", recording)
    return sent


async def test_a_429_pauses_every_waiter_of_the_account(
    jambo_project: JamboProject, monkeypatch: pytest.MonkeyPatch
) -> None:
    emu = jambo_project.emu
    emu.set_operation_durations(default=60)
    second = emu.create_project(name="second")
    second_id = second["id"] if "id" in second else second["project"]["id"]
    a = start_branches(jambo_project, 2)
    b = start_branches(jambo_project, 2, project_id=second_id)
    sent = _record_sends(monkeypatch)
    # Project A's list call gets a 429 (Retry-After 1 s) once; project B must hold off too.
    emu.inject_fault("GET", LIST, faults=[{"kind": "rate_limit", "retry_after": "1"}], times=1)
    tasks = [
        asyncio.ensure_future(first_event(trigger(jambo_project.project_id, a))),
        asyncio.ensure_future(first_event(trigger(second_id, b))),
    ]
    await until(lambda: budget_for(emu.base_url, emu.api_key).pauses >= 1)
    paused_at = time.monotonic()
    await until(lambda: time.monotonic() > paused_at + 1.5)
    emu.advance(120)
    events = await asyncio.gather(*tasks)
    assert [e.payload["status"] for e in events] == ["success", "success"]
    during = [path for t, path in sent if paused_at + 0.05 < t < paused_at + 0.9]
    assert during == []  # nobody on the account sent anything during the pause
    assert any(second_id in path for t, path in sent if t > paused_at + 0.9)


async def test_the_budget_is_never_exceeded_by_many_pollers(
    jambo_project: JamboProject, monkeypatch: pytest.MonkeyPatch
) -> None:
    emu = jambo_project.emu
    emu.set_operation_durations(default=60)
    monkeypatch.setenv(
        "AIRFLOW_CONN_JAMBO_DEFAULT",
        json.dumps(
            {
                **json.loads(connection_json(emu, jambo_project.project_id)),
                "extra": {"requests_per_minute": 120},
            }
        ),
    )
    projects = [jambo_project.project_id]
    for i in range(4):
        made = emu.create_project(name=f"p{i}")
        projects.append(made["id"] if "id" in made else made["project"]["id"])
    waits = {pid: start_branches(jambo_project, 2, project_id=pid) for pid in projects}
    sent = _record_sends(monkeypatch)
    # Five pollers that would each poll every 0.05 s (100 requests/s) on a budget of 2/s.
    tasks = [asyncio.ensure_future(first_event(trigger(pid, ids, poll=0.05))) for pid, ids in waits.items()]
    await asyncio.sleep(6)  # the burst, then 2/s
    emu.advance(120)
    events = await asyncio.gather(*tasks)
    assert [e.payload["status"] for e in events] == ["success"] * 5
    times = [t for t, _ in sent]
    for i, start in enumerate(times):
        for window in (1.0, 5.0):
            assert sum(1 for t in times[i:] if t < start + window) <= BURST + 2 * window + 1
    # Fair: every project's poller got its share.
    per_project = {pid: sum(1 for _, path in sent if pid in path) for pid in projects}
    assert min(per_project.values()) >= max(per_project.values()) // 2, per_project
