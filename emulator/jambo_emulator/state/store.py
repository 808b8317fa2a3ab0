"""The in-memory state of one emulator: every record hangs off a ``Store`` (no module globals).

One re-entrant lock guards it. Handlers hold the lock only for dictionary work, never across a
data-plane call.
"""

from __future__ import annotations

import threading

from jambo_emulator.state.records import ApiKey, Organization, Project


class Store:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.projects: dict[str, Project] = {}
        #: Soft-deleted projects, recoverable until their ``deleted.until``.
        self.deleted_projects: dict[str, Project] = {}
        #: Every project id ever created -> its creation order (cursors survive deletes).
        self.project_seq: dict[str, int] = {}
        self.organizations: dict[str, Organization] = {}
        self.api_keys: dict[str, ApiKey] = {}
        self.api_keys_by_id: dict[int, ApiKey] = {}
        self._seq = 0

    def next_seq(self) -> int:
        self._seq += 1
        return self._seq
