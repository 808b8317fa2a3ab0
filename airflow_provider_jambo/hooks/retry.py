"""Retries: one policy of plain values, one decision function, one tenacity setup for sync and async.

What is retried (``retry_reason``):

* 423 (locked by a conflicting operation), 503 and 429: always; the service did not apply the
  request. 429 waits for ``Retry-After`` when the service sends it. 423s are bounded by time
  (``locked_max_elapsed``), not by the attempt count: a busy project is a queue to wait in, and
  many runs mutating one project would exhaust any fixed number of attempts. For how long (and
  whether a change's 423 is raised at once for a caller that waits for the project itself, as the
  operators do) is ``project_lock.py``'s decision.
* 422 ``... not ready yet``: always (the target is still initialising; nothing was applied).
* Connect failures: always (the request never left this machine).
* 500/502/504/524 and read errors/timeouts/dropped responses: only when the request is safe to
  re-send (GET/DELETE). A POST or PATCH with an unknown outcome is never re-sent here; callers
  that can reconcile (branch create) re-read and decide themselves.

Attempts and total time are bounded, and every retry is logged with its reason and wait.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any, TypeVar

from tenacity import AsyncRetrying, RetryCallState, Retrying

from airflow_provider_jambo.exceptions import (
    JamboAPIError,
    JamboConfigError,
    JamboTLSError,
    JamboTransportError,
)
from airflow_provider_jambo.hooks.client import ApiRequest
from airflow_provider_jambo.hooks.project_lock import LOCKED, OnLocked, is_locked, locked_retry_seconds
from airflow_provider_jambo.rules import check_whole_number, seconds

T = TypeVar("T")

log = logging.getLogger(__name__)

ALWAYS_RETRY_STATUSES = frozenset({LOCKED, 429, 503})
#: Server errors retried only for requests that are safe to re-send.
RESEND_SAFE_STATUSES = frozenset({500, 502, 504, 524})


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to retry; plain numbers so a trigger can carry it (``to_dict``/``from_dict``).

    ``max_attempts`` counts the first try. ``max_elapsed`` bounds the total time including waits:
    a retry whose wait would cross it is not made. Waits grow ``initial_wait * multiplier**n``
    up to ``max_wait``, with "equal jitter" (half fixed, half random) so parallel tasks spread out.
    ``locked_max_elapsed`` bounds how long 423s are retried (None: ``max_elapsed``; 0: raised at
    once, for callers that wait for the project themselves); 423 attempts do not count against
    ``max_attempts``.
    """

    max_attempts: int = 9
    max_elapsed: float = 300.0
    initial_wait: float = 0.5
    max_wait: float = 30.0
    multiplier: float = 2.0
    locked_max_elapsed: float | None = None

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise JamboConfigError(f"max_attempts must be >= 1, got {self.max_attempts}")
        for name in ("max_elapsed", "initial_wait", "max_wait", "locked_max_elapsed"):
            if (getattr(self, name) or 0) < 0:
                raise JamboConfigError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.multiplier < 1:
            raise JamboConfigError(f"multiplier must be >= 1, got {self.multiplier}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RetryPolicy:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise JamboConfigError(f"unknown retry settings {sorted(unknown)}; allowed: {sorted(known)}")
        return cls(**dict(data))

    @classmethod
    def from_connection_extras(cls, extras: Mapping[str, Any], conn_id: str = "") -> RetryPolicy:
        """``max_retries`` (retries after the first try) and ``retry_max_wait`` (total seconds),
        checked under those names (not the policy's internal ones)."""
        kwargs: dict[str, Any] = {}
        where = f"connection {conn_id!r}: " if conn_id else ""
        try:
            if extras.get("max_retries") not in (None, ""):
                kwargs["max_attempts"] = check_whole_number("extra max_retries", extras["max_retries"]) + 1
            if extras.get("retry_max_wait") not in (None, ""):
                kwargs["max_elapsed"] = seconds(
                    "extra retry_max_wait", extras["retry_max_wait"], allow_zero=True, allow_text=True
                )
        except JamboConfigError as err:
            raise JamboConfigError(f"{where}{err}") from None
        return cls(**kwargs)

    @property
    def locked_budget(self) -> float:
        """Seconds 423s are retried for."""
        return self.max_elapsed if self.locked_max_elapsed is None else self.locked_max_elapsed

    def backoff(self, retry_number: int, rng: Callable[[], float] = random.random) -> float:
        """Exponential wait with equal jitter for the ``retry_number``-th retry (1-based)."""
        ceiling = min(self.max_wait, self.initial_wait * self.multiplier ** max(0, retry_number - 1))
        return ceiling / 2 + rng() * ceiling / 2


def outcome_unknown(exc: BaseException) -> bool:
    """Whether a failed non-idempotent request may have been applied all the same (sent, then no
    answer, or a server error after it); callers reconcile by re-reading before any re-send."""
    if isinstance(exc, JamboTransportError):
        return exc.sent
    return isinstance(exc, JamboAPIError) and exc.status in RESEND_SAFE_STATUSES


def retry_reason(req: ApiRequest[Any], exc: BaseException) -> str | None:
    """Why ``exc`` may be retried for ``req``; ``None`` when it must not be."""
    if isinstance(exc, JamboAPIError):
        status = exc.status
        if status in ALWAYS_RETRY_STATUSES:
            return f"{status} {exc.message}"
        if status == 422 and "not ready" in exc.message.lower():
            return f"422 {exc.message}"
        if status in RESEND_SAFE_STATUSES and req.safe_to_resend:
            return f"{status} {exc.message}"
        return None
    if isinstance(exc, JamboTLSError):
        return None  # a TLS mismatch (e.g. https to a plain-http server) does not heal by retrying
    if isinstance(exc, JamboTransportError) and (not exc.sent or req.safe_to_resend):
        return exc.reason
    return None


def wait_seconds(policy: RetryPolicy, exc: BaseException | None, retry_number: int) -> float:
    """The wait before the next attempt: the service's ``Retry-After`` if given, else backoff."""
    hinted = exc.retry_after if isinstance(exc, JamboAPIError) else None
    if hinted is not None:
        # The service's wish wins over our cap, but never wait less than it asked.
        return hinted
    return policy.backoff(retry_number)


def _is_locked(state: RetryCallState) -> bool:
    outcome = state.outcome
    if outcome is None or not outcome.failed:
        return False
    return is_locked(outcome.exception())


class _Rules:
    """The tenacity callbacks for one request under one policy (shared by sync and async)."""

    def __init__(self, policy: RetryPolicy, req: ApiRequest[Any], logger: Any, on_locked: OnLocked) -> None:
        self.policy = policy
        self.req = req
        self.log = logger
        #: Seconds 423s of this request are re-sent for (``project_lock.py`` decides).
        self.locked_budget = locked_retry_seconds(req, on_locked, policy.locked_budget)

    def retry(self, state: RetryCallState) -> bool:
        outcome = state.outcome
        if outcome is None or not outcome.failed:
            return False
        return retry_reason(self.req, outcome.exception()) is not None  # type: ignore[arg-type]

    def wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        return wait_seconds(self.policy, exc, state.attempt_number)

    def stop(self, state: RetryCallState) -> bool:
        # With an injected (fake) sleep the wall clock does not move, so count the waits too.
        elapsed = max(state.seconds_since_start or 0.0, state.idle_for)
        upcoming = state.upcoming_sleep or 0.0
        if _is_locked(state):
            # Time-bounded only: waiting in a busy project's queue is not a failing request.
            return elapsed + upcoming > self.locked_budget
        if state.attempt_number >= self.policy.max_attempts:
            return True
        return elapsed + upcoming > self.policy.max_elapsed

    def before_sleep(self, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        reason = retry_reason(self.req, exc) if exc else "unknown"
        request_id = getattr(exc, "request_id", None)
        bound = (
            f"a locked project is waited for up to {self.locked_budget:g} s"
            if _is_locked(state)
            else f"at most {self.policy.max_attempts} attempts"
        )
        self.log.warning(
            "Retrying %s in %.2f s (attempt %d failed: %s%s; %s)",
            self.req.describe(),
            state.upcoming_sleep,
            state.attempt_number,
            reason,
            f"; request id {request_id}" if request_id else "",
            bound,
        )

    def kwargs(self) -> dict[str, Any]:
        return {
            "retry": self.retry,
            "wait": self.wait,
            "stop": self.stop,
            "before_sleep": self.before_sleep,
            "reraise": True,
        }


def call_with_retries(
    policy: RetryPolicy,
    req: ApiRequest[Any],
    attempt: Callable[[], T],
    *,
    sleep: Callable[[float], None] = time.sleep,
    logger: Any = log,
    on_locked: OnLocked = OnLocked.RETRY,
) -> T:
    """Run ``attempt`` until it succeeds or the policy says stop (then its last error is raised)."""
    return Retrying(sleep=sleep, **_Rules(policy, req, logger, on_locked).kwargs())(attempt)


async def acall_with_retries(
    policy: RetryPolicy,
    req: ApiRequest[Any],
    attempt: Callable[[], Awaitable[T]],
    *,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    logger: Any = log,
    on_locked: OnLocked = OnLocked.RETRY,
) -> T:
    """The async counterpart of :func:`call_with_retries`, with the very same rules."""

    async def once() -> T:
        # tenacity awaits only coroutine *functions*; `attempt` may be a lambda returning one.
        return await attempt()

    return await AsyncRetrying(sleep=sleep, **_Rules(policy, req, logger, on_locked).kwargs())(once)
