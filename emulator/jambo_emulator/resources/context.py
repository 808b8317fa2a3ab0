"""Everything one emulator instance owns, bundled so handlers reach it through ``app.state.ctx``.

State and lookups only: what the resources do with it lives in their own modules, and the
instance's life (bootstrap, background tick, reset) in ``resources/lifecycle.py``, which sits
above every resource.
"""

from __future__ import annotations

import logging
from typing import Any

from jambo_emulator.dataplane.base import DataPlane
from jambo_emulator.resources.access import can_see
from jambo_emulator.resources.operations import OperationEngine
from jambo_emulator.state.clock import Clock
from jambo_emulator.state.config import EmulatorConfig
from jambo_emulator.state.dataplane_runner import DataPlaneRunner, log_failure
from jambo_emulator.state.errors import LOCKED_MESSAGE, ApiError, found, not_found
from jambo_emulator.state.faults import FaultInjector
from jambo_emulator.state.ids import IdGenerator
from jambo_emulator.state.limits import RateLimiter
from jambo_emulator.state.records import ApiKey, Branch, Endpoint, Project
from jambo_emulator.state.requestlog import RequestLog
from jambo_emulator.state.store import Store

log = logging.getLogger(__name__)


class EmulatorContext:
    def __init__(self, config: EmulatorConfig, data_plane: DataPlane) -> None:
        self.config = config
        self.data_plane = data_plane
        self.runner = DataPlaneRunner(data_plane)
        self.request_log = RequestLog(config.request_log_size)
        self.generated_key: str | None = None
        self._build_state()

    def _build_state(self) -> None:
        """(Re)create every piece of mutable state from the config (empty: ``lifecycle.bootstrap``
        adds the organization, keys and projects the config asks for)."""
        config = self.config
        self.clock = Clock(manual=config.uses_manual_clock, start_offset=config.clock_start_offset)
        self.started_at = self.clock.now()
        self.ids = IdGenerator(config.deterministic, config.seed)
        self.store = Store()
        self.engine = OperationEngine(
            self.store,
            self.clock,
            self.ids,
            self.runner,
            config.operation_duration,
            config.operation_durations,
        )
        self.limiter = RateLimiter(config.rate_limit_per_minute, config.rate_limit_per_route_per_second)
        self.faults = FaultInjector(config.seed if config.deterministic else None)
        self.rate_limits_enabled = config.rate_limits
        self.lock_rule_enabled = config.lock_rule
        self.owner_id = self.ids.user_id()
        # Derived from the owner id rather than drawn from the seeded generator, so that adding
        # organizations did not change any other deterministic id.
        self.default_org_id = f"org-emulator-{int(self.owner_id[:8], 16) % 100_000_000:08d}"

    def finish_all(self) -> None:
        """Settle every operation so far at once (bootstrap only: its projects start ready).

        Not yet looked at by the engine, so a zero duration is all it takes (with a data plane,
        an operation still waits for its call)."""
        for project in self.store.projects.values():
            for op in project.operations:
                op.duration = 0.0
        self.engine.advance()

    @property
    def primary_key(self) -> str:
        for key in self.store.api_keys.values():
            if key.personal and not key.revoked:
                return key.key
        return next(iter(self.store.api_keys))

    # -- lookups used by every handler (caller holds the lock) --------------------------------
    def project_for(self, key: ApiKey, project_id: str) -> Project:
        project = self.store.projects.get(project_id)
        if project is None or not can_see(key, project):
            raise not_found("project")
        return project

    def project_branch(self, key: ApiKey, project_id: str, branch_id: str) -> tuple[Project, Branch]:
        """The key's project and one of its branches (404 naming the missing one); hold the store lock."""
        project = self.project_for(key, project_id)
        return project, self.branch_in(project, branch_id)

    def project_endpoint(self, key: ApiKey, project_id: str, endpoint_id: str) -> tuple[Project, Endpoint]:
        """The key's project and one of its endpoints (404 naming the missing one); hold the store lock."""
        project = self.project_for(key, project_id)
        return project, self.endpoint_in(project, endpoint_id)

    @staticmethod
    def branch_in(project: Project, branch_id: str) -> Branch:
        return found(project.branches, branch_id, "branch")

    @staticmethod
    def endpoint_in(project: Project, endpoint_id: str) -> Endpoint:
        return found(project.endpoints, endpoint_id, "endpoint")

    def check_lock(self, project: Project) -> None:
        """The 423 rule: no new operations while the project has conflicting ones in flight."""
        if self.lock_rule_enabled and self.engine.inflight_count(project.id) > 0:
            raise ApiError(423, LOCKED_MESSAGE)

    # -- reset -----------------------------------------------------------------------------------
    def clear(self) -> None:
        """Back to an empty state built from the config: no faults, logs, keys or projects
        (``lifecycle.reset`` then bootstraps again)."""
        with self.store.lock:
            self.store.projects = {}
        if self.runner.enabled:
            try:
                self.runner.call(self.data_plane.reset)  # after every queued call
            except Exception as exc:  # noqa: BLE001 - reported; the control plane resets regardless
                log_failure("reset", exc)
        self.request_log.clear()
        self.engine.clear()
        self._build_state()

    def describe(self) -> dict[str, Any]:
        with self.store.lock:
            return {
                "deterministic": self.config.deterministic,
                "seed": self.config.seed,
                "manual_clock": self.clock.manual,
                "now": self.clock.now(),
                "operation_durations": {"default": self.engine.default_duration, **self.engine.durations},
                "operation_duration_spread": {"spread": self.engine.spread, "seed": self.engine.spread_seed},
                "operation_outcomes": self.engine.forced_outcomes(),
                "rate_limits": self.rate_limits_enabled,
                "lock_rule": self.lock_rule_enabled,
                "data_plane": bool(self.runner.enabled),
                "faults": self.faults.rules(),
            }
