"""One request budget per account per process: a token bucket every hook call draws from.

The service allows 700 requests per minute per account (and bursts of 40/s per route). Every hook
in a process (sync callers in any thread, async callers in any event loop) that talks to the same
API with the same key shares one :class:`RequestBudget`, found with :func:`budget_for`, so the
provider never causes a 429 by itself however many tasks, sensors and triggers run in it.

- ``requests_per_minute`` (connection extra, default :data:`DEFAULT_REQUESTS_PER_MINUTE`) leaves
  headroom below the service's limit for the account's other clients (console, CLI, CI jobs).
- A burst is at most :data:`BURST` requests, below the service's 40/s per route.
- A 429 pauses *everyone* on the account until ``Retry-After`` (or :data:`DEFAULT_429_PAUSE`):
  the request that got it retries after its own retry wait (``retry.py``), so its :class:`Ticket`
  does not wait for the pause a second time.

Reservations, not polling: taking a token may drive the balance negative, which gives the caller
the exact delay until its turn; callers are served in the order they asked (fair between pollers
of different projects). The lock is held for arithmetic only, so async callers never block the loop
(they ``await asyncio.sleep`` their delay; sync callers ``time.sleep`` it).

The registry key is ``(base URL, SHA-256 of the key)``: the key itself is never stored or logged here.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from airflow_provider_jambo.exceptions import JamboConfigError
from airflow_provider_jambo.limits import DEFAULT_REQUESTS_PER_MINUTE, SERVICE_REQUESTS_PER_MINUTE

__all__ = [
    "BURST",
    "DEFAULT_429_PAUSE",
    "DEFAULT_REQUESTS_PER_MINUTE",
    "SERVICE_REQUESTS_PER_MINUTE",
    "RequestBudget",
    "Ticket",
    "account_key",
    "budget_for",
    "check_requests_per_minute",
    "reset_budgets",
]

#: How many requests may be sent at once (below the service's 40/s per route).
BURST = 30.0
#: Pause after a 429 that carries no Retry-After.
DEFAULT_429_PAUSE = 2.0


def check_requests_per_minute(value: Any, *, conn_id: str = "") -> float:
    """The ``requests_per_minute`` extra as a number in (0, 700]."""
    where = f"connection {conn_id!r}: " if conn_id else ""
    try:
        rate = float(value)
    except (TypeError, ValueError):
        rate = -1.0
    if isinstance(value, bool) or not 0 < rate <= SERVICE_REQUESTS_PER_MINUTE:
        raise JamboConfigError(
            f"{where}extra requests_per_minute must be a number in (0, {SERVICE_REQUESTS_PER_MINUTE}] "
            f"(the service allows {SERVICE_REQUESTS_PER_MINUTE} per account), got {value!r}"
        )
    return rate


class RequestBudget:
    """A thread-safe token bucket with a shared pause; see the module docstring."""

    def __init__(
        self,
        requests_per_minute: float = DEFAULT_REQUESTS_PER_MINUTE,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._lock = threading.Lock()
        self._clock = clock
        self._rate = 0.0
        self._burst = 0.0
        self.set_rate(requests_per_minute)
        self._tokens = self._burst
        self._last = clock()
        self._paused_until = 0.0
        #: Counters for benchmarks and tests (read without the lock; approximate is fine).
        self.granted = 0
        self.delayed = 0
        self.pauses = 0

    @property
    def requests_per_minute(self) -> float:
        return self._rate * 60.0

    @property
    def paused_until(self) -> float:
        return self._paused_until

    def set_rate(self, requests_per_minute: float) -> None:
        rate = check_requests_per_minute(requests_per_minute)
        with self._lock:
            self._rate = rate / 60.0
            self._burst = min(BURST, rate)

    def reserve(self, *, ignore_pause_until: float = 0.0) -> float:
        """Take one token; return how many seconds to wait before sending (0 = now)."""
        with self._lock:
            now = self._clock()
            self._tokens = min(self._burst, self._tokens + (now - self._last) * self._rate)
            self._last = now
            self._tokens -= 1.0
            delay = 0.0 if self._tokens >= 0 else -self._tokens / self._rate
            if self._paused_until > ignore_pause_until:
                delay = max(delay, self._paused_until - now)
            self.granted += 1
            if delay > 0:
                self.delayed += 1
            return delay

    def remaining_pause(self, *, ignore_pause_until: float = 0.0) -> float:
        with self._lock:
            if self._paused_until <= ignore_pause_until:
                return 0.0
            return max(0.0, self._paused_until - self._clock())

    def pause(self, seconds: float | None) -> float:
        """Pause every caller for ``seconds`` (a 429's Retry-After); returns the pause's end."""
        wait = DEFAULT_429_PAUSE if seconds is None else max(0.0, seconds)
        with self._lock:
            until = self._clock() + wait
            if until > self._paused_until:
                self._paused_until = until
            self.pauses += 1
            return self._paused_until

    def ticket(self) -> Ticket:
        return Ticket(self)


@dataclass
class Ticket:
    """One logical request (with its retries) drawing from a budget.

    After this request's own 429 its retry waits (``retry.py``) cover the pause it started, so
    that pause is not waited for again; a pause started or extended by anyone else is.
    """

    budget: RequestBudget
    own_pause_until: float = 0.0

    def acquire(self, sleep: Callable[[float], None] = time.sleep) -> None:
        seen = self.budget.paused_until
        delay = self.budget.reserve(ignore_pause_until=self.own_pause_until)
        while delay > 0:
            sleep(delay)
            seen, delay = self._pause_extended(seen)

    async def aacquire(self, sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep) -> None:
        seen = self.budget.paused_until
        delay = self.budget.reserve(ignore_pause_until=self.own_pause_until)
        while delay > 0:
            await sleep(delay)
            seen, delay = self._pause_extended(seen)

    def _pause_extended(self, seen: float) -> tuple[float, float]:
        """After a sleep: wait more only if someone else's 429 moved the pause meanwhile."""
        now_until = self.budget.paused_until
        if now_until <= seen:
            return seen, 0.0
        return now_until, self.budget.remaining_pause(ignore_pause_until=self.own_pause_until)

    def rate_limited(self, retry_after: float | None) -> None:
        """This request got a 429: pause everyone else on the account."""
        self.own_pause_until = self.budget.pause(retry_after)


_registry: dict[tuple[str, str], RequestBudget] = {}
_registry_lock = threading.Lock()


def account_key(base_url: str, api_key: str) -> tuple[str, str]:
    """``(base URL, SHA-256 of the key)``: identifies an account without holding its key."""
    return base_url.rstrip("/"), hashlib.sha256(api_key.encode()).hexdigest()[:32]


def budget_for(
    base_url: str, api_key: str, requests_per_minute: float = DEFAULT_REQUESTS_PER_MINUTE
) -> RequestBudget:
    """The process's budget for this account. Connections configuring different rates for the same
    account share one budget at the lowest of them (the budget is the account's, not a connection's)."""
    key = account_key(base_url, api_key)
    with _registry_lock:
        budget = _registry.get(key)
        if budget is None:
            budget = _registry[key] = RequestBudget(requests_per_minute)
        elif requests_per_minute < budget.requests_per_minute:
            budget.set_rate(requests_per_minute)
        return budget


def reset_budgets() -> None:
    """Forget every budget (tests)."""
    with _registry_lock:
        _registry.clear()
