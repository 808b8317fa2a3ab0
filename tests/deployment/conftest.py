"""The deployment suite's stacks: one real Airflow deployment per executor, shared by its module's cases.

``scripts/airflow_stack.py`` is the harness (the same one users run with ``scripts/airflow-stack``).
Each test module asks for one stack (``local_stack`` or ``celery_stack``, module-scoped). Before every
case the emulator is reset (the stack's project back to a freshly seeded ``main``, default durations,
no forced outcomes) and every case ends by checking that nothing but ``main`` is left.

A stack takes 25-50 s to boot on 2 cores (mostly the Airflow processes' imports), so the
LocalExecutor stack boots in the background while the Celery module's cases run: at most two
stacks are up at once, and the cases that race the scheduler (the LocalExecutor ones) never run
while a stack boots.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

from airflow_stack import AirflowStack, StackError, StackOptions  # noqa: E402
from stack_support import TIMINGS  # noqa: E402

from airflow_provider_jambo.emulator.dataplane.server import unavailable_reason  # noqa: E402

#: Seconds a stack's processes get to exit on SIGTERM before SIGKILL (a throw-away deployment).
STOP_GRACE = 3.0


class StackPool:
    """The session's stacks: started on first use, or ahead of it in a background thread."""

    def __init__(self, wanted: set[str]) -> None:
        self.wanted = wanted
        self._booting: dict[str, tuple[AirflowStack, threading.Thread, list[BaseException]]] = {}

    def boot(self, executor: str) -> None:
        """Start ``executor``'s stack in the background, if the session's cases want it."""
        if executor not in self.wanted or executor in self._booting:
            return
        stack = AirflowStack(StackOptions(executor=executor, operation_duration=3.0))
        errors: list[BaseException] = []

        def start() -> None:
            try:
                stack.start()  # stops what it started when it fails
            except BaseException as exc:  # noqa: BLE001 - handed to the thread that takes the stack
                errors.append(exc)

        thread = threading.Thread(target=start, name=f"{executor}-stack-start", daemon=True)
        thread.start()
        self._booting[executor] = (stack, thread, errors)

    def take(self, executor: str) -> AirflowStack:
        """The started stack (raises what its start raised); the caller stops it."""
        if executor not in self._booting:
            stack = AirflowStack(StackOptions(executor=executor, operation_duration=3.0))
            stack.start()
            return stack
        stack, thread, errors = self._booting.pop(executor)
        thread.join()
        if errors:
            raise errors[0]
        return stack

    def close(self) -> None:
        """Stacks booted ahead but never taken (their cases were skipped or the session ended)."""
        for stack, thread, errors in self._booting.values():
            thread.join()
            if not errors:
                stack.stop(grace=STOP_GRACE)
        self._booting.clear()


@pytest.fixture(scope="session")
def stack_pool(request: pytest.FixtureRequest) -> Iterator[StackPool]:
    reason = unavailable_reason()
    if reason:
        pytest.skip(f"the deployment stack needs PostgreSQL: {reason}")
    wanted = {
        executor
        for item in request.session.items
        for executor in ("local", "celery")
        if f"{executor}_stack" in getattr(item, "fixturenames", ())
    }
    pool = StackPool(wanted)
    try:
        yield pool
    finally:
        pool.close()


def _stack(pool: StackPool, executor: str, boot_next: str | None = None) -> Iterator[AirflowStack]:
    try:
        stack = pool.take(executor)
    except StackError as err:
        if executor == "celery" and "redis-server is not installed" in str(err) and os.geteuid() != 0:
            pytest.skip(str(err))
        raise
    if boot_next is not None:
        pool.boot(boot_next)
    try:
        yield stack
    finally:
        stack.stop(grace=STOP_GRACE)


@pytest.fixture(scope="module")
def local_stack(stack_pool: StackPool) -> Iterator[AirflowStack]:
    """LocalExecutor: api-server, scheduler, dag-processor, triggerer, the emulator (3 s operations)."""
    yield from _stack(stack_pool, "local")


@pytest.fixture(scope="module")
def celery_stack(stack_pool: StackPool) -> Iterator[AirflowStack]:
    """CeleryExecutor with a Redis broker and two workers (``worker1.stack``, ``worker2.stack``);
    once it is up, the LocalExecutor stack boots behind its cases."""
    yield from _stack(stack_pool, "celery", boot_next="local")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if TIMINGS:
        terminalreporter.section("deployment: wall time per DAG run (trigger -> final state)")
        for line in TIMINGS:
            terminalreporter.write_line(line)
