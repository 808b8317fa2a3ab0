"""What polling learns: how long operations of each action take, per project.

The waiting rules (``hooks/waiting.py``) look at an operation when it is likely to be done;
:class:`Durations` is where that comes from: the newest finished spans per action, whose spread
(not only their centre) places the looks (:func:`quantile`, :func:`rank`, :func:`longest_likely`),
one per project per process (:func:`durations_for`). What was learned can travel (:meth:`Durations.samples`,
:meth:`Durations.seed`): a deferring task hands it to its trigger, which may run in another process.
"""

from __future__ import annotations

import bisect
import itertools
import math
import statistics
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime

from airflow_provider_jambo.api_models import Operation, OperationStatus
from airflow_provider_jambo.exceptions import JamboConfigError

#: The service's timestamps are whole seconds.
TIMESTAMP_PRECISION = 1.0
#: Finished operations remembered per action: enough for their spread's quantiles, few enough that
#: a change of pace is learned within a few operations. More place the looks closer to the best
#: any rule could do, but learn a new pace as much later (``benchmarks/lifecycle_simulation.py
#: --samples``, ``--pace``; 10-s operations ± 50 %): 64 see 56 % of the waits in time where 16 see
#: 55 %, for 2 % more requests; but over the 32 lifecycles after the operations became 30 %
#: quicker, 64 see 22 % in time (16: 44 %), and after they became 40 % slower, spend 20.0
#: requests a lifecycle (16: 15.3).
SAMPLES_PER_ACTION = 16
#: Finished operations already learned from, remembered to not count one twice (bounded).
LEARNED_MEMORY = 512


class Durations:
    """How long operations of each action take in one project, learned from finished ones.

    Two measures per action: its span from creation (:func:`span_of`, queue included), and its run
    after the operation before it in the same change finished (:meth:`learn_run`, kept under
    :func:`run_key`): a wait that has seen the predecessor finish times the rest from that end.
    """

    def __init__(self, keep: int = SAMPLES_PER_ACTION) -> None:
        if keep < 1:
            raise JamboConfigError(f"Durations keep must be at least 1 span an action, got {keep}")
        #: Spans remembered per action (and per run key), the newest.
        self.keep = keep
        self._spans: dict[str, deque[float]] = {}
        self._learned: deque[str] = deque(maxlen=LEARNED_MEMORY)
        self._learned_set: set[str] = set()

    def knows(self, op_id: str) -> bool:
        return op_id in self._learned_set

    def learn(self, op: Operation) -> None:
        span = span_of(op)
        if span is not None and self._first_time(op.id):
            self._spans.setdefault(op.action, deque(maxlen=self.keep)).append(span)

    def learn_run(self, predecessor: Operation, op: Operation) -> None:
        """Learn how long ``op`` ran after ``predecessor`` (the one before it in the same change)
        finished: the gap between their ends, both on the service's clock. A span counts the time
        queued behind the predecessor; once a waiter has seen the predecessor finish, this is
        what is left of the wait (:func:`run_key`)."""
        first, then = span_of(predecessor), span_of(op)
        if first is None or then is None or predecessor.created_at is None or op.created_at is None:
            return
        run = (op.created_at - predecessor.created_at).total_seconds() + then - first
        if run > 0 and self._first_time(f"{op.id}{RUN_SUFFIX}"):
            self._spans.setdefault(run_key(op.action), deque(maxlen=self.keep)).append(run)

    def learn_changes(self, finished: Iterable[Operation]) -> None:
        """Learn runs after a predecessor from finished operations nobody here waited for (a
        list page's history): the operations of one change are those of one branch created in
        the same second, each run after the one that ended before it. A fresh process learns
        how the second operation of a change runs from the first page it reads, instead of
        only from changes it waits for itself."""
        changes: dict[tuple[str, datetime], list[tuple[float, Operation]]] = {}
        for op in finished:
            span = span_of(op)
            if span is not None and op.branch_id and op.created_at is not None:
                changes.setdefault((op.branch_id, op.created_at), []).append((span, op))
        for ops in changes.values():
            ordered = [op for _, op in sorted(ops, key=lambda pair: pair[0])]
            for predecessor, op in itertools.pairwise(ordered):
                self.learn_run(predecessor, op)

    def _first_time(self, key: str) -> bool:
        """Whether ``key`` (an operation learned from) is new; remembers it (bounded)."""
        if key in self._learned_set:
            return False
        if len(self._learned) == self._learned.maxlen:
            self._learned_set.discard(self._learned[0])
        self._learned.append(key)
        self._learned_set.add(key)
        return True

    def spans(self, action: str) -> list[float]:
        """The remembered spans of ``action``, sorted (empty when nothing was learned)."""
        return sorted(self._spans.get(action, ()))

    def samples(self, actions: Iterable[str] | None = None) -> dict[str, list[float]]:
        """Plain values (a trigger's kwargs): the spans learned per action, of ``actions`` or all
        (with their run spans after a predecessor, :func:`run_key`)."""
        if actions is None:
            names: Iterable[str] = self._spans
        else:
            wanted = dict.fromkeys(key for a in actions for key in (a, run_key(a)))
            names = [key for key in wanted if key in self._spans]
        return {action: list(self._spans[action]) for action in names if self._spans[action]}

    def seed(self, samples: Mapping[str, Sequence[float]]) -> None:
        """Take spans learned elsewhere (a deferring task's), for actions nothing is known of here:
        what this process saw itself is newer, and the same operation is not counted twice."""
        for action, spans in samples.items():
            if self._spans.get(action):
                continue
            kept = [float(s) for s in spans if isinstance(s, (int, float)) and math.isfinite(s) and s > 0]
            if kept:
                self._spans[str(action)] = deque(kept[-self.keep :], maxlen=self.keep)

    def expected(self, action: str) -> float | None:
        spans = self._spans.get(action)
        return statistics.median(spans) if spans else None

    def longest(self) -> float | None:
        """The longest expectation of any action (for an operation not seen yet)."""
        known = [statistics.median(s) for key, s in self._spans.items() if s and not key.endswith(RUN_SUFFIX)]
        return max(known) if known else None


def span_of(op: Operation) -> float | None:
    """How long a finished ``op`` took from its creation (``None`` when not finished or unknown):
    ``updated_at - created_at`` (the service's clock, so no skew; it counts time queued behind an
    earlier operation of the same change, which a waiter lives through), or ``total_duration_ms``
    where it agrees with those whole-second stamps (the same span, to the millisecond) or they
    are missing."""
    if op.status is not OperationStatus.FINISHED:
        return None
    span = None
    if op.created_at is not None and op.updated_at is not None:
        span = (op.updated_at - op.created_at).total_seconds()
    total = op.total_duration_ms / 1000.0
    if not span or span <= 0 or (total > 0 and abs(total - span) < TIMESTAMP_PRECISION):
        span = total
    return span if span > 0 else None


#: Marks the key under which an action's runs after a predecessor are learned (``Durations.learn_run``).
RUN_SUFFIX = "/after-predecessor"


def run_key(action: str) -> str:
    """Where :class:`Durations` keeps ``action``'s runs after its predecessor finished (a plain
    key, so they travel with :meth:`Durations.samples` and :meth:`Durations.seed` as they are)."""
    return f"{action}{RUN_SUFFIX}"


def quantile(spans: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0..1) of sorted ``spans``, interpolated between samples."""
    pos = min(1.0, max(0.0, q)) * (len(spans) - 1)
    low = math.floor(pos)
    if low + 1 >= len(spans):
        return spans[-1]
    return spans[low] + (spans[low + 1] - spans[low]) * (pos - low)


def rank(spans: Sequence[float], x: float) -> float:
    """The inverse of :func:`quantile`: the share (0..1) of sorted ``spans`` at or below ``x``."""
    if x < spans[0]:
        return 0.0
    if x >= spans[-1]:
        return 1.0
    i = bisect.bisect_right(spans, x) - 1
    return (i + (x - spans[i]) / (spans[i + 1] - spans[i])) / (len(spans) - 1)


def longest_likely(spans: Sequence[float]) -> float:
    """How long the longest operations of an action last, by its sorted learned ``spans``: the
    longest of ``n`` falls short of it by about their mean spacing (``range / (n + 1)`` of the
    true range for an even spread), so that much is added."""
    if len(spans) < 2:
        return spans[-1]
    return spans[-1] + (spans[-1] - spans[0]) / (len(spans) - 1)


_durations: dict[str, Durations] = {}


def durations_for(project_id: str) -> Durations:
    """The process's learned durations for a project (shared by every wait on it)."""
    return _durations.setdefault(project_id, Durations())


def forget_durations() -> None:
    """Forget what was learned (tests: emulated projects reuse ids)."""
    _durations.clear()
