"""The operation engine: every mutation's asynchronous work, on the emulator's clock.

An operation is ``scheduling`` until its predecessor in the same request's chain has finished (and
for the first quarter of its own duration), then ``running``, then ``finished`` at
``start + duration``, or whatever outcome was forced for its action. Timestamps are the due times,
so the timeline does not depend on when somebody looks. Statuses are advanced lazily on every
request and by the background sweeper. A data-plane call attached to an operation runs on the
data-plane worker from the moment the operation is created; the operation cannot finish before the
call has returned, and a failed call ends it with status ``error``.
"""

from __future__ import annotations

import heapq
import random
from collections import deque
from collections.abc import Callable
from typing import Any

from jambo_emulator.state.clock import Clock
from jambo_emulator.state.dataplane_runner import DataPlaneRunner, describe_failure, log_failure
from jambo_emulator.state.errors import not_found
from jambo_emulator.state.ids import IdGenerator
from jambo_emulator.state.records import SUCCESS, TERMINAL, Operation, Project
from jambo_emulator.state.store import Store

OUTCOMES = ("finished", "failed", "error", "failed_then_finished")
#: The spec's OperationAction enum: what durations and forced outcomes may name.
ACTIONS = (
    "create_compute",
    "create_timeline",
    "start_compute",
    "suspend_compute",
    "apply_config",
    "check_availability",
    "delete_timeline",
    "create_branch",
    "import_data",
    "tenant_ignore",
    "tenant_attach",
    "tenant_detach",
    "tenant_reattach",
    "replace_safekeeper",
    "disable_maintenance",
    "apply_storage_config",
    "prepare_secondary_pageserver",
    "switch_pageserver",
    "detach_parent_branch",
    "timeline_archive",
    "timeline_unarchive",
    "start_reserved_compute",
    "sync_dbs_and_roles_from_compute",
    "apply_schema_from_branch",
    "timeline_mark_invisible",
    "timeline_update_protected_config",
    "prewarm_replica",
    "promote_replica",
    "set_storage_non_dirty",
    "swap_binding_id",
    "finalize_migration",
    "mark_migration_prepared",
    "update_catalog",
)
#: A masking run of an anonymized branch: no operation action in the spec, but paced like one.
ANONYMIZE = "anonymize"
#: What ``set_operation_durations`` may name: every operation action, plus the masking run.
DURATION_KEYS = (*ACTIONS, ANONYMIZE)
#: Longest operation duration a control call may set (an hour: anything longer is a typo).
MAX_DURATION = 3600.0
#: Widest duration spread a control call may set: each operation lasts its action's duration times
#: a factor drawn from U(1 - spread, 1 + spread), so below 1 no operation is instant by accident.
MAX_SPREAD = 0.9


def _ended(op: Operation) -> bool:
    """Nothing more will happen (a ``failed`` that the service will retry has not ended)."""
    return op.status in TERMINAL and not (op.status == "failed" and op.outcome == "failed_then_finished")


FAILURE_MESSAGES = {
    "failed": "operation failed: compute node did not respond in time",
    "error": "operation error: internal error while executing the operation",
}


class OperationEngine:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        ids: IdGenerator,
        runner: DataPlaneRunner,
        default_duration: float,
        durations: dict[str, float],
    ) -> None:
        self.store = store
        self.clock = clock
        self.ids = ids
        self.runner = runner
        self.default_duration = default_duration
        self.configured_default = default_duration
        self.durations = dict(durations)
        self._forced: dict[str, deque[str]] = {}
        #: Real operations' times vary; 0 (the default) keeps every duration exact.
        self.spread = 0.0
        self.spread_seed = 0
        self._spread_rng = random.Random(0)
        self._heap: list[tuple[float, int, Operation]] = []
        self._waiting: dict[str, list[Operation]] = {}  # predecessor id -> operations after it
        self._forgotten: set[str] = set()
        self._inflight_per_project: dict[str, int] = {}
        self._next_due = float("inf")
        self._generation = 0

    # -- configuration -------------------------------------------------------------------------
    def set_durations(
        self, default: float | None = None, *, replace: bool = False, **per_action: float
    ) -> None:
        """Merge into the current durations, or (``replace``) make these the whole table: actions
        not named go back to the default, and an unnamed default to the configured one."""
        unknown = sorted(set(per_action) - set(DURATION_KEYS))
        if unknown:
            raise ValueError(
                f"unknown operation action(s) {', '.join(unknown)}; "
                f"allowed: default, {', '.join(DURATION_KEYS)}"
            )
        for name, value in [("default", default), *per_action.items()]:
            if value is not None and not (
                isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value <= MAX_DURATION
            ):
                raise ValueError(
                    f"duration for {name} must be between 0 and {MAX_DURATION:g} seconds, got {value!r}"
                )
        with self.store.lock:
            if replace:
                self.durations.clear()
                self.default_duration = self.configured_default
            if default is not None:
                self.default_duration = float(default)
            self.durations.update({name: float(value) for name, value in per_action.items()})

    def set_spread(self, spread: float, seed: int = 0) -> None:
        """Draw each new operation's duration from U((1 - spread)·D, (1 + spread)·D) for its action's
        duration D; the draws come from a generator seeded with ``seed``, so a run that creates the
        same operations in the same order gets the same durations."""
        number = isinstance(spread, (int, float)) and not isinstance(spread, bool)
        if not (number and 0 <= spread <= MAX_SPREAD):
            raise ValueError(f"spread must be a number between 0 and {MAX_SPREAD:g}, got {spread!r}")
        if not isinstance(seed, int) or isinstance(seed, bool):
            raise ValueError(f"seed must be an integer, got {seed!r}")
        with self.store.lock:
            self.spread = float(spread)
            self.spread_seed = seed
            self._spread_rng = random.Random(seed)

    def _duration(self, action: str) -> float:
        """This operation's duration (caller holds the store lock)."""
        base = self.durations.get(action, self.default_duration)
        if not self.spread:
            return base
        return base * (1.0 + self.spread * (2.0 * self._spread_rng.random() - 1.0))

    def force_outcome(self, action: str, outcome: str, times: int = 1) -> None:
        if action not in ACTIONS:
            raise ValueError(f"action must be one of {', '.join(ACTIONS)}, got {action!r}")
        if outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {', '.join(OUTCOMES)}, got {outcome!r}")
        if not 1 <= times <= 10_000:
            raise ValueError(f"times must be between 1 and 10000, got {times}")
        with self.store.lock:
            self._forced.setdefault(action, deque()).extend([outcome] * times)

    def clear_outcomes(self) -> None:
        with self.store.lock:
            self._forced.clear()

    def forced_outcomes(self) -> dict[str, list[str]]:
        with self.store.lock:
            return {action: list(queue) for action, queue in self._forced.items() if queue}

    # -- creating --------------------------------------------------------------------------------
    def create(
        self,
        project: Project,
        action: str,
        *,
        branch_id: str | None = None,
        endpoint_id: str | None = None,
        after: Operation | None = None,
        on_finish: Callable[[Operation], None] | None = None,
        on_fail: Callable[[Operation], None] | None = None,
        effect: Callable[[], Any] | None = None,
        effect_name: str = "",
    ) -> Operation:
        """Create an operation (caller holds the store lock)."""
        now = self.clock.now()
        queue = self._forced.get(action)
        outcome = queue.popleft() if queue else "finished"
        op = Operation(
            id=self.ids.operation_id(),
            seq=self.store.next_seq(),
            project_id=project.id,
            action=action,
            created_at=now,
            updated_at=now,
            duration=self._duration(action),
            outcome=outcome,
            branch_id=branch_id,
            endpoint_id=endpoint_id,
            after=after,
            on_finish=on_finish,
            on_fail=on_fail,
        )
        project.operations.append(op)
        project.operations_by_id[op.id] = op
        self._inflight_per_project[project.id] = self._inflight_per_project.get(project.id, 0) + 1
        if after is not None and not _ended(after):
            self._waiting.setdefault(after.id, []).append(op)  # scheduled when ``after`` ends
        else:
            self._schedule(op, now)
        if effect is not None and self.runner.enabled:
            op.effect_done = False
            self.runner.submit(effect).add_done_callback(
                lambda fut: self._effect_done(
                    op, fut.exception(), None if fut.exception() else fut.result(), effect_name
                )
            )
        return op

    def run_detached(self, effect: Callable[[], Any], name: str) -> None:
        """A data-plane call without an operation (project delete): queued, failures logged."""
        if not self.runner.enabled:
            return
        self.runner.submit(effect).add_done_callback(
            lambda fut: log_failure(name, fut.exception()) if fut.exception() else None  # type: ignore[arg-type]
        )

    def _effect_done(self, op: Operation, exc: BaseException | None, result: Any, name: str) -> None:
        if exc is not None:
            log_failure(name, exc, f"operation {op.id} {op.action}")
        with self.store.lock:
            op.effect_done = True
            op.effect_done_at = self.clock.now()
            op.effect_result = result
            op.effect_error = describe_failure(exc) if exc is not None else None
            if op.scheduled_due == float("inf"):  # it was waiting for exactly this
                self._schedule(op, op.effect_done_at)

    # -- queries ---------------------------------------------------------------------------------
    def inflight_count(self, project_id: str) -> int:
        return self._inflight_per_project.get(project_id, 0)

    def forget_project(self, project_id: str) -> None:
        """A deleted project's operations never move again (their heap entries are skipped)."""
        with self.store.lock:
            self._forgotten.add(project_id)
            self._inflight_per_project.pop(project_id, None)

    def clear(self) -> None:
        with self.store.lock:
            self._heap.clear()
            self._waiting.clear()
            self._inflight_per_project.clear()
            self._next_due = float("inf")
            self._forced.clear()

    def _schedule(self, op: Operation, due: float) -> None:
        """(Re)queue ``op`` to be looked at once the clock reaches ``due`` (caller holds the lock)."""
        op.scheduled_due = due
        heapq.heappush(self._heap, (due, op.seq, op))
        if due < self._next_due:
            self._next_due = due

    # -- advancing -------------------------------------------------------------------------------
    def advance(self) -> None:
        """Apply every transition due by now; costs a comparison when nothing is due.

        A heap orders operations by when they next need a look (ties: creation order, so a
        predecessor always goes first); an operation waiting for its predecessor or for its
        data-plane call is not in the heap and is queued again when that ends.
        """
        now = self.clock.now()
        if now < self._next_due:
            return
        with self.store.lock:
            self._generation += 1
            heap, later = self._heap, []
            while heap and heap[0][0] <= now:
                due, _, op = heapq.heappop(heap)
                if due != op.scheduled_due or op.project_id in self._forgotten:
                    continue  # a stale entry (the operation was rescheduled) or a deleted project
                next_due = self._step(op, now)
                if _ended(op):
                    op.scheduled_due = None
                    self._inflight_per_project[op.project_id] = (
                        self._inflight_per_project.get(op.project_id, 1) - 1
                    )
                    for waiter in self._waiting.pop(op.id, ()):
                        self._schedule(waiter, max(waiter.created_at, op.updated_at))
                elif next_due <= now:
                    later.append(op)  # a retry waits for the next look, so "failed" can be seen
                elif next_due == float("inf"):
                    op.scheduled_due = next_due  # waiting for its data-plane call
                else:
                    self._schedule(op, next_due)
            for op in later:
                self._schedule(op, now)
            self._next_due = heap[0][0] if heap else float("inf")

    def _step(self, op: Operation, now: float) -> float:
        """Apply every transition due by ``now``; return when this operation next needs a look."""
        if op.start_at is None:
            prev = op.after
            if prev is None:
                op.start_at = op.created_at
            elif prev.status in SUCCESS:
                op.start_at = prev.finished_at or prev.updated_at
            elif prev.status in TERMINAL and not (
                prev.status == "failed" and prev.outcome == "failed_then_finished"
            ):
                self._end(
                    op,
                    "cancelled",
                    max(prev.updated_at, op.created_at),
                    f"cancelled: preceding operation {prev.action} ended {prev.status}",
                )
                return float("inf")
            else:
                return float("inf")  # re-examined when the predecessor moves (it is due no later)
            op.finish_due = op.start_at + op.duration
        assert op.finish_due is not None
        if op.status == "scheduling":
            running_at = op.start_at + op.duration / 4
            if now < running_at:
                return running_at
            self._set(op, "running", running_at)
        if op.status == "failed":  # failed, waiting for the service's retry
            assert op.retry_at is not None
            if now < op.retry_at or self._generation <= op.failed_generation:
                return max(op.retry_at, now)
            self._set(op, "running", op.retry_at)
            op.finish_due = op.retry_at + op.duration
            op.outcome = "finished"
        if op.status == "running":
            if now < op.finish_due:
                return op.finish_due
            if not op.effect_done:
                return float("inf")  # re-examined when the data-plane call returns
            # Ends when both its duration and its data-plane call are over (never in the future).
            at = min(max(op.finish_due, op.effect_done_at), now)
            if op.effect_error is not None:
                self._end(op, "error", at, op.effect_error)
            elif op.outcome == "finished":
                self._end(op, "finished", at, None)
            elif op.outcome == "failed_then_finished":
                op.failures_count += 1
                op.error = FAILURE_MESSAGES["failed"]
                op.retry_at = at + op.duration
                op.failed_generation = self._generation
                self._set(op, "failed", at)
                return op.retry_at
            else:
                op.failures_count += 1
                self._end(op, op.outcome, at, FAILURE_MESSAGES[op.outcome])
        return float("inf")

    def _set(self, op: Operation, status: str, at: float) -> None:
        op.status = status
        op.updated_at = max(at, op.updated_at)

    def _end(self, op: Operation, status: str, at: float, error: str | None) -> None:
        self._set(op, status, at)
        op.finished_at = op.updated_at
        op.error = error
        callback = op.on_finish if status in SUCCESS else op.on_fail
        if callback is not None:
            callback(op)


# -- reading -------------------------------------------------------------------------------------
def list_page(
    project: Project, *, limit: int, older_than: float | None = None, before_seq: int | None = None
) -> tuple[list[Operation], bool]:
    """Newest first: the operations created before ``older_than`` (a ``created_at``, the
    service's own cursor) or before the one numbered ``before_seq``; and whether more follow."""
    ops = project.operations  # creation order; walk it backwards
    start = len(ops)
    if older_than is not None:
        while start > 0 and ops[start - 1].created_at >= older_than:
            start -= 1
    elif before_seq is not None:
        while start > 0 and ops[start - 1].seq >= before_seq:
            start -= 1
    return ops[max(0, start - limit) : start][::-1], start - limit > 0


def operation_in(project: Project, operation_id: str) -> Operation:
    """One of the project's operations (ids compare case-insensitively); 404 otherwise."""
    op = project.operations_by_id.get(operation_id.lower())
    if op is None:
        raise not_found("operation")
    return op
