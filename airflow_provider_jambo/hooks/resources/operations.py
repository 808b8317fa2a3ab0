"""``hook.operations``: read a project's operations and wait for them.

The waiting rules are ``hooks/waiting.py``'s: :meth:`OperationsApi.wait` drives them in the calling
thread, :meth:`OperationsApi.wait_async` registers with the loop's shared poller
(``hooks/poller.py``). Both take ids or the ``Operation`` objects a call returned (their actions
tell when to look first).
"""

from __future__ import annotations

import builtins
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta

from airflow_provider_jambo.api_models import Operation, parse_operations
from airflow_provider_jambo.exceptions import JamboNotFoundError
from airflow_provider_jambo.hooks.poller import shared_poller
from airflow_provider_jambo.hooks.resources.resource_group import ResourceGroup, one
from airflow_provider_jambo.hooks.waiting import (
    PollPolicy,
    WaitResult,
    list_operations_request,
    read_steps,
    resolve_deadline,
    run_sync,
    wait_steps,
)
from airflow_provider_jambo.rules import check_id, check_poll_interval, check_timeout

OPERATION_PAGE_LIMIT = 100
#: How far back to look for operations still in flight (the list is newest first; older ones are done).
IN_FLIGHT_LOOKBACK = timedelta(days=1)


def _known_and_ids(
    operations: Sequence[str | Operation],
) -> tuple[builtins.list[Operation], builtins.list[str]]:
    """A wait's operations as given (ids, or the ``Operation`` objects a call returned): those
    known, and every id."""
    known = [op for op in operations if isinstance(op, Operation)]
    return known, [op.id if isinstance(op, Operation) else op for op in operations]


class OperationsApi(ResourceGroup):
    """Operations of a project; ``project_id`` defaults to the connection's."""

    def get(self, operation_id: str, *, project_id: str | None = None) -> Operation:
        return self._call(
            "GET",
            "/operations/{operation_id}",
            project_id,
            {"operation_id": operation_id},
            parse=one("operation", Operation.from_api),
        )

    def get_many(
        self, operation_ids: Sequence[str], *, project_id: str | None = None
    ) -> builtins.list[Operation]:
        """The current state of several operations of one project, in the order given, read the
        way waiting polls them: one list call serves two or more, those not on its page are read
        by id (``waiting.read_steps``, one round of a wait)."""
        pid = self._hook.resolve_project_id(project_id)
        ids = builtins.list(dict.fromkeys(check_id("operation_id", op_id) for op_id in operation_ids))
        found = run_sync(read_steps(pid, ids), self._hook.request)
        missing = [op_id for op_id in ids if op_id not in found]
        if missing:
            raise JamboNotFoundError(
                404, f"operations {missing} not found", method="GET", path=f"/projects/{pid}/operations"
            )
        return [found[op_id] for op_id in ids]

    def pending_of_branch(self, branch_id: str, *, project_id: str | None = None) -> builtins.list[Operation]:
        """The branch's pending operations on the newest page (``Operation.is_pending``)."""
        pid = self._hook.resolve_project_id(project_id)
        ops = parse_operations(self._hook.request(list_operations_request(pid, limit=OPERATION_PAGE_LIMIT)))
        return [op for op in ops if op.branch_id == branch_id and op.is_pending]

    def in_flight(
        self,
        project_id: str | None = None,
        *,
        branch_id: str | None = None,
        endpoint_id: str | None = None,
        since: datetime | None = None,
    ) -> builtins.list[Operation]:
        """Operations of a project (optionally of one branch or compute) still pending.

        Pending is :attr:`Operation.is_pending` (``failed`` with a ``retry_at`` included).

        The list is read newest first and stops at the first operation older than ``since`` (default:
        one day ago), so a project with a long history costs a page or two, not all of them.
        Returned oldest first (the order they were started).
        """
        since = since or datetime.now(UTC) - IN_FLIGHT_LOOKBACK
        found: builtins.list[Operation] = []
        for op in self.list(project_id):
            if op.created_at is not None and op.created_at < since:
                break
            if branch_id is not None and op.branch_id != branch_id:
                continue
            if endpoint_id is not None and op.endpoint_id != endpoint_id:
                continue
            if op.is_pending:
                found.append(op)
        found.reverse()
        return found

    def _wait_terms(
        self, timeout: float | None, deadline: datetime | float | None, poll_interval: float | None
    ) -> tuple[float | None, PollPolicy]:
        """A wait's absolute deadline and polling pace, from the caller's (checked) values."""
        if timeout is not None:
            check_timeout("timeout", timeout)
        if poll_interval is None:
            poll = PollPolicy()
        else:
            interval = check_poll_interval("poll_interval", poll_interval)
            # The caller's interval is the cap; polling still starts short so quick operations return fast.
            poll = PollPolicy(initial_interval=min(0.5, interval), max_interval=interval)
        return resolve_deadline(timeout, deadline, self._hook.clock()), poll

    def wait(
        self,
        operation_ids: Sequence[str | Operation],
        *,
        project_id: str | None = None,
        timeout: float | None = None,
        deadline: datetime | float | None = None,
        poll_interval: float | None = None,
        until: float | None = None,
    ) -> WaitResult:
        """Poll until every operation succeeded, one failed, or the timeout/deadline passed.

        ``deadline`` is absolute (aware datetime or epoch seconds); ``timeout`` is relative. The
        result is returned, not raised: call ``.raise_for_status()`` to fail on it. The rules are
        the shared poller's (``hooks/waiting.py``), driven here in the calling thread.
        ``operation_ids`` may hold the :class:`Operation` objects a call returned: what they say
        (their actions) lets the first look wait until they are expected to be done.
        ``until`` (epoch seconds) gives up early, without a look of its own, once the next look
        would come after it (``wait_steps``): a deferrable task's inline grace.
        """
        resolved, poll = self._wait_terms(timeout, deadline, poll_interval)
        known, ids = _known_and_ids(operation_ids)
        hook = self._hook
        steps = wait_steps(
            hook.resolve_project_id(project_id),
            ids,
            deadline=resolved,
            clock=hook.clock,
            poll=poll,
            known=known,
            until=until,
            round_trip=hook.round_trip,
        )
        return run_sync(steps, hook.request, hook.sleep)

    async def wait_async(
        self,
        operation_ids: Sequence[str | Operation],
        *,
        project_id: str | None = None,
        timeout: float | None = None,
        deadline: datetime | float | None = None,
        poll_interval: float | None = None,
    ) -> WaitResult:
        """:meth:`wait` without blocking the loop: the wait registers with the process's shared
        poller of this connection and project (``hooks/poller.py``), which polls once per tick for
        every waiter. As there, ``Operation`` objects tell when to look first."""
        pid = await self._hook.aresolve_project_id(project_id)
        resolved, poll = self._wait_terms(timeout, deadline, poll_interval)
        known, ids = _known_and_ids(operation_ids)
        if not ids:
            return WaitResult("success", [], "no operations to wait for")
        poller = shared_poller((self._hook.jambo_conn_id, pid), self._hook.sibling, poll)
        return await poller.wait(ids, deadline=resolved, cap=poll.max_interval, known=known)

    # Last: a method named ``list`` would shadow the builtin in the annotations below it.
    def list(self, project_id: str | None = None) -> Iterator[Operation]:
        """The project's operations, newest first, across all pages (stop iterating when done)."""
        path_params = {"project_id": self._hook.resolve_project_id(project_id)}
        return self._pages(
            "/projects/{project_id}/operations",
            path_params,
            "operations",
            OPERATION_PAGE_LIMIT,
            Operation.from_api,
        )
