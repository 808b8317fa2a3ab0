"""A bounded log of the API requests served (for tests and benchmarks)."""

from __future__ import annotations

import threading
from collections import deque
from typing import Any


class RequestLog:
    def __init__(self, size: int) -> None:
        self._entries: deque[dict[str, Any]] = deque(maxlen=size)
        self._lock = threading.Lock()

    def add(self, entry: dict[str, Any]) -> None:
        self._entries.append(entry)  # deque.append is atomic; no lock on the hot path

    def entries(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(e) for e in list(self._entries)]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
