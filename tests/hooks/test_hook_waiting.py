"""Operation wait rules (pure) and the polling generator driven with a scripted fake service."""

from __future__ import annotations

import asyncio
import importlib.util
import math
import random
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hook_support import SleepRecorder

from airflow_provider_jambo.api_models import Operation
from airflow_provider_jambo.exceptions import (
    JamboConfigError,
    JamboOperationFailedError,
    JamboOperationTimeoutError,
)
from airflow_provider_jambo.hooks.client import ApiRequest
from airflow_provider_jambo.hooks.operation_durations import (
    SAMPLES_PER_ACTION,
    Durations,
    durations_for,
    quantile,
    rank,
    run_key,
)
from airflow_provider_jambo.hooks.waiting import (
    Fetch,
    PollPolicy,
    WaitResult,
    Watch,
    classify,
    evaluate,
    next_due,
    read_steps,
    resolve_deadline,
    run_async,
    run_sync,
    wait_steps,
)

ID1 = "11111111-1111-4111-8111-111111111111"
ID2 = "22222222-2222-4222-8222-222222222222"
ID3 = "33333333-3333-4333-8333-333333333333"


def op(
    op_id: str,
    status: str,
    *,
    action: str = "create_branch",
    error: str | None = None,
    retry_at: str | None = None,
) -> Operation:
    raw: dict[str, Any] = {
        "id": op_id,
        "project_id": "proj-1",
        "branch_id": "br-a",
        "action": action,
        "status": status,
    }
    if error:
        raw["error"] = error
    if retry_at:
        raw["retry_at"] = retry_at
    return Operation.from_api(raw)


@pytest.mark.parametrize(
    ("status", "retry_at", "passed", "verdict"),
    [
        ("finished", None, False, "success"),
        ("skipped", None, False, "success"),
        ("error", None, False, "failure"),
        ("cancelled", None, False, "failure"),
        ("scheduling", None, False, "pending"),
        ("running", None, True, "pending"),
        ("cancelling", None, False, "pending"),
        ("something_new", None, False, "pending"),
        ("failed", "2026-01-01T00:00:00Z", False, "pending"),
        ("failed", "2026-01-01T00:00:00Z", True, "failure"),
        ("failed", None, False, "failure"),
    ],
)
def test_classify(status: str, retry_at: str | None, passed: bool, verdict: str) -> None:
    assert classify(op(ID1, status, retry_at=retry_at), deadline_passed=passed) == verdict


def test_evaluate_outcomes_and_messages() -> None:
    assert evaluate([op(ID1, "running")]) is None
    ok = evaluate([op(ID1, "finished"), op(ID2, "skipped", action="start_compute")])
    assert ok is not None
    assert ok.status == "success"
    assert "create_branch, start_compute" in ok.message
    failed = evaluate(
        [op(ID1, "running"), op(ID2, "error", action="start_compute", error="compute failed to start")]
    )
    assert failed is not None
    assert failed.status == "failed"
    assert f"start_compute {ID2}" in failed.message
    assert "compute failed to start" in failed.message
    assert ID1 not in failed.message  # only failed operations are named
    timeout = evaluate([op(ID1, "running")], deadline_passed=True)
    assert timeout is not None
    assert timeout.status == "timeout"
    assert ID1 in timeout.message
    assert evaluate([]) is not None


def test_wait_result_raise_for_status_and_round_trip() -> None:
    ok = WaitResult("success", [op(ID1, "finished")], "done")
    assert ok.raise_for_status() is ok
    with pytest.raises(JamboOperationFailedError, match="boom") as failed:
        WaitResult("failed", [op(ID1, "error")], "boom").raise_for_status()
    assert failed.value.operations[0].id == ID1
    with pytest.raises(JamboOperationTimeoutError):
        WaitResult("timeout", [], "late").raise_for_status()
    copy = WaitResult.from_dict(WaitResult("failed", [op(ID1, "error", error="x")], "m").to_dict())
    assert copy.status == "failed"
    assert copy.operations[0].error == "x"


def test_poll_policy_backs_off_to_cap() -> None:
    policy = PollPolicy(initial_interval=0.5, max_interval=2.0, factor=2.0)
    intervals: list[float] = []
    current = None
    for _ in range(5):
        current = policy.next_interval(current)
        intervals.append(current)
    assert intervals == [0.5, 1.0, 2.0, 2.0, 2.0]
    assert PollPolicy.from_dict(policy.to_dict()) == policy
    with pytest.raises(ValueError, match="initial_interval <= max_interval"):
        PollPolicy(initial_interval=5, max_interval=1)


def test_resolve_deadline() -> None:
    assert resolve_deadline(None, None, 100.0) is None
    assert resolve_deadline(10, None, 100.0) == 110.0
    assert resolve_deadline(10, 105.0, 100.0) == 105.0
    aware = datetime(2026, 1, 1, tzinfo=UTC)
    assert resolve_deadline(None, aware, 0.0) == aware.timestamp()
    with pytest.raises(ValueError, match="timezone-aware"):
        resolve_deadline(None, datetime(2026, 1, 1), 0.0)


class FakeService:
    """Answers the waiting loop's requests from scripted operation states, counting requests."""

    def __init__(self, scripts: dict[str, list[str]], *, list_hides: set[str] | None = None) -> None:
        self.scripts = scripts
        self.reads: dict[str, int] = dict.fromkeys(scripts, 0)
        self.requests: list[str] = []
        self.list_hides = list_hides or set()

    def _state(self, op_id: str) -> Operation:
        script = self.scripts[op_id]
        status = script[min(self.reads[op_id], len(script) - 1)]
        self.reads[op_id] += 1
        return op(op_id, status)

    def fetch(self, req: ApiRequest[list[Operation]]) -> list[Operation]:
        self.requests.append(req.describe())
        if req.path.endswith("{operation_id}"):
            return req.parse({"operation": self._state(req.path_params["operation_id"]).raw})
        visible = [i for i in self.scripts if i not in self.list_hides]
        return req.parse({"operations": [self._state(i).raw for i in visible]})


def drive(
    service: FakeService,
    ids: list[str],
    sleeps: SleepRecorder,
    deadline: float | None = None,
    poll: PollPolicy | None = None,
) -> WaitResult:
    steps = wait_steps("proj-1", ids, deadline=deadline, clock=sleeps.clock, poll=poll or PollPolicy())
    return run_sync(steps, service.fetch, sleeps)


def test_single_operation_is_read_by_id(sleeps: SleepRecorder) -> None:
    service = FakeService({ID1: ["scheduling", "running", "running", "finished"]})
    result = drive(service, [ID1], sleeps)
    assert result.status == "success"
    assert service.requests == [f"GET /projects/proj-1/operations/{ID1}"] * 4
    assert sleeps.calls == [0.5, 0.75, 1.125]  # starts short, backs off


def test_several_operations_share_one_list_call_per_round(sleeps: SleepRecorder) -> None:
    service = FakeService(
        {ID1: ["running", "finished"], ID2: ["running", "running", "finished"], ID3: ["finished"]}
    )
    result = drive(service, [ID1, ID2, ID3], sleeps)
    assert result.status == "success"
    # Round 1 and 2 use the list (>= 2 pending); round 3 has one pending op left: read by id.
    assert service.requests == [
        "GET /projects/proj-1/operations",
        "GET /projects/proj-1/operations",
        f"GET /projects/proj-1/operations/{ID2}",
    ]


def test_operation_missing_from_list_page_is_read_by_id(sleeps: SleepRecorder) -> None:
    service = FakeService({ID1: ["running", "finished"], ID2: ["running", "finished"]}, list_hides={ID2})
    result = drive(service, [ID1, ID2], sleeps)
    assert result.status == "success"
    assert service.requests[:2] == [
        "GET /projects/proj-1/operations",
        f"GET /projects/proj-1/operations/{ID2}",
    ]


def test_a_long_history_is_followed_page_by_page_instead_of_read_by_id(sleeps: SleepRecorder) -> None:
    """Each branch create is two operations: 1,000 waited creates span two pages of the list. The
    round follows the cursor (pages as long as allowed) until every pending one was seen."""
    history = [op(f"{i:08d}-0000-4000-8000-000000000000", "running").raw for i in range(2400)]
    waited = [history[5]["id"], history[1500]["id"]]  # on the first and on the second page
    for item in history:
        if item["id"] in waited:
            item["status"] = "finished"
    requests: list[tuple[str, Any]] = []

    def fetch(req: ApiRequest[Any]) -> Any:
        requests.append((req.describe(), req.query.get("limit"), req.query.get("cursor")))
        start = int(req.query.get("cursor") or 0)
        page = history[start : start + int(req.query["limit"])]
        return {"operations": page, "pagination": {"cursor": str(start + len(page))}}

    result = run_sync(wait_steps("proj-1", waited, deadline=None, clock=sleeps.clock), fetch, sleeps)
    assert result.status == "success"
    assert [r[1:] for r in requests] == [(102, None), (1000, "102"), (1000, "1102")]
    assert all(r[0] == "GET /projects/proj-1/operations" for r in requests)


def test_failure_ends_wait_at_once_and_names_the_operation(sleeps: SleepRecorder) -> None:
    service = FakeService({ID1: ["running"], ID2: ["running", "error"]})
    result = drive(service, [ID1, ID2], sleeps)
    assert result.status == "failed"
    assert ID2 in result.message


def test_failed_but_retried_by_service_keeps_waiting(sleeps: SleepRecorder) -> None:
    scripts = {ID1: ["failed", "failed", "finished"]}
    service = FakeService(scripts)
    original = service._state

    def with_retry_at(op_id: str) -> Operation:
        state = original(op_id)
        if state.status.value == "failed":
            return Operation.from_api({**state.raw, "retry_at": "2026-01-01T00:00:00Z", "failures_count": 1})
        return state

    service._state = with_retry_at  # type: ignore[method-assign]
    assert drive(service, [ID1], sleeps).status == "success"


def test_deadline_gives_timeout_and_never_oversleeps(sleeps: SleepRecorder) -> None:
    service = FakeService({ID1: ["running"]})
    start = sleeps.now
    result = drive(service, [ID1], sleeps, deadline=start + 5.0)
    assert result.status == "timeout"
    assert sleeps.now == start + 5.0  # woke exactly at the deadline for a last look


def test_rate_floor_between_rounds(sleeps: SleepRecorder) -> None:
    # Two ops hidden from the list page: each round costs 3 requests -> at least 3 / 2 rps = 1.5 s.
    service = FakeService({ID1: ["running", "finished"], ID2: ["running", "finished"]}, list_hides={ID1, ID2})
    drive(
        service,
        [ID1, ID2],
        sleeps,
        poll=PollPolicy(initial_interval=0.1, max_interval=0.1, max_requests_per_second=2),
    )
    assert sleeps.calls[0] == 1.5


def test_async_driver_gives_the_same_result(sleeps: SleepRecorder) -> None:
    service = FakeService({ID1: ["running", "finished"], ID2: ["finished"]})

    async def fetch(req: ApiRequest[list[Operation]]) -> list[Operation]:
        return service.fetch(req)

    steps = wait_steps("proj-1", [ID1, ID2], deadline=None, clock=sleeps.clock)
    result = asyncio.run(run_async(steps, fetch, sleeps.asleep))
    assert result.status == "success"
    assert sleeps.calls == [0.5]


def test_bad_ids_rejected_before_any_request(sleeps: SleepRecorder) -> None:
    service = FakeService({})
    with pytest.raises(ValueError, match="operation_id must be a Jambo id"):
        drive(service, ["NOT AN ID"], sleeps)
    assert service.requests == []


def test_no_operations_is_success(sleeps: SleepRecorder) -> None:
    fetch: Callable[[ApiRequest[list[Operation]]], list[Operation]] = FakeService({}).fetch
    assert run_sync(wait_steps("proj-1", [], deadline=None), fetch, sleeps).status == "success"


# --- duration-aware polling (pure, fake clock) -----------------------------------------------------


def finished(op_id: str, action: str, seconds: float, *, total_ms: int | None = None) -> Operation:
    raw: dict[str, Any] = {
        "id": op_id,
        "project_id": "proj-1",
        "action": action,
        "status": "finished",
        "created_at": "2026-01-01T00:00:00Z",
        "updated_at": f"2026-01-01T00:00:{seconds:06.3f}Z",
    }
    if total_ms is not None:
        raw["total_duration_ms"] = total_ms
    return Operation.from_api(raw)


def test_durations_take_the_milliseconds_where_they_agree_with_the_whole_second_stamps() -> None:
    durations = Durations()
    # Stamps 12:00:00 and 12:00:03 (whole seconds) around a 3.4-s operation: the 3,400 ms is the
    # same span, to the millisecond.
    durations.learn(finished("a", "create_branch", 3.0, total_ms=3400))
    assert durations.expected("create_branch") == pytest.approx(3.4)
    # A total that disagrees with the stamps is some other measure (time spent running, say, not
    # queued): the stamps' span is what a waiter lives through.
    durations.learn(finished("b", "start_compute", 9.0, total_ms=2000))
    assert durations.expected("start_compute") == pytest.approx(9.0)


def test_durations_learn_the_median_span_once_per_operation() -> None:
    durations = Durations()
    for i, seconds in enumerate([3.0, 3.2, 9.0]):
        durations.learn(finished(f"op-{i}", "create_branch", seconds))
    durations.learn(finished("op-0", "create_branch", 50.0))  # seen again: not counted twice
    durations.learn(op(ID1, "running"))  # unfinished: nothing to learn
    assert durations.expected("create_branch") == 3.2
    assert durations.expected("start_compute") is None
    assert durations.longest() == 3.2


def test_durations_keep_the_newest_spans_an_action_and_a_seed_no_more() -> None:
    durations = Durations(keep=3)
    for i in range(5):
        durations.learn(finished(f"op-{i}", "create_branch", 1.0 + i))
    assert durations.spans("create_branch") == [3.0, 4.0, 5.0]
    durations.seed({"start_compute": [1.0, 2.0, 3.0, 4.0]})
    assert durations.spans("start_compute") == [2.0, 3.0, 4.0]
    with pytest.raises(JamboConfigError, match="at least 1 span"):
        Durations(keep=0)


def test_a_page_teaches_its_newest_operations() -> None:
    # The list is newest first: operations lately take 10 s, long ago 3 s. What is remembered
    # (the last samples per action) must be the recent ones.
    newest_first = [finished(f"new-{i}", "create_branch", 10.0).raw for i in range(SAMPLES_PER_ACTION)]
    newest_first += [finished(f"old-{i}", "create_branch", 3.0).raw for i in range(SAMPLES_PER_ACTION)]
    watch = Watch("proj-1", PollPolicy(), Durations())
    watch.add([ID1, ID2], deadline=None, now=0.0)
    steps = watch.round_steps(0.0)
    assert isinstance(next(steps), Fetch)
    with pytest.raises(StopIteration):
        steps.send({"operations": [op(ID1, "running").raw, op(ID2, "running").raw, *newest_first]})
    assert watch.durations.expected("create_branch") == 10.0


def test_a_wait_looks_when_its_operations_are_expected_done() -> None:
    durations = Durations()
    durations.learn(finished("old-1", "create_branch", 3.0))
    durations.learn(finished("old-2", "start_compute", 6.0))
    watch = Watch("proj-1", PollPolicy(max_interval=2.0), durations)
    waiter = watch.add([ID1, ID2], deadline=None, now=100.0, cap=2.0)
    # Actions not seen yet: a first look after the longest known action, capped by the waiter's cap.
    assert waiter.due == pytest.approx(100.0 + 2.0 + 0.1 + 0.02)
    watch.latest[ID1] = op(ID1, "running", action="create_branch")
    watch.latest[ID2] = op(ID2, "scheduling", action="start_compute")
    # Both seen: the look is when the slower one should be done (beyond the cap: an earlier look
    # would only say "still running").
    assert next_due(waiter, watch.latest, durations, watch.poll, 102.2) == pytest.approx(106.0 + 0.1 + 0.06)
    # Overdue: back off from initial_interval up to the cap.
    assert next_due(waiter, watch.latest, durations, watch.poll, 107.0) == pytest.approx(107.5)
    assert next_due(waiter, watch.latest, durations, watch.poll, 107.5) == pytest.approx(108.25)


def test_duration_aware_wait_costs_one_look_when_durations_are_known(sleeps: SleepRecorder) -> None:
    durations = Durations()
    durations.learn(finished("old-1", "create_branch", 3.0))
    service = FakeService({ID1: ["finished"]})
    start = sleeps.now
    # The action of an operation not seen yet is unknown: the first look comes after the longest
    # known action (capped by the cap), not at once; here that is when it is done: one read.
    steps = wait_steps("proj-1", [ID1], deadline=None, clock=sleeps.clock, durations=durations)
    assert run_sync(steps, service.fetch, sleeps).status == "success"
    assert len(service.requests) == 1
    assert sleeps.now - start == pytest.approx(3.0 + 0.1 + 0.03)


def test_operations_a_call_returned_are_first_looked_at_when_expected_done(sleeps: SleepRecorder) -> None:
    """A branch create returns its two operations: their actions are known before any read, so the
    one look is when the slower should be done (6 s), not after the cap (2 s) and again at 6 s."""
    durations = Durations()
    durations.learn(finished("old-1", "create_branch", 3.0))
    durations.learn(finished("old-2", "start_compute", 6.0))
    service = FakeService({ID1: ["finished"], ID2: ["finished"]})
    start = sleeps.now
    known = [op(ID1, "scheduling", action="create_branch"), op(ID2, "scheduling", action="start_compute")]
    poll = PollPolicy(max_interval=2.0)
    steps = wait_steps(
        "proj-1", [ID1, ID2], deadline=None, clock=sleeps.clock, poll=poll, durations=durations, known=known
    )
    assert run_sync(steps, service.fetch, sleeps).status == "success"
    assert service.requests == ["GET /projects/proj-1/operations"]
    assert sleeps.now - start == pytest.approx(6.0 + 0.1 + 0.06)


def test_without_history_polling_falls_back_to_backoff(sleeps: SleepRecorder) -> None:
    service = FakeService({ID1: ["running"] * 5 + ["finished"]})
    steps = wait_steps("proj-1", [ID1], deadline=None, clock=sleeps.clock, durations=Durations())
    assert run_sync(steps, service.fetch, sleeps).status == "success"
    assert sleeps.calls == [0.5, 0.75, 1.125, 1.6875, 2.53125]


def test_a_poke_reads_every_operation_whatever_durations_expect() -> None:
    durations_for("proj-1").learn(finished("old-1", "create_branch", 30.0))
    service = FakeService({ID1: ["running"]})
    found = run_sync(read_steps("proj-1", [ID1]), service.fetch)
    assert list(found) == [ID1]
    assert service.requests == [f"GET /projects/proj-1/operations/{ID1}"]


def test_a_watch_forgets_an_operation_only_when_its_last_waiter_leaves() -> None:
    watch = Watch("proj-1", durations=Durations())
    first = watch.add([ID1, ID2], deadline=None, now=0.0)
    second = watch.add([ID1], deadline=None, now=0.0)
    watch.latest.update({ID1: op(ID1, "running"), ID2: op(ID2, "running")})
    watch.remove(first)
    assert list(watch.waiters) == [second]
    assert set(watch.latest) == {ID1}  # still waited for by the second
    watch.remove(first)  # leaving twice (settled, then the driver's finally) changes nothing
    assert set(watch.latest) == {ID1}
    watch.remove(second)
    assert not watch.waiters
    assert watch.latest == {}


# --- the spread of what was learned (issue 23) -------------------------------------------------------


def spread_durations(action: str, spans: list[float]) -> Durations:
    durations = Durations()
    for i, seconds in enumerate(spans):
        durations.learn(
            Operation.from_api(
                {
                    "id": f"old-{action}-{i}",
                    "action": action,
                    "status": "finished",
                    "total_duration_ms": int(seconds * 1000),
                }
            )
        )
    return durations


#: Eleven learned spans, evenly from 2 s to 4 s (median 3 s).
EVEN_2_TO_4 = [2.0 + 0.2 * i for i in range(11)]


def test_quantile_and_rank_are_inverses() -> None:
    spans = sorted(EVEN_2_TO_4)
    assert quantile(spans, 0.0) == 2.0
    assert quantile(spans, 0.15) == pytest.approx(2.3)
    assert quantile(spans, 1.0) == pytest.approx(4.0)
    assert rank(spans, 2.3) == pytest.approx(0.15)
    assert rank(spans, 1.0) == 0.0
    assert rank(spans, 9.0) == 1.0
    assert quantile([5.0], 0.3) == 5.0
    assert (rank([5.0], 4.9), rank([5.0], 5.0)) == (0.0, 1.0)


def test_first_look_covers_the_upper_share_then_looks_every_tolerance() -> None:
    durations = spread_durations("create_branch", EVEN_2_TO_4)
    poll = PollPolicy(tolerance=0.5, catch_share=0.6, max_interval=2.0)
    watch = Watch("proj-1", poll, durations)
    waiter = watch.add([ID1], deadline=None, now=100.0, cap=2.0, known=[op(ID1, "running")])
    # The first look sees within 0.5 s the ends from the 0.4 quantile (2.8 s) on: at 3.3 s, plus
    # its margin (0.1 s and 1 %), not where only 15 % of the spans would be over (2.3 s).
    assert waiter.due == pytest.approx(100.0 + 3.3 + 0.1 + 0.033)
    looks = [waiter.due]
    while len(looks) < 5:
        looks.append(next_due(waiter, watch.latest, durations, poll, looks[-1]))
    # Then every tolerance, the last at the longest likely span (the longest, 4 s, plus the spans'
    # 0.2-s spacing: longer ones are likely, not yet learned), then backoff from 0.5 s.
    assert [t - 100.0 for t in looks[1:3]] == pytest.approx([3.8 + 0.1 + 0.038, 4.2 + 0.1 + 0.042])
    assert looks[3] - looks[2] == pytest.approx(0.5)
    assert looks[4] - looks[3] == pytest.approx(0.75)


def test_looks_are_sent_half_a_round_trip_early_and_spaced_for_it() -> None:
    """The previous test's operation on an API answering in 200 ms: a read sees the operations
    0.1 s after it is sent and is answered 0.1 s after that, so each look aims at what is seen a
    tolerance less 0.1 s after the one before, and is sent 0.1 s before the moment it aims at."""
    durations = spread_durations("create_branch", EVEN_2_TO_4)
    poll = PollPolicy(tolerance=0.5, catch_share=0.6, max_interval=2.0)
    watch = Watch("proj-1", poll, durations, round_trip=lambda: 0.2)
    waiter = watch.add([ID1], deadline=None, now=100.0, cap=2.0, known=[op(ID1, "running")])
    assert waiter.lead == pytest.approx(0.1)
    looks = [waiter.due]
    while len(looks) < 5:
        looks.append(next_due(waiter, watch.latest, durations, poll, looks[-1]))
    # Seen at 2.8 + 0.4 s, then 0.4 s apart up to the longest likely span (4.2 s); margins as
    # before; sent 0.1 s early.
    seen = [100.0 + span + 0.1 + 0.01 * span for span in (3.2, 3.6, 4.0, 4.2)]
    assert looks[:4] == pytest.approx([t - 0.1 for t in seen], abs=1e-9)
    assert looks[4] - looks[3] == pytest.approx(0.5)  # then backoff, as before
    # One-request rounds may come that close.
    watch.last_round_at, watch.last_round_requests = looks[0], 1
    waiter.due = looks[1]
    assert watch.next_round_at() == pytest.approx(looks[1])


def test_a_long_spread_is_looked_at_a_bounded_number_of_times() -> None:
    """Minute-long operations (30-90 s): later looks are spaced by the spread / looks_per_wait,
    not by the 0.5-s tolerance (which would make ~70 of them)."""
    durations = spread_durations("create_branch", [30.0 + 6.0 * i for i in range(11)])
    poll = PollPolicy(looks_per_wait=16)
    watch = Watch("proj-1", poll, durations)
    waiter = watch.add([ID1], deadline=None, now=0.0, known=[op(ID1, "running")])
    looks = [waiter.due]
    while not waiter.backoff:
        looks.append(next_due(waiter, watch.latest, durations, poll, looks[-1]))
    assert len(looks) - 1 == 1 + 16  # the first look, then 16 up to the longest span


def _wait_ending_at(end: float, poll: PollPolicy | None = None) -> tuple[float, int]:
    """One wait (learned spans 2-4 s) for an operation that ends ``end`` seconds after the call:
    (how long after its end the wait returned, how many reads it made)."""
    sleeps = SleepRecorder()
    start = sleeps.now
    reads: list[str] = []

    def fetch(req: ApiRequest[Any]) -> Any:
        reads.append(req.describe())
        status = "finished" if sleeps.now - start >= end else "running"
        return req.parse({"operation": op(ID1, status).raw})

    steps = wait_steps(
        "proj-1",
        [ID1],
        deadline=None,
        clock=sleeps.clock,
        poll=poll or PollPolicy(),
        durations=spread_durations("create_branch", EVEN_2_TO_4),
        known=[op(ID1, "running")],
    )
    assert run_sync(steps, fetch, sleeps).status == "success"
    return sleeps.now - start - end, len(reads)


def test_under_spread_a_wait_sees_the_median_end_in_time_with_few_reads() -> None:
    """Ends drawn from the spread learned (2-4 s): the median wait sees its end within the
    tolerance (0.5 s) for 1.4 reads on average (1 + the share still pending at each later look:
    looking at the upper 65 % only). Looking where each 15 % of the spread would be over, as
    before, it takes about 4 reads for the same median."""
    rng = random.Random(23)
    delays, reads = zip(*(_wait_ending_at(rng.uniform(2.0, 4.0)) for _ in range(400)), strict=True)
    assert sorted(delays)[len(delays) // 2] <= 0.5
    assert sum(reads) / len(reads) <= 1.5
    # The share caught in time is what catch_share says (give or take the margins).
    assert 0.55 <= sum(d <= 0.5 for d in delays) / len(delays) <= 0.7


def test_a_wider_catch_share_pays_in_reads() -> None:
    rng = random.Random(5)
    ends = [rng.uniform(2.0, 4.0) for _ in range(200)]
    narrow = [_wait_ending_at(end, PollPolicy(catch_share=0.6))[1] for end in ends]
    wide = [_wait_ending_at(end, PollPolicy(catch_share=0.95))[1] for end in ends]
    assert sum(narrow) < 0.7 * sum(wide)


def _create_ops(t0: float, first: float | None, status: str = "running") -> list[dict[str, Any]]:
    """A branch create's two operations created at ``t0`` (whole second), ``create_branch``
    finished after ``first`` seconds (or still running), ``start_compute`` in ``status``."""
    stamp = datetime.fromtimestamp(t0, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    branch: dict[str, Any] = {**op(ID1, "running").raw, "created_at": stamp}
    if first is not None:
        end = datetime.fromtimestamp(t0 + first, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        branch |= {"status": "finished", "updated_at": end, "total_duration_ms": int(first * 1000)}
    compute = {**op(ID2, status, action="start_compute").raw, "created_at": stamp}
    return [compute, branch]  # newest first


def two_step_durations() -> Durations:
    """create_branch learned at 2-4 s; start_compute's span (queued behind it, then its own 2-4 s)
    at 4-8 s, its run after create_branch at 2-4 s."""
    durations = spread_durations("create_branch", EVEN_2_TO_4)
    durations.seed(
        {"start_compute": [4.0 + 0.4 * i for i in range(11)], run_key("start_compute"): EVEN_2_TO_4}
    )
    return durations


def test_a_finished_predecessor_times_the_rest_of_the_wait_from_its_end() -> None:
    durations = two_step_durations()
    poll = PollPolicy()
    watch = Watch("proj-1", poll, durations)
    t0 = 1_700_000_000.0
    waiter = watch.add([ID1, ID2], deadline=None, now=t0 + 0.2)
    # Both pending: the look follows start_compute's span (from the middle of the created second).
    watch.latest.update({o["id"]: Operation.from_api(o) for o in _create_ops(t0, None)})
    both = next_due(waiter, watch.latest, durations, poll, t0 + 1.0)
    # Its 1 - catch_share quantile (5.28 s of 4-8 s) + the tolerance, plus the margins (compared
    # as offsets from t0: pytest.approx of an epoch would allow a relative 1e-6, half an hour).
    span_look = quantile(durations.spans("start_compute"), 1 - poll.catch_share) + poll.tolerance
    assert span_look == pytest.approx(5.78)
    assert both - t0 == pytest.approx(0.2 + span_look + 0.1 + 0.01 * span_look)
    # create_branch seen finished at 2.1 s: start_compute's end is its own run (2-4 s) from then.
    watch.latest.update({o["id"]: Operation.from_api(o) for o in _create_ops(t0, 2.1)})
    after = next_due(waiter, watch.latest, durations, poll, t0 + 2.5)
    run_look = quantile(EVEN_2_TO_4, 1 - poll.catch_share) + poll.tolerance
    assert after - t0 == pytest.approx(0.2 + 2.1 + run_look + 0.1 + 0.01 * run_look)


def test_runs_after_a_predecessor_are_learned_from_a_wait() -> None:
    durations = Durations()
    watch = Watch("proj-1", PollPolicy(), durations)
    t0 = 1_700_000_000.0
    watch.add([ID1, ID2], deadline=None, now=t0)
    ops = _create_ops(t0, 2.5)
    stamp = datetime.fromtimestamp(t0 + 6, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    ops[0] |= {"status": "finished", "updated_at": stamp, "total_duration_ms": 5800}
    run_sync(watch.round_steps(t0 + 6.0), lambda req: {"operations": ops})
    assert durations.spans("start_compute") == [5.8]
    assert durations.spans(run_key("start_compute")) == pytest.approx([3.3])  # 5.8 - 2.5
    assert set(durations.samples(["start_compute"])) == {"start_compute", run_key("start_compute")}


def _finished_change(
    branch: str, t0: float, first: float, second: float, ids: tuple[str, str]
) -> list[dict[str, Any]]:
    """A finished branch create (``create_branch`` for ``first`` s, then ``start_compute`` for
    ``second`` s) on ``branch``, created at ``t0``: the list's dicts, newest first."""
    ops = _create_ops(t0, first)
    end = datetime.fromtimestamp(t0 + first + second, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    total = int((first + second) * 1000)
    ops[0] |= {"id": ids[1], "status": "finished", "updated_at": end, "total_duration_ms": total}
    ops[1] |= {"id": ids[0]}
    return [{**o, "branch_id": branch} for o in ops]


def test_a_fresh_process_learns_runs_after_a_predecessor_from_the_project_history() -> None:
    """The first page a wait reads holds changes nobody here waited for: each one's second
    operation teaches its run after the first (same branch, same created second), so a fresh
    process times a create's start_compute from create_branch's end at once. Operations of two
    changes are not paired, even on one page."""
    durations = Durations()
    watch = Watch("proj-1", PollPolicy(), durations)
    t0 = 1_700_000_000.0
    older = ("44444444-4444-4444-8444-444444444444", "55555555-5555-4555-8555-555555555555")
    history = _finished_change("br-old", t0, 2.5, 3.0, (ID1, ID2))
    history += _finished_change("br-older", t0, 4.0, 2.0, older)
    pending = [{**op(ID3, "running").raw, "created_at": "2023-11-14T22:14:00Z"}]
    watch.add([ID3, "66666666-6666-4666-8666-666666666666"], deadline=None, now=t0 + 100)
    run_sync(watch.round_steps(t0 + 100), lambda req: {"operations": pending + history})
    assert durations.spans(run_key("start_compute")) == pytest.approx([2.0, 3.0])
    assert durations.spans("start_compute") == pytest.approx([5.5, 6.0])
    assert durations.spans(run_key("create_branch")) == []


def _create_wait(
    first: float, second: float, round_trip: float = 0.0, measured: float | None = None
) -> tuple[float, int]:
    """A branch create's wait (two queued operations lasting ``first`` then ``second`` seconds):
    (how long after the second's end it returned, reads). Each read takes ``round_trip`` seconds,
    the service reading the operations half-way; the wait is told the round trip is ``measured``
    (default: what it is)."""
    sleeps = SleepRecorder()
    t0 = sleeps.now
    reads: list[str] = []

    def fetch(req: ApiRequest[Any]) -> Any:
        sleeps.now += round_trip / 2
        answer = state_at(req, sleeps.now - t0)
        sleeps.now += round_trip / 2
        return answer

    def state_at(req: ApiRequest[Any], age: float) -> Any:
        reads.append(req.describe())
        done = "finished" if age >= first + second else "running"
        ops = _create_ops(t0, first if age >= first else None, done)
        if ops[0]["status"] == "finished":
            end = datetime.fromtimestamp(t0 + first + second, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            ops[0] |= {"updated_at": end, "total_duration_ms": int((first + second) * 1000)}
        if req.path.endswith("{operation_id}"):  # the one still pending, read by id
            wanted = req.path_params["operation_id"]
            return req.parse({"operation": next(o for o in ops if o["id"] == wanted)})
        return req.parse({"operations": ops})

    known = [Operation.from_api(o) for o in _create_ops(t0, None)]
    told = round_trip if measured is None else measured
    steps = wait_steps(
        "proj-1",
        [ID1, ID2],
        deadline=None,
        clock=sleeps.clock,
        durations=two_step_durations(),
        known=known,
        round_trip=lambda: told,
    )
    assert run_sync(steps, fetch, sleeps).status == "success"
    return sleeps.now - t0 - first - second, len(reads)


def test_looks_allow_for_the_round_trip() -> None:
    """Against an API that answers in 200 ms (the service reads the operations 100 ms after a
    read is sent, the answer comes 100 ms later), looks timed as if answers were instant see far
    fewer ends within 0.5 s than they would with instant answers. Sent half a round trip early and
    spaced by the tolerance less that half, they see about as many, for a few more reads."""
    rng = random.Random(7)
    draws = [(rng.uniform(2, 4), rng.uniform(2, 4)) for _ in range(300)]

    def run(round_trip: float, measured: float) -> tuple[float, float]:
        waits = [_create_wait(a, b, round_trip, measured) for a, b in draws]
        return (
            sum(delay <= 0.5 for delay, _ in waits) / len(waits),
            sum(reads for _, reads in waits) / len(waits),
        )

    (instant, instant_reads), (blind, _), (allowed, allowed_reads) = run(0, 0), run(0.2, 0), run(0.2, 0.2)
    assert blind <= instant - 0.08
    assert allowed >= instant - 0.04
    assert allowed_reads <= instant_reads + 0.3


def test_a_create_wait_under_spread_sees_the_median_end_in_time_for_few_reads() -> None:
    """Two queued operations of 2-4 s each: the wait's end is their sum (4-8 s, peaked at 6). The
    median end is seen within 0.5 s for about two reads a wait."""
    rng = random.Random(7)
    waits = [_create_wait(rng.uniform(2, 4), rng.uniform(2, 4)) for _ in range(300)]
    delays, reads = zip(*waits, strict=True)
    assert sorted(delays)[len(delays) // 2] <= 0.5
    assert sum(reads) / len(reads) <= 2.5


def _lifecycle_bound(monkeypatch: pytest.MonkeyPatch) -> Any:
    path = Path(__file__).parents[2] / "benchmarks" / "lifecycle_bound.py"
    spec = importlib.util.spec_from_file_location("lifecycle_bound", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_a_steady_p50_needs_more_than_half_the_waits_in_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """The share in time a rule must expect for a benchmark row of 64 waits to measure a p50
    within the tolerance 19 times in 20 (``lifecycle_bound.steady_share``): checked against the
    exact binomial tail, and less for a larger row."""
    steady_share = _lifecycle_bound(monkeypatch).steady_share
    p = steady_share(64)
    tail = sum(math.comb(64, k) * p**k * (1 - p) ** (64 - k) for k in range(32, 65))
    assert 0.59 < p < 0.61
    assert 0.94 <= tail <= 0.97
    assert 0.5 < steady_share(128) < p


def test_a_create_wait_spends_near_the_fewest_reads_any_rule_could(monkeypatch: pytest.MonkeyPatch) -> None:
    """``benchmarks/lifecycle_bound.py`` computes the least reads a wait of two queued operations
    needs for a share of its ends seen within the tolerance, for a rule that knows their
    distribution exactly. The rule (spans learned over that distribution) spends at most 15 %
    more for the share it sees in time, and never less (a rule under the bound would mean the
    bound is wrong)."""
    module = _lifecycle_bound(monkeypatch)
    rng = random.Random(7)
    waits = [_create_wait(rng.uniform(2, 4), rng.uniform(2, 4)) for _ in range(400)]
    delays, reads = zip(*waits, strict=True)
    share = sum(d <= 0.5 for d in delays) / len(delays)
    least = module.Bound(3.0, 1 / 3, 0.5).least_reads(share)
    assert share > 0.5
    assert least - 0.05 <= sum(reads) / len(reads) <= 1.15 * least


def test_an_operations_age_comes_from_its_created_at() -> None:
    """A trigger that starts 10 s after its operation was created (a deferral) looks when the
    operation should end, not 10 s later."""
    durations = spread_durations("create_branch", [32.0] * 4)
    watch = Watch("proj-1", PollPolicy(), durations)
    created = datetime(2026, 1, 1, tzinfo=UTC)
    seen = Operation.from_api({**op(ID1, "running").raw, "created_at": created.isoformat()})
    waiter = watch.add([ID1], deadline=None, now=created.timestamp() + 10.0, known=[seen])
    # The middle of its whole-second stamp, plus the span and margins.
    assert waiter.due - created.timestamp() == pytest.approx(0.5 + 32.0 + 0.1 + 0.32)


def test_waiters_backing_off_share_the_watch_rounds() -> None:
    """Nothing learned: alone, a waiter backs off to its cap (5 s); five hundred share one list
    call a round, so the watch looks every initial_interval instead of every 5 s."""

    def gap_after_rounds(n: int) -> float:
        watch = Watch("proj-1", PollPolicy(max_interval=5.0), Durations())
        ids = [f"{i:08d}-0000-4000-8000-000000000000" for i in range(n)]
        for op_id in ids:
            watch.add([op_id], deadline=None, now=0.0, cap=5.0)
        now = 0.0
        page = {"operations": [op(i, "running").raw for i in ids]}
        one = {"operation": page["operations"][0]}
        for _ in range(12):
            now = max(now, watch.next_round_at() or now)
            # Every operation still running (one list call a round; a lone one is read by id).
            run_sync(watch.round_steps(now), lambda req: page if req.path.endswith("operations") else one)
        return (watch.next_round_at() or 0.0) - now

    assert gap_after_rounds(1) == pytest.approx(5.0)
    assert gap_after_rounds(500) == pytest.approx(0.5)


def test_backoff_starts_short_again_after_a_learned_look() -> None:
    """Five hundred waits back off to their cap before any create has finished; once one has, each
    looks at its own expected end, and one that is not done then is looked at again 0.5 s later,
    not at the cap (5 s) it had reached."""
    durations = Durations()
    poll = PollPolicy(max_interval=5.0)
    watch = Watch("proj-1", poll, durations)
    created = datetime(2026, 1, 1, tzinfo=UTC).timestamp()
    running = Operation.from_api({**op(ID1, "running").raw, "created_at": "2026-01-01T00:00:00Z"})
    waiter = watch.add([ID1], deadline=None, now=created + 5.0, cap=5.0)
    watch.latest[ID1] = running
    now = created + 5.0
    for _ in range(8):
        now = next_due(waiter, watch.latest, durations, poll, now)
    assert waiter.interval == 5.0
    durations.learn(
        Operation.from_api(
            {"id": "old", "action": "create_branch", "status": "finished", "total_duration_ms": 32000}
        )
    )
    look = next_due(waiter, watch.latest, durations, poll, now)
    assert look - created == pytest.approx(0.5 + 32.0 + 0.1 + 0.32)
    assert next_due(waiter, watch.latest, durations, poll, look) - look == pytest.approx(0.5)
