"""Runs data-plane calls on one worker thread, in submission order, never under the store lock.

FIFO order matters: a branch's copy must happen before its compute starts, a preserved copy before
the reset that overwrites it. Callers either attach the call to an operation (the operation then
finishes only once the call has returned) or wait for its future.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

from jambo_emulator.dataplane.base import DataPlane, NullDataPlane

log = logging.getLogger(__name__)
T = TypeVar("T")


class DataPlaneRunner:
    def __init__(self, data_plane: DataPlane) -> None:
        self.data_plane = data_plane
        self._executor: ThreadPoolExecutor | None = None

    @property
    def enabled(self) -> bool:
        """Whether calls are worth making: anything but the null plane itself (its calls are no-ops)."""
        return type(self.data_plane) is not NullDataPlane

    def start(self) -> None:
        """Start the data plane on the worker now (later calls queue behind it)."""
        if self.enabled and self._executor is None:
            self.submit(lambda: None)

    def submit(self, fn: Callable[[], T]) -> Future[T]:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="jambo-dataplane")
            # The data plane starts before anything else runs on it (FIFO).
            self._executor.submit(self._start)
        return self._executor.submit(fn)

    def _start(self) -> None:
        try:
            self.data_plane.start()
        except Exception as exc:  # noqa: BLE001 - reported; the calls that follow then fail visibly
            log_failure("start", exc)

    def call(self, fn: Callable[[], T], timeout: float | None = 120.0) -> T:
        """Run ``fn`` on the worker (after everything queued before it) and wait for it."""
        return self.submit(fn).result(timeout=timeout)

    def shutdown(self) -> None:
        """Stop the data plane (after queued calls) and the worker."""
        executor, self._executor = self._executor, None
        if executor is None:
            return
        stopped = executor.submit(self.data_plane.stop)
        executor.shutdown(wait=True)
        if stopped.exception() is not None:
            log_failure("stop", stopped.exception())  # type: ignore[arg-type]


#: Passwords as generated here, and SQL that sets one: never echoed in errors or logs.
_SECRETS = re.compile(r"npg_[A-Za-z0-9]+|(PASSWORD\s+)'(?:[^']|'')*'", re.IGNORECASE)


def redact(text: str) -> str:
    return _SECRETS.sub(lambda m: f"{m.group(1)}'***'" if m.group(1) else "npg_***", text)


def describe_failure(exc: BaseException) -> str:
    """An operation's ``error`` text for a failed data-plane call (details go to the log)."""
    return redact(f"data plane: {type(exc).__name__}: {exc}")


def log_failure(what: str, exc: BaseException, extra: Any = None) -> None:
    """The redacted message at ERROR; the traceback (whose text may hold a secret) only at DEBUG."""
    log.error("data-plane call %s failed (%s): %s", what, extra or "", describe_failure(exc))
    log.debug("data-plane call %s traceback", what, exc_info=exc)
