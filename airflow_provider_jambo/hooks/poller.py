"""One waiting service per process: every async wait on a (connection, project) shares one poll.

In a triggerer, hundreds of :class:`~airflow_provider_jambo.triggers.operation_trigger.JamboOperationTrigger`
instances wait at once. Each registers its operations with the :class:`ProjectPoller` of its
(connection, project) in the running event loop; the poller runs one round of requests per tick
for all of them (the rules of ``hooks/waiting.py``: one list call, reads by id in bounded batches,
duration-aware timing) and wakes each waiter whose operations are settled.

- Created lazily inside the running loop by the first waiter, gone when its last waiter leaves.
- A cancelled waiter (a trigger the triggerer cancels) just leaves; the others keep waiting.
- A re-created trigger (triggerer restart) registers again, with the same absolute deadline.
- An error the poll cannot get past (bad key, retries exhausted) is handed to every waiter of that
  poller, as each would have met it alone; a 404 on one operation only to the waiters of it.

The poller owns its own hook (a sibling of the first waiter's: same connection, retry policy and
seams), so a waiter closing its hook never disturbs the poll. Requests draw from the account's
budget (``hooks/budget.py``) like every other call.
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

from airflow_provider_jambo.api_models import Operation
from airflow_provider_jambo.exceptions import JamboError
from airflow_provider_jambo.hooks.client import ApiRequest
from airflow_provider_jambo.hooks.waiting import (
    Deliver,
    Fetch,
    PollPolicy,
    Sleep,
    WaitResult,
    Watch,
    fetch_async,
    watch_steps,
)


class PollingHook(Protocol):
    """What a poller needs of a hook (``JamboHook`` is one)."""

    clock: Callable[[], float]
    asleep: Callable[[float], Awaitable[Any]]

    async def arequest(self, req: ApiRequest[Any]) -> Any: ...

    def round_trip(self) -> float: ...

    async def aclose(self) -> None: ...


PollerKey = tuple[str, str]  # (connection id, project id)


class ProjectPoller:
    """The shared poll of one (connection, project) in one event loop."""

    def __init__(self, key: PollerKey, hook: PollingHook, poll: PollPolicy) -> None:
        self.key = key
        self.hook = hook
        self.watch = Watch(key[1], poll, round_trip=hook.round_trip)
        self.closed = False
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def waiting(self) -> int:
        return len(self.watch.waiters)

    async def wait(
        self,
        operation_ids: Sequence[str],
        *,
        deadline: float | None,
        cap: float,
        known: Sequence[Operation] = (),
    ) -> WaitResult:
        """Register, wait for the outcome, leave (also when cancelled). ``known``: as :meth:`Watch.add`."""
        waiter = self.watch.add(operation_ids, deadline=deadline, now=self.hook.clock(), cap=cap, known=known)
        future: asyncio.Future[WaitResult | JamboError] = asyncio.get_running_loop().create_future()
        waiter.handle = future
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name=f"jambo-poller-{self.key[1]}"
            )
        self._wake.set()
        try:
            outcome = await future
        finally:
            self.watch.remove(waiter)
            self._wake.set()  # the poll may be due later now, or have nobody left
        if isinstance(outcome, JamboError):
            raise outcome
        return outcome

    async def _sleep(self, seconds: float) -> None:
        if self.hook.asleep is not asyncio.sleep:
            await self.hook.asleep(seconds)  # a test's or caller's own pacing
            return
        # Interrupted when a waiter joins (it may be due sooner) or leaves.
        self._wake.clear()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)

    async def _run(self) -> None:
        failure: BaseException | None = None
        steps = watch_steps(self.watch, self.hook.clock)
        try:
            reply: Any = None
            while True:
                step = steps.send(reply)
                reply = None
                if isinstance(step, Fetch):
                    reply = await fetch_async(self.hook.arequest, step.request)
                elif isinstance(step, Sleep):
                    await self._sleep(step.seconds)
                elif isinstance(step, Deliver):
                    future = step.waiter.handle
                    if future is not None and not future.done():
                        future.set_result(step.outcome)
        except StopIteration:
            pass
        except JamboError as err:
            failure = err  # handed to every waiter below
        except BaseException as err:  # a bug or a cancelled loop: no waiter may hang on it
            failure = err
            raise
        finally:
            self._close(failure)
            await self.hook.aclose()

    def _close(self, failure: BaseException | None) -> None:
        self.closed = True
        loop_pollers = _pollers.get(asyncio.get_running_loop(), {})
        if loop_pollers.get(self.key) is self:
            del loop_pollers[self.key]
        for waiter in list(self.watch.waiters):
            future = waiter.handle
            if future is None or future.done():
                continue
            if isinstance(failure, asyncio.CancelledError):
                future.cancel()
            elif isinstance(failure, JamboError):
                future.set_result(failure)
            else:
                future.set_exception(failure or RuntimeError(f"the poller of project {self.key[1]} stopped"))


_pollers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[PollerKey, ProjectPoller]] = (
    weakref.WeakKeyDictionary()
)


def shared_poller(key: PollerKey, make_hook: Callable[[], PollingHook], poll: PollPolicy) -> ProjectPoller:
    """The running loop's poller for ``key``, created (with a hook from ``make_hook``) if needed."""
    loop_pollers = _pollers.setdefault(asyncio.get_running_loop(), {})
    poller = loop_pollers.get(key)
    if poller is None or poller.closed:
        poller = loop_pollers[key] = ProjectPoller(key, make_hook(), poll)
    return poller


def active_pollers() -> list[ProjectPoller]:
    """The running loop's pollers (tests and benchmarks)."""
    return list(_pollers.get(asyncio.get_running_loop(), {}).values())
