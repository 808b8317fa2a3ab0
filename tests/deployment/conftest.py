"""The deployment suite's stacks: one real Airflow deployment per executor, shared by its module's cases.

``scripts/airflow_stack.py`` is the harness (the same one users run with ``scripts/airflow-stack``).
Each test module asks for one stack (``local_stack`` or ``celery_stack``, module-scoped): one
deployment per module in a pytest process. CI runs two processes at once (``scripts/test``), so
two stacks at most run on its 2 cores. Before every case the emulator is reset (the
stack's project back to a freshly seeded ``main``, default durations, no forced outcomes) and every
case ends by checking that nothing but ``main`` is left.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

from airflow_stack import AirflowStack, StackError, StackOptions  # noqa: E402
from stack_support import TIMINGS  # noqa: E402

from jambo_emulator.dataplane.pg_server import unavailable_reason  # noqa: E402

#: Seconds a stack's processes get to exit on SIGTERM before SIGKILL: the deployment is thrown
#: away, and a triggerer waiting for its triggers to clean up otherwise holds the suite 10 s.
STOP_GRACE = 3.0


def _stack(executor: str) -> Iterator[AirflowStack]:
    reason = unavailable_reason()
    if reason:
        pytest.skip(f"the deployment stack needs PostgreSQL: {reason}")
    stack = AirflowStack(StackOptions(executor=executor, operation_duration=3.0))
    try:
        stack.start()
    except StackError as err:
        if executor == "celery" and "redis-server is not installed" in str(err) and os.geteuid() != 0:
            pytest.skip(str(err))
        raise
    try:
        yield stack
    finally:
        stack.stop(grace=STOP_GRACE)


@pytest.fixture(scope="module")
def local_stack() -> Iterator[AirflowStack]:
    """LocalExecutor: api-server, scheduler, dag-processor, triggerer, the emulator (3 s operations)."""
    yield from _stack("local")


@pytest.fixture(scope="module")
def celery_stack() -> Iterator[AirflowStack]:
    """CeleryExecutor with a Redis broker and two workers (``worker1.stack``, ``worker2.stack``)."""
    yield from _stack("celery")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if TIMINGS:
        terminalreporter.section("deployment: wall time per DAG run (trigger -> final state)")
        for line in TIMINGS:
            terminalreporter.write_line(line)
