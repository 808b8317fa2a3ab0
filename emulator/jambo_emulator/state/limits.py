"""Rate limits as the service applies them: 700 requests/min per key, 40/s per key and route."""

from __future__ import annotations

import threading
import time

from jambo_emulator.state.errors import ApiError

RATE_LIMIT_MESSAGE = "rate limit exceeded: too many requests"


class RateLimiter:
    """A token bucket per key (per-minute budget) and a one-second window per key+route+method.

    Uses the monotonic wall clock, not the emulated one: limits are about real request rates.
    """

    def __init__(self, per_minute: int, per_route_per_second: int) -> None:
        self.per_minute = per_minute
        self.per_route_per_second = per_route_per_second
        self._lock = threading.Lock()
        self._buckets: dict[int, list[float]] = {}  # key id -> [tokens, last refill]
        self._windows: dict[tuple[int, str, str], list[float]] = {}  # -> [window start, count]

    def check(self, key_id: int, method: str, route: str) -> None:
        now = time.monotonic()
        with self._lock:
            window = self._windows.get((key_id, method, route))
            if window is None:
                window = self._windows[(key_id, method, route)] = [now, 0.0]
            elif now - window[0] >= 1.0:
                window[0] = now
                window[1] = 0.0
            if window[1] >= self.per_route_per_second:
                raise ApiError(429, RATE_LIMIT_MESSAGE)
            bucket = self._buckets.get(key_id)
            if bucket is None:
                bucket = self._buckets[key_id] = [float(self.per_minute), now]
            else:
                bucket[0] = min(
                    float(self.per_minute), bucket[0] + (now - bucket[1]) * self.per_minute / 60.0
                )
                bucket[1] = now
            if bucket[0] < 1.0:
                raise ApiError(429, RATE_LIMIT_MESSAGE)
            bucket[0] -= 1.0
            window[1] += 1.0

    def clear(self) -> None:
        with self._lock:
            self._buckets.clear()
            self._windows.clear()
