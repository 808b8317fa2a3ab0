"""Injected faults, per route template and method: an exact sequence or a seeded probability.

Kinds: ``status`` (422 ``branch not ready yet``, 500/502/503/524), ``rate_limit`` (429, optional
``retry_after``), ``locked`` (423 with the real message), ``latency`` (sleep, then handle normally),
``drop_after_apply`` (handle, then close the connection without a response), ``pass`` (a no-op step).
"""

from __future__ import annotations

import difflib
import random
import threading
from dataclasses import dataclass, field
from typing import Any

from jambo_emulator.state.spec_operations import SPEC_OPERATIONS

KINDS = ("status", "rate_limit", "locked", "latency", "drop_after_apply", "pass")
#: Injectable statuses and the message each answers with.
STATUS_MESSAGES = {
    # Seen from the service and worth retrying (behaviour notes), which ties it to no request; the
    # emulator answers it by itself only for schema reads of a branch still copying
    # (resources/branch_schema.py).
    422: "branch not ready yet",
    500: "internal server error",
    502: "bad gateway",
    503: "service unavailable",
    524: "a timeout occurred (origin did not respond in time)",
}
STATUSES = tuple(STATUS_MESSAGES)
#: Spec path template -> its methods: what a fault rule may name.
SPEC_ROUTES: dict[str, set[str]] = {}
for _op_id, _method, _path in SPEC_OPERATIONS:
    SPEC_ROUTES.setdefault(_path, set()).add(_method)


def validate_fault(fault: dict[str, Any]) -> dict[str, Any]:
    """A clean copy of one fault spec, or ValueError naming the bad field."""
    if not isinstance(fault, dict):
        raise ValueError(f"each fault must be an object, got {fault!r}")
    kind = fault.get("kind")
    if kind not in KINDS:
        raise ValueError(f"fault kind must be one of {', '.join(KINDS)}, got {kind!r}")
    clean: dict[str, Any] = {"kind": kind}
    if kind == "status":
        status = fault.get("status")
        if status not in STATUSES:
            raise ValueError(f"status fault needs status one of {STATUSES}, got {status!r}")
        clean["status"] = status
    elif kind == "rate_limit":
        retry_after = fault.get("retry_after")
        if isinstance(retry_after, bool) or not (
            retry_after is None
            or (isinstance(retry_after, str) and len(retry_after) <= 100 and retry_after.isprintable())
            or (isinstance(retry_after, (int, float)) and 0 <= retry_after <= 86400)
        ):
            raise ValueError(
                "retry_after must be a short string, a number of seconds (0-86400) or null, "
                f"got {retry_after!r}"
            )
        clean["retry_after"] = None if retry_after is None else str(retry_after)
    elif kind == "latency":
        seconds = fault.get("seconds")
        if not isinstance(seconds, (int, float)) or isinstance(seconds, bool) or not 0 <= seconds <= 600:
            raise ValueError(f"latency fault needs seconds between 0 and 600, got {seconds!r}")
        clean["seconds"] = float(seconds)
    return clean


@dataclass
class FaultRule:
    id: int
    method: str
    route: str
    faults: list[dict[str, Any]]
    probability: float | None
    times: int | None
    #: Sequence mode: index of the next fault; probability mode: injections so far.
    position: int = 0
    injected: int = 0
    matched: int = field(default=0)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "method": self.method,
            "route": self.route,
            "faults": self.faults,
            "probability": self.probability,
            "times": self.times,
            "injected": self.injected,
            "matched": self.matched,
        }


class FaultInjector:
    def __init__(self, seed: int | None) -> None:
        self._rng = random.Random(seed)
        self._rules: list[FaultRule] = []
        self._lock = threading.Lock()
        self._next_id = 1
        #: Fast path: no rules, nothing to look up.
        self.active = False

    def add(
        self,
        method: str,
        route: str,
        faults: list[dict[str, Any]],
        *,
        probability: float | None = None,
        times: int | None = None,
    ) -> FaultRule:
        """Sequence mode (``probability`` None): play ``faults`` in order, ``times`` rounds (default 1).

        Probability mode: each matching request gets a fault (chosen at random from ``faults``)
        with probability ``probability``, at most ``times`` injections (default unlimited).
        """
        if not isinstance(method, str) or not method:
            raise ValueError("method must be an HTTP method such as 'POST', or '*'")
        if not isinstance(route, str) or not route.startswith("/"):
            raise ValueError(
                f"route must be a spec path template such as '/projects/{{project_id}}', got {route!r}"
            )
        if route.startswith("/api/v2/"):
            route = route[len("/api/v2") :]
        methods = SPEC_ROUTES.get(route)
        if methods is None:
            close = difflib.get_close_matches(route, SPEC_ROUTES, n=3, cutoff=0.5)
            hint = f"; closest: {', '.join(close)}" if close else ""
            raise ValueError(
                f"route {route!r} is not a path template of the spec (GET /_emulator/routes lists them){hint}"
            )
        method = method.upper()
        if method != "*" and method not in methods:
            raise ValueError(f"{route} has no method {method}; allowed: *, {', '.join(sorted(methods))}")
        if not isinstance(faults, list) or not faults:
            raise ValueError("faults must be a non-empty list")
        clean = [validate_fault(f) for f in faults]
        if probability is not None and not (
            isinstance(probability, (int, float))
            and not isinstance(probability, bool)
            and 0 <= probability <= 1
        ):
            raise ValueError(f"probability must be between 0 and 1, got {probability!r}")
        if times is not None and (
            not isinstance(times, int) or isinstance(times, bool) or not 1 <= times <= 1_000_000
        ):
            raise ValueError(f"times must be an integer between 1 and 1000000, or null, got {times!r}")
        if probability is None and times is None:
            times = 1
        with self._lock:
            rule = FaultRule(self._next_id, method, route, clean, probability, times)
            self._next_id += 1
            self._rules.append(rule)
            self.active = True
        return rule

    def pick(self, method: str, route: str) -> dict[str, Any] | None:
        """The fault for this request (consumed), or None."""
        with self._lock:
            for rule in self._rules:
                if rule.route != route or rule.method not in (method, "*"):
                    continue
                rule.matched += 1
                if rule.probability is None:
                    fault = rule.faults[rule.position % len(rule.faults)]
                    rule.position += 1
                    rule.injected += 1
                    assert rule.times is not None
                    if rule.position >= len(rule.faults) * rule.times:
                        self._rules.remove(rule)
                        self.active = bool(self._rules)
                    return fault
                if self._rng.random() >= rule.probability:
                    # This rule did not fire; a later rule on the same route still gets its chance.
                    continue
                rule.injected += 1
                fault = self._rng.choice(rule.faults)
                if rule.times is not None and rule.injected >= rule.times:
                    self._rules.remove(rule)
                    self.active = bool(self._rules)
                return fault
        return None

    def rules(self) -> list[dict[str, Any]]:
        with self._lock:
            return [r.to_dict() for r in self._rules]

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()
            self.active = False

    def reseed(self, seed: int | None) -> None:
        with self._lock:
            self._rng = random.Random(seed)
