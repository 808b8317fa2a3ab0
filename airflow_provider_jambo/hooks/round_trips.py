"""How long the API takes to answer, per base URL: measured on every answer, used to time looks.

A look at an operation is a read: sent at ``s``, it sees the operation's state about half-way
through the round trip and is answered at ``s + round trip``. Looks that aim to see an end within
the tolerance (``hooks/waiting.py``, :func:`~airflow_provider_jambo.hooks.waiting.next_look`) are
therefore sent half a round trip early and aim a tolerance less that half: against a 100-ms API,
looks timed as if answers were instant saw 7 points fewer waits in time
(``benchmarks/lifecycle_simulation.py --round-trip 0.1``).

The typical round trip is the median of the last answers' ``response.elapsed`` (httpx: from
sending the request to the end of its answer), so the account's budget waits and the retries'
backoff are not in it, and one slow answer does not move it.
"""

from __future__ import annotations

import statistics
import threading
from collections import deque

#: Answers the typical round trip is the median of.
RECENT_ANSWERS = 15


class RoundTrips:
    """The recent round trips to one API (thread-safe: a deque's appends are atomic)."""

    def __init__(self, keep: int = RECENT_ANSWERS) -> None:
        self._recent: deque[float] = deque(maxlen=keep)

    def record(self, seconds: float) -> None:
        if seconds >= 0:
            self._recent.append(seconds)

    def typical(self) -> float:
        """The median of the recent round trips, seconds; 0 before any answer."""
        recent = list(self._recent)
        return statistics.median(recent) if recent else 0.0


_registry: dict[str, RoundTrips] = {}
_registry_lock = threading.Lock()


def round_trips_for(base_url: str) -> RoundTrips:
    """The process's record of the API at ``base_url`` (shared by every hook and client on it)."""
    key = base_url.rstrip("/")
    with _registry_lock:
        found = _registry.get(key)
        if found is None:
            found = _registry[key] = RoundTrips()
        return found


def reset_round_trips() -> None:
    """Forget every record (tests)."""
    with _registry_lock:
        _registry.clear()
