"""What polling learns: how long operations of each action take, per project.

The waiting rules (``hooks/waiting.py``) look at an operation when it is expected to be done;
:class:`Durations` is where that expectation comes from (the median of the newest finished
spans per action), one per project per process (:func:`durations_for`).
"""

from __future__ import annotations

import statistics
from collections import deque

from airflow_provider_jambo.api_models import Operation, OperationStatus

#: The service's timestamps are whole seconds.
TIMESTAMP_PRECISION = 1.0
#: Finished operations remembered per action (the median of them is the expectation).
SAMPLES_PER_ACTION = 8
#: Finished operations already learned from, remembered to not count one twice (bounded).
LEARNED_MEMORY = 512


class Durations:
    """How long operations of each action take in one project, learned from finished ones.

    The span is ``updated_at - created_at`` of a finished operation (both on the service's clock,
    so no clock skew; it includes time queued behind an earlier operation of the same change, which
    is what a waiter experiences), else its ``total_duration_ms``. The service writes timestamps in
    whole seconds, so where ``total_duration_ms`` agrees with that span to within those seconds it
    is the same span, measured to the millisecond, and is taken instead (a first look that comes
    a second early only learns "still running").
    """

    def __init__(self) -> None:
        self._spans: dict[str, deque[float]] = {}
        self._learned: deque[str] = deque(maxlen=LEARNED_MEMORY)
        self._learned_set: set[str] = set()

    def knows(self, op_id: str) -> bool:
        return op_id in self._learned_set

    def learn(self, op: Operation) -> None:
        if op.status is not OperationStatus.FINISHED or op.id in self._learned_set:
            return
        span = None
        if op.created_at is not None and op.updated_at is not None:
            span = (op.updated_at - op.created_at).total_seconds()
        total = op.total_duration_ms / 1000.0
        if not span or span <= 0 or (total > 0 and abs(total - span) < TIMESTAMP_PRECISION):
            span = total
        if span <= 0:
            return
        if len(self._learned) == self._learned.maxlen:
            self._learned_set.discard(self._learned[0])
        self._learned.append(op.id)
        self._learned_set.add(op.id)
        self._spans.setdefault(op.action, deque(maxlen=SAMPLES_PER_ACTION)).append(span)

    def expected(self, action: str) -> float | None:
        spans = self._spans.get(action)
        return statistics.median(spans) if spans else None

    def longest(self) -> float | None:
        """The longest expectation of any action (for an operation not seen yet)."""
        known = [statistics.median(s) for s in self._spans.values() if s]
        return max(known) if known else None


_durations: dict[str, Durations] = {}


def durations_for(project_id: str) -> Durations:
    """The process's learned durations for a project (shared by every wait on it)."""
    return _durations.setdefault(project_id, Durations())


def forget_durations() -> None:
    """Forget what was learned (tests: emulated projects reuse ids)."""
    _durations.clear()
