"""Waiting for operations: the rules, written once, driven by the sync hook, the async hook or a trigger.

The rules are pure functions (``classify``, ``evaluate``, ``next_due``, ``PollPolicy.next_interval``)
and one state without I/O, :class:`Watch`: the waits on one project and what was last seen of their
operations. The polling loop is a generator (:func:`watch_steps`) that *yields* what it needs
(``Fetch`` a request, ``Sleep`` some seconds, ``Deliver`` a settled wait) and receives the answers
back. It is driven by :func:`run_sync` for a sync wait (:func:`wait_steps`, one waiter on a private
watch), by :func:`run_async`, and by the process's shared poller (``hooks/poller.py``), where every
trigger and async wait on a (connection, project) registers as a waiter of one watch.

Economy: a round serves every waiter of the watch with one list call (``GET
/projects/{id}/operations``, newest first, page sized to the pending operations; followed to the
next pages, a few at most, while a pending operation was not on it); an operation not on those
pages is read by id from then on, a bounded batch per round; a lone pending
operation is read by id. Duration-aware: each finished operation seen teaches :class:`Durations`
how long its action takes in that project, and a waiter is looked at where its operations' ends
are likely, by the spread learned (:func:`look_at`: a first look that sees the latest
``catch_share`` of the ends within ``tolerance`` and the earlier ones late, then, only for a wait
still pending, a look every ``tolerance`` up to the longest likely span; an operation whose predecessor
in the wait was seen finished is timed from that end by its learned runs; with a narrow spread
it is one read per state change; looks allow for the API's round trip, ``hooks/round_trips.py``:
sent half of it early, a tolerance less that half apart); without anything learned (or once
every learned span has passed) intervals start at ``initial_interval`` and grow to the waiter's
cap, and the waiters
backing off share the watch's rounds (many waiters, frequent rounds, still one list call each). A
round of ``n`` requests is never followed by less than ``n / max_requests_per_second`` seconds,
and every request also draws from the account's budget (``hooks/budget.py``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable, Generator, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime
from typing import Any, Literal, TypeAlias, TypeVar

from airflow_provider_jambo.api_models import Operation, OperationStatus
from airflow_provider_jambo.exceptions import (
    JamboConfigError,
    JamboError,
    JamboNotFoundError,
    JamboOperationFailedError,
    JamboOperationTimeoutError,
)
from airflow_provider_jambo.hooks.client import ApiRequest, check_id, page_of
from airflow_provider_jambo.hooks.operation_durations import (
    TIMESTAMP_PRECISION,
    Durations,
    durations_for,
    longest_likely,
    quantile,
    run_key,
    span_of,
)

Verdict = Literal["success", "failure", "pending"]
WaitStatus = Literal["success", "failed", "timeout"]
R = TypeVar("R")


@dataclass(frozen=True)
class PollPolicy:
    """Polling pace; plain numbers so a trigger can carry it."""

    initial_interval: float = 0.5
    max_interval: float = 10.0
    factor: float = 1.5
    #: A round of ``n`` requests is followed by ``n / max_requests_per_second`` seconds at least:
    #: one-request rounds 0.4 s apart, so that looks can come a tolerance less half a 200-ms round
    #: trip apart (:meth:`Watch.next_round_at`).
    max_requests_per_second: float = 2.5
    list_limit: int = 100
    #: How long after an operation's expected end to look: ``margin`` seconds plus
    #: ``margin_fraction`` of its expected duration (longer operations vary more).
    margin: float = 0.1
    margin_fraction: float = 0.01
    #: Seconds an operation's end may go unseen (the detection a look aims for) ...
    tolerance: float = 0.5
    #: ... for this share of ends (the rest, the earliest, are seen by the first look, later): the
    #: first look covers the ends from the ``1 - catch_share`` quantile of the learned spans on,
    #: so only the waits still pending pay for later looks (:func:`look_at`). The share seen in
    #: time falls short of it (16 learned spans place the quantiles roughly, margins delay each
    #: look), so it aims above the median: at 0.68 a branch lifecycle's waits were seen within the
    #: tolerance 53-57 % of the time in simulation and 50-57 % pooled over five runs of
    #: ``benchmarks/lifecycle_cost.py`` (3-s and 10-s operations ± 50 %; 45-67 % in one run's
    #: 64 waits); at 0.64, 49 % of 10-s waits in simulation.
    catch_share: float = 0.68
    #: Later looks per operation at most, up to its longest likely span: they come every
    #: ``tolerance`` seconds, or sparser for a long spread (minute-long operations).
    looks_per_wait: int = 16
    #: Reads by id per round at most (operations not on the list's pages).
    by_id_per_round: int = 10
    #: List pages per round at most: a project with more operations than one page holds (each
    #: branch create is two) is followed page by page until every pending operation was seen.
    list_pages: int = 3

    def __post_init__(self) -> None:
        if self.initial_interval < 0 or self.max_interval < self.initial_interval:
            raise JamboConfigError(
                "poll intervals must satisfy 0 <= initial_interval <= max_interval, "
                f"got {self.initial_interval} and {self.max_interval}"
            )
        if not self.tolerance > 0:
            raise JamboConfigError(f"poll tolerance must be > 0 seconds, got {self.tolerance}")
        if not 0 < self.catch_share <= 1:
            raise JamboConfigError(f"poll catch_share must be in (0, 1], got {self.catch_share}")
        if (
            self.factor < 1
            or self.max_requests_per_second <= 0
            or not 1 <= self.list_limit <= 1000
            or self.margin < 0
            or self.margin_fraction < 0
            or self.looks_per_wait < 1
            or self.by_id_per_round < 1
            or self.list_pages < 1
        ):
            raise JamboConfigError(
                "poll policy needs factor >= 1, max_requests_per_second > 0, 1 <= list_limit <= 1000, "
                "margin >= 0, margin_fraction >= 0, looks_per_wait >= 1, by_id_per_round >= 1 "
                f"and list_pages >= 1; got {self}"
            )

    def next_interval(self, previous: float | None) -> float:
        if previous is None:
            return self.initial_interval
        return min(self.max_interval, max(previous, self.initial_interval) * self.factor)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PollPolicy:
        known = {f.name for f in fields(cls)}
        if set(data) - known:
            raise JamboConfigError(
                f"unknown poll settings {sorted(set(data) - known)}; allowed: {sorted(known)}"
            )
        return cls(**dict(data))


def classify(op: Operation, *, deadline_passed: bool = False) -> Verdict:
    """success = finished/skipped; failure = error/cancelled, or ``failed`` once the service
    stops retrying it (no ``retry_at``) or the deadline has passed; anything else is pending."""
    if op.is_succeeded:
        return "success"
    if op.is_pending and not (deadline_passed and op.status is OperationStatus.FAILED):
        return "pending"
    return "failure"


def failure_message(failed: Sequence[Operation]) -> str:
    return f"{len(failed)} operation(s) failed: " + "; ".join(op.describe() for op in failed)


@dataclass(frozen=True)
class WaitResult:
    status: WaitStatus
    operations: list[Operation] = field(default_factory=list)
    message: str = ""

    @property
    def succeeded(self) -> bool:
        return self.status == "success"

    def raise_for_status(self) -> WaitResult:
        if self.status == "failed":
            raise JamboOperationFailedError(self.message, self.operations)
        if self.status == "timeout":
            raise JamboOperationTimeoutError(self.message, self.operations)
        return self

    def to_dict(self) -> dict[str, Any]:
        """Plain values (for a trigger event): status, message and the operations' raw dicts."""
        return {
            "status": self.status,
            "message": self.message,
            "operations": [dict(op.raw) for op in self.operations],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> WaitResult:
        status = data.get("status")
        if status not in ("success", "failed", "timeout"):
            raise JamboConfigError(f"wait status must be success, failed or timeout, got {status!r}")
        ops = [Operation.from_api(raw) for raw in data.get("operations", [])]
        return cls(status=status, operations=ops, message=str(data.get("message", "")))


def evaluate(operations: Sequence[Operation], *, deadline_passed: bool = False) -> WaitResult | None:
    """The outcome of a set of operations, or ``None`` while waiting should go on.

    Any failure ends the wait at once (no point waiting for the rest of a broken change).
    """
    ops = list(operations)
    verdicts = [classify(op, deadline_passed=deadline_passed) for op in ops]
    failed = [op for op, v in zip(ops, verdicts, strict=True) if v == "failure"]
    if failed:
        return WaitResult("failed", ops, failure_message(failed))
    pending = [op for op, v in zip(ops, verdicts, strict=True) if v == "pending"]
    if not pending:
        actions = ", ".join(op.action for op in ops) or "none"
        return WaitResult("success", ops, f"{len(ops)} operation(s) finished: {actions}")
    if deadline_passed:
        names = "; ".join(op.describe() for op in pending)
        return WaitResult("timeout", ops, f"timed out waiting for {len(pending)} operation(s): {names}")
    return None


# --- the shared poll: every waiter of one project served by one round of requests ------------------


@dataclass(eq=False)
class Waiter:
    """One wait registered with a :class:`Watch` (its operations, deadline and poll cap)."""

    ids: list[str]
    deadline: float | None
    cap: float
    registered_at: float
    #: Seconds its looks are sent before the moment they aim to see: half the API's typical
    #: round trip when it registered (``hooks/round_trips.py``), fixed for the wait so that a look
    #: is never planned twice.
    lead: float = 0.0
    due: float = 0.0
    interval: float | None = None
    #: Its next look comes from backoff (nothing learned predicts it): it shares the watch's rounds.
    backoff: bool = False
    #: The driver's handle (an asyncio future for the shared poller).
    handle: Any = field(default=None, repr=False)


Outcome: TypeAlias = "WaitResult | JamboError"


def started_at(waiter: Waiter, op: Operation) -> float:
    """When ``op`` started, on the local clock: its ``created_at`` (whole seconds, so the middle of
    that second), but never after the waiter registered (the caller had its id then). A trigger
    that starts long after its task created the operation still looks when it should end; clocks
    are assumed to agree to within a second or so (a look too early costs one read)."""
    if op.created_at is None:
        return waiter.registered_at
    return min(waiter.registered_at, op.created_at.timestamp() + TIMESTAMP_PRECISION / 2)


def no_round_trip() -> float:
    """A :class:`Watch`'s round trip when nobody measures one: answers taken as instant."""
    return 0.0


#: Ages closer than this are the same look (float rounding of clock arithmetic).
_SAME_AGE = 1e-6


def look_at(spans: Sequence[float], age: float, poll: PollPolicy, tolerance: float) -> float | None:
    """The next age (seconds since the operation started) at which to look at one still pending,
    by its action's sorted learned ``spans``; ``None`` once ``age`` is past the longest likely.
    ``tolerance`` is how long before a look an end is still seen in time (the policy's, less
    half the round trip, :func:`next_look`).

    The first look at the ``1 - catch_share`` quantile + ``tolerance``: it sees every end before
    it, those of the last ``tolerance`` seconds in time, the earlier ones late (fine for the
    median). Then looks every ``tolerance`` seconds (``spread / looks_per_wait`` if that is more)
    up to the longest likely span (:func:`longest_likely`), each seeing in time the ends since the
    one before; only the waits still pending pay for them, so the expected reads are
    ``1 + sum(P(pending at each later look))``, the least for ``catch_share`` of the ends seen
    within ``tolerance``. A narrow spread makes it one look, at the longest likely span.
    """
    # A look comes at the age it was due for, give or take rounding: that look is the one past.
    age += _SAME_AGE
    last = longest_likely(spans)
    if age >= last:
        return None
    first = min(last, quantile(spans, 1.0 - poll.catch_share) + tolerance)
    if age < first:
        return first
    step = max(tolerance, (last - first) / poll.looks_per_wait)
    return min(last, first + (math.floor((age - first) / step) + 1) * step)


def next_look(
    waiter: Waiter, latest: Mapping[str, Operation], durations: Durations, poll: PollPolicy, now: float
) -> float | None:
    """When to look next at ``waiter``'s pending operations by what was learned (local clock), or
    ``None`` when nothing learned says (no spans of an action, or every learned span has passed).

    Per pending operation, :func:`look_at` its action's spans from its start, plus ``margin`` and
    ``margin_fraction`` of that age. Its start is its ``created_at``; but once the operation before
    it in the wait (the one before it in the change: a branch create's ``create_branch`` before its
    ``start_compute``) is seen finished, what is left is its run after that end, learned apart
    (:meth:`Durations.learn_run`): narrower than its span, which adds the predecessor's spread.
    The wait needs all of them, so it looks when the last of those looks is due. An operation not
    seen yet (its action unknown) gets one look after the longest known action, capped by the cap.

    A read sees the operations about half-way through its round trip and is answered at its end:
    looks aim at what is seen ``waiter.lead`` (half a round trip) after they are sent, are sent
    that much early, and see an end in time only if it came ``tolerance - lead`` before.
    """
    lead = waiter.lead
    tolerance = poll.tolerance - lead
    seen_at = now + lead  # what a read sent now sees
    looks: list[float] = []
    previous: Operation | None = None
    for op_id in waiter.ids:
        op = latest.get(op_id)
        before, previous = previous, op
        if op is not None and not op.is_pending:
            continue
        if op is None:
            longest = durations.longest()
            if longest is None:
                return None
            start, span = waiter.registered_at, min(longest, waiter.cap)
        else:
            if (
                before is not None
                and (finished := span_of(before)) is not None
                and (runs := durations.spans(run_key(op.action)))
            ):
                # Seen finished by now, so it ended no later than what a read sent now sees.
                start, spans = min(seen_at, started_at(waiter, before) + finished), runs
            else:
                start, spans = started_at(waiter, op), durations.spans(op.action)
            if not spans:
                return None
            age = seen_at - start
            found = look_at(spans, (age - poll.margin) / (1.0 + poll.margin_fraction), poll, tolerance)
            if found is None:
                return None  # later than anything seen: backoff
            span = found
        looks.append(start + span + poll.margin + poll.margin_fraction * span - lead)
    return max(looks) if looks else None


def next_due(
    waiter: Waiter,
    latest: Mapping[str, Operation],
    durations: Durations,
    poll: PollPolicy,
    now: float,
) -> float:
    """When ``waiter`` next needs a look (pure; updates only its backoff state).

    By what was learned (:func:`next_look`), even beyond the cap; without that, back off from
    ``initial_interval`` to the waiter's cap (the watch's rounds are shared by every waiter backing
    off, see :meth:`Watch.next_round_at`). Never past its deadline.
    """
    look = next_look(waiter, latest, durations, poll, now)
    if look is not None and look > now:
        due = look
        waiter.backoff = False
        waiter.interval = None  # past this look, backoff starts short again
    else:
        waiter.interval = min(waiter.cap, poll.next_interval(waiter.interval))
        due = now + waiter.interval
        waiter.backoff = True
    if waiter.deadline is not None:
        due = min(due, waiter.deadline)
    return due


class Watch:
    """The waits on one project and what was last seen of their operations (no I/O, no clock).

    A round (:meth:`round_steps`) serves every waiter: one list call (newest first, its page long
    enough for all pending operations, followed to ``list_pages`` pages at most) reads them all; an
    operation not on those pages is read by id from then on, at most ``by_id_per_round`` of them
    per round (oldest read first), so a round's cost is bounded. A lone pending operation is read
    by id (a smaller answer).
    """

    def __init__(
        self,
        project_id: str,
        poll: PollPolicy = PollPolicy(),
        durations: Durations | None = None,
        round_trip: Callable[[], float] = no_round_trip,
    ) -> None:
        self.project_id = check_id("project_id", project_id)
        self.poll = poll
        self.durations = durations if durations is not None else durations_for(project_id)
        #: The API's typical round trip, seconds (a hook's :meth:`round_trip`): times the looks.
        self.round_trip = round_trip
        #: Insertion-ordered set (a dict): a thousand waiters settled in one round leave in O(1) each.
        self.waiters: dict[Waiter, None] = {}
        self._wanted: dict[str, int] = {}  # operation id -> how many waiters wait for it
        self.latest: dict[str, Operation] = {}
        self.read_by_id: dict[str, float] = {}  # op id -> when last read
        self.last_round_at: float | None = None
        self.last_round_requests = 0
        self.rounds = 0
        self.requests = 0

    def add(
        self,
        operation_ids: Sequence[str],
        *,
        deadline: float | None,
        now: float,
        cap: float | None = None,
        known: Sequence[Operation] = (),
    ) -> Waiter:
        """Register a wait. ``known`` are operations as the caller last saw them (the ones a call
        just returned): their actions tell when to look first, instead of a look after the cap."""
        ids = list(dict.fromkeys(operation_ids))
        for op_id in ids:
            check_id("operation_id", op_id)
        for op in known:
            if op.id in ids and op.id not in self.latest:
                self.latest[op.id] = op
        waiter = Waiter(ids, deadline, cap if cap is not None else self.poll.max_interval, now)
        waiter.lead = self.lead()
        # First look at once (an operation may be done already), unless it is likely done later.
        look = next_look(waiter, self.latest, self.durations, self.poll, now)
        waiter.due = look if look is not None and look > now else now
        if deadline is not None:
            waiter.due = min(waiter.due, deadline)
        self.waiters[waiter] = None
        for op_id in ids:
            self._wanted[op_id] = self._wanted.get(op_id, 0) + 1
        return waiter

    def lead(self) -> float:
        """How long before the moment a look aims to see it is sent: half the API's typical round
        trip (a read sees the operations about half-way), at most half the tolerance."""
        return min(max(0.0, self.round_trip()), self.poll.tolerance) / 2

    def remove(self, waiter: Waiter) -> None:
        if self.waiters.pop(waiter, False) is not None:
            return  # not (or no longer) registered
        for op_id in waiter.ids:
            left = self._wanted[op_id] - 1
            if left:
                self._wanted[op_id] = left
                continue
            del self._wanted[op_id]
            self.latest.pop(op_id, None)
            self.read_by_id.pop(op_id, None)

    def _pending(self, waiters: Iterable[Waiter]) -> list[str]:
        ids = dict.fromkeys(i for w in waiters for i in w.ids)
        return [i for i in ids if i not in self.latest or self.latest[i].is_pending]

    def next_round_at(self) -> float | None:
        """When the next round is due: the earliest waiter's look, not sooner after the last round
        than ``initial_interval`` or the rate floor, but never after a waiter's deadline.

        One round serves every waiter, so the waiters backing off share it: alone each would pay
        one request per interval, together they pay for a round as often as the sum of those rates
        (``1 / sum(1 / interval)``): a lone waiter keeps its pace, five hundred without history
        are looked at every ``initial_interval`` for one request a round."""
        if not self.waiters:
            return None
        at = min(w.due for w in self.waiters)
        if self.last_round_at is not None:
            rate = sum(1.0 / w.interval for w in self.waiters if w.backoff and w.interval)
            if rate > 0:
                at = min(at, self.last_round_at + 1.0 / rate)
            # Looks that see every end in time come a tolerance less the lead apart (next_look),
            # closer than initial_interval when answers take a while.
            spacing = min(self.poll.initial_interval, self.poll.tolerance - self.lead())
            floor = max(spacing, self.last_round_requests / self.poll.max_requests_per_second)
            at = max(at, self.last_round_at + floor)
        deadlines = [w.deadline for w in self.waiters if w.deadline is not None]
        return min([at, *deadlines])

    def _see(self, raw: Any, wanted: set[str], page: bool) -> set[str]:
        """Take in operation dicts: those waited for, and finished ones to learn from.

        A page lists the newest first; it is taken in oldest first, so that what
        :class:`Durations` keeps (the last samples per action) are the newest."""
        seen: set[str] = set()
        history: list[Operation] = []
        for item in reversed(list(raw)):
            if not isinstance(item, Mapping):
                continue
            op_id = item.get("id")
            if op_id in wanted:
                op = Operation.from_api(item)
                self.latest[op.id] = op
                self.durations.learn(op)
                seen.add(op.id)
            elif page and item.get("status") == "finished" and not self.durations.knows(str(op_id)):
                history.append(Operation.from_api(item))
                self.durations.learn(history[-1])
        self.durations.learn_changes(history)
        return seen

    def round_steps(self, now: float) -> Generator[Fetch, Any, list[tuple[Waiter, Outcome]]]:
        """Yield the requests of one round; return the waiters it settled and their outcomes.

        The driver sends back each request's decoded body, or the ``JamboNotFoundError`` a read by
        id met (that operation's waiters get it; the others go on)."""
        due = [w for w in self.waiters if w.due <= now or (w.deadline is not None and w.deadline <= now)]
        pending = self._pending(self.waiters)
        via_list = [i for i in pending if i not in self.read_by_id]
        requests = 0
        missing: dict[str, JamboNotFoundError] = {}
        lone = len(via_list) == 1
        if via_list and not lone:
            limit = min(1000, max(self.poll.list_limit, len(pending) + self.poll.list_limit))
            wanted, unseen = set(pending), set(via_list)
            cursor: str | None = None
            for _ in range(self.poll.list_pages):
                body = yield Fetch(list_operations_request(self.project_id, limit=limit, cursor=cursor))
                requests += 1
                ops, cursor = page_of(body, "operations", limit)
                unseen -= self._see(ops, wanted, page=True)
                if not unseen or cursor is None:
                    break
                # Older operations still pending lie deeper than the pending count says: the next
                # pages are as long as the service allows.
                limit = 1000
            for op_id in unseen:
                self.read_by_id[op_id] = float("-inf")  # not on the pages: read by id, first
        due_ids = set(self._pending(due))
        by_id = [i for i in pending if i in self.read_by_id and i in due_ids]
        if lone and via_list[0] in due_ids:
            by_id.insert(0, via_list[0])
        by_id.sort(key=lambda i: self.read_by_id.get(i, float("-inf")))
        for op_id in by_id[: self.poll.by_id_per_round]:
            body = yield Fetch(get_operation_request(self.project_id, op_id))
            requests += 1
            if op_id in self.read_by_id:
                self.read_by_id[op_id] = now
            if isinstance(body, JamboNotFoundError):
                missing[op_id] = body
            elif isinstance(body, Mapping):
                self._see([body.get("operation")], {op_id}, page=False)
        self.last_round_at = now
        self.last_round_requests = requests
        self.rounds += 1
        self.requests += requests
        return self._settle(now, missing)

    def _settle(self, now: float, missing: Mapping[str, JamboNotFoundError]) -> list[tuple[Waiter, Outcome]]:
        settled: list[tuple[Waiter, Outcome]] = []
        for waiter in self.waiters:
            self._learn_runs(waiter)
            gone = next((missing[i] for i in waiter.ids if i in missing), None)
            if gone is not None:
                settled.append((waiter, gone))
                continue
            passed = waiter.deadline is not None and now >= waiter.deadline
            ops = [self.latest[i] for i in waiter.ids if i in self.latest]
            if len(ops) == len(waiter.ids):
                result = evaluate(ops, deadline_passed=passed)
            elif any(classify(op) == "failure" for op in ops):
                result = evaluate(ops)
            else:
                result = self._timeout(waiter, ops) if passed else None
            if result is not None:
                settled.append((waiter, result))
            else:
                waiter.due = next_due(waiter, self.latest, self.durations, self.poll, now)
        return settled

    def _learn_runs(self, waiter: Waiter) -> None:
        """Each operation of the wait seen finished after the one before it: how long it ran after
        that one's end (:meth:`Durations.learn_run`; learned once per operation)."""
        for before_id, op_id in zip(waiter.ids, waiter.ids[1:], strict=False):
            before, op = self.latest.get(before_id), self.latest.get(op_id)
            if before is not None and op is not None:
                self.durations.learn_run(before, op)

    def _timeout(self, waiter: Waiter, ops: Sequence[Operation]) -> WaitResult:
        seen = {op.id for op in ops}
        names = [op.describe() for op in ops if classify(op, deadline_passed=True) != "success"]
        names += [f"{i} (not seen yet)" for i in waiter.ids if i not in seen]
        return WaitResult(
            "timeout", list(ops), f"timed out waiting for {len(names)} operation(s): {'; '.join(names)}"
        )


# --- the polling loop as a generator of steps --------------------------------------------------


@dataclass(frozen=True)
class Fetch:
    """Send ``request``; send back its decoded body (or the 404 error of a read by id)."""

    request: ApiRequest[Any]


@dataclass(frozen=True)
class Sleep:
    seconds: float


@dataclass(frozen=True)
class Deliver:
    """``waiter`` is settled: hand it ``outcome``."""

    waiter: Waiter
    outcome: Outcome


Step: TypeAlias = "Fetch | Sleep | Deliver"


def get_operation_request(project_id: str, operation_id: str) -> ApiRequest[Any]:
    return ApiRequest(
        "GET",
        "/projects/{project_id}/operations/{operation_id}",
        {"project_id": project_id, "operation_id": operation_id},
    )


def list_operations_request(project_id: str, *, limit: int, cursor: str | None = None) -> ApiRequest[Any]:
    return ApiRequest(
        "GET",
        "/projects/{project_id}/operations",
        {"project_id": project_id},
        query={"limit": limit, "cursor": cursor},
    )


def resolve_deadline(timeout: float | None, deadline: datetime | float | None, now: float) -> float | None:
    """One absolute deadline (epoch seconds) from a relative timeout and/or an absolute deadline."""
    candidates: list[float] = []
    if timeout is not None:
        if timeout < 0:
            raise JamboConfigError(f"timeout must be >= 0 seconds, got {timeout}")
        candidates.append(now + timeout)
    if isinstance(deadline, datetime):
        if deadline.tzinfo is None:
            raise JamboConfigError("deadline must be a timezone-aware datetime")
        candidates.append(deadline.timestamp())
    elif deadline is not None:
        candidates.append(float(deadline))
    return min(candidates) if candidates else None


def watch_steps(watch: Watch, clock: Callable[[], float]) -> Generator[Step, Any, None]:
    """Serve every waiter of ``watch`` until none is left: sleep until the next round is due, run
    it, deliver what it settled. Waiters may join or leave between steps (the shared poller's
    driver interrupts a ``Sleep`` when they do)."""
    while True:
        at = watch.next_round_at()
        if at is None:
            return
        now = clock()
        if at > now:
            yield Sleep(at - now)
            continue
        for waiter, outcome in (yield from watch.round_steps(now)):
            watch.remove(waiter)
            yield Deliver(waiter, outcome)


def wait_steps(
    project_id: str,
    operation_ids: Sequence[str],
    *,
    deadline: float | None,
    clock: Callable[[], float] = time.time,
    poll: PollPolicy = PollPolicy(),
    durations: Durations | None = None,
    known: Sequence[Operation] = (),
    until: float | None = None,
    round_trip: Callable[[], float] = no_round_trip,
) -> Generator[Step, Any, WaitResult]:
    """One wait on a private :class:`Watch` (a sync wait in a worker): the same rules as the
    shared poller's. Returns the result; raises the 404 of an operation that does not exist.

    ``until`` ends the wait early, without a look of its own: once the next look is due after it,
    the result is ``timeout`` with the operations as last seen (a deferrable task's inline grace:
    it hands them to its trigger, which goes on with the same timing). ``deadline`` stays the
    wait's real end, looked at as always. ``round_trip``: as :class:`Watch`'s."""
    watch = Watch(project_id, poll, durations, round_trip)
    if not operation_ids:
        return WaitResult("success", [], "no operations to wait for")
    waiter = watch.add(operation_ids, deadline=deadline, now=clock(), known=known)
    steps = watch_steps(watch, clock)
    reply: Any = None
    while True:
        step = steps.send(reply)
        if isinstance(step, Deliver):
            if isinstance(step.outcome, JamboError):
                raise step.outcome
            assert step.waiter is waiter
            return step.outcome
        if isinstance(step, Sleep) and until is not None and clock() + step.seconds > until:
            seen = {op.id: op for op in known} | watch.latest
            ops = [seen[i] for i in waiter.ids if i in seen]
            return WaitResult(
                "timeout", ops, f"{len(waiter.ids)} operation(s) likely not done before the wait's end"
            )
        reply = yield step


def read_steps(project_id: str, operation_ids: Sequence[str]) -> Generator[Fetch, Any, dict[str, Operation]]:
    """One round for ``operation_ids`` (a sensor's poke): their current states by id. Every one is
    read now, whatever the learned durations expect (hence no shared ``Durations`` here)."""
    watch = Watch(project_id, durations=Durations())
    watch.add(operation_ids, deadline=None, now=0.0)
    settled = yield from watch.round_steps(0.0)
    for _waiter, outcome in settled:
        if isinstance(outcome, JamboError):
            raise outcome
    return dict(watch.latest)


def missing_operation(req: ApiRequest[Any], err: JamboNotFoundError) -> JamboNotFoundError:
    """A 404 on a read by id is an answer (that operation does not exist); elsewhere it is raised."""
    if "{operation_id}" not in req.path:
        raise err
    return err


def _answer(fetch: Callable[[ApiRequest[Any]], Any], req: ApiRequest[Any]) -> Any:
    try:
        return fetch(req)
    except JamboNotFoundError as err:
        return missing_operation(req, err)


def run_sync(
    steps: Generator[Step, Any, R],
    fetch: Callable[[ApiRequest[Any]], Any],
    sleep: Callable[[float], None] = time.sleep,
) -> R:
    try:
        step = next(steps)
        while True:
            if isinstance(step, Fetch):
                step = steps.send(_answer(fetch, step.request))
            elif isinstance(step, Sleep):
                sleep(step.seconds)
                step = steps.send(None)
            else:
                raise TypeError(f"run_sync drives a single wait, got {step!r}")
    except StopIteration as done:
        return done.value


async def fetch_async(fetch: Callable[[ApiRequest[Any]], Awaitable[Any]], req: ApiRequest[Any]) -> Any:
    """The async counterpart of the 404 rule in :func:`run_sync` (a missing operation is an answer)."""
    try:
        return await fetch(req)
    except JamboNotFoundError as err:
        return missing_operation(req, err)


async def run_async(
    steps: Generator[Step, Any, R],
    fetch: Callable[[ApiRequest[Any]], Awaitable[Any]],
    sleep: Callable[[float], Awaitable[Any]],
) -> R:
    try:
        step = next(steps)
        while True:
            if isinstance(step, Fetch):
                step = steps.send(await fetch_async(fetch, step.request))
            elif isinstance(step, Sleep):
                await sleep(step.seconds)
                step = steps.send(None)
            else:
                raise TypeError(f"run_async drives a single wait, got {step!r}")
    except StopIteration as done:
        return done.value
