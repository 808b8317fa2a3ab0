"""``hook.anonymization``: an anonymized branch's masking rules, its anonymization and the wait for it.

Pure rules (no I/O) first (the masking rules themselves are ``masking_rules.py``'s):
:class:`AnonymizedStatus`, :func:`classify_state` and the polling loop
:func:`anonymization_steps`, a generator of ``waiting.Fetch``/``waiting.Sleep`` steps driven by the
same ``run_sync``/``run_async`` as the operation waits (sync hook and trigger cannot drift apart).
Then :class:`AnonymizationApi`, the hook's group for four of the five API operations (the fifth,
the anonymized create, is ``hook.branches.create`` with a request holding masking rules).

The service has no operation for an anonymization run (the spec's action enum has none): its
progress is ``GET .../anonymized_status``, states ``created -> initialized -> anonymizing ->
anonymized``, or ``initialization_error``/``error`` with a ``status_message``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, TypeVar, cast

from airflow_provider_jambo.exceptions import JamboConfigError
from airflow_provider_jambo.hooks.client import ApiRequest, check_id
from airflow_provider_jambo.hooks.resources.resource_group import ResourceGroup
from airflow_provider_jambo.hooks.waiting import (
    Fetch,
    PollPolicy,
    Sleep,
    Step,
    resolve_deadline,
    run_async,
    run_sync,
)
from airflow_provider_jambo.masking_rules import MaskingRule, check_masking_rules
from airflow_provider_jambo.rules import parse_datetime

T = TypeVar("T")

AnonymizationVerdict = Literal["success", "failure", "pending"]
AnonymizationStatus = Literal["success", "failed", "timeout"]
FAILED_STATES = frozenset({"error", "initialization_error"})


@dataclass(frozen=True)
class AnonymizedStatus:
    """``AnonymizedBranchStatusResponse``; unknown states stay as they are (and count as pending)."""

    branch_id: str
    state: str
    status_message: str | None = None
    updated_at: datetime | None = None
    failed_at: datetime | None = None
    masked_columns: int | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_api(cls, body: Any) -> AnonymizedStatus:
        data = body if isinstance(body, Mapping) else {}
        last_run = data.get("last_run")
        masked = last_run.get("masked_columns") if isinstance(last_run, Mapping) else None
        return cls(
            branch_id=str(data.get("branch_id", "")),
            state=str(data.get("state", "")),
            status_message=data.get("status_message"),
            updated_at=parse_datetime(data.get("updated_at")),
            failed_at=parse_datetime(data.get("failed_at")),
            masked_columns=masked if isinstance(masked, int) else None,
            raw=dict(data),
        )

    def describe(self) -> str:
        return f"{self.state}" + (f" ({self.status_message})" if self.status_message else "")


def classify_state(state: str) -> AnonymizationVerdict:
    """anonymized = success; error/initialization_error = failure; anything else = pending."""
    if state == "anonymized":
        return "success"
    if state in FAILED_STATES:
        return "failure"
    return "pending"


@dataclass(frozen=True)
class AnonymizationResult:
    status: AnonymizationStatus
    state: str
    message: str

    def to_dict(self) -> dict[str, str]:
        return {"status": self.status, "state": self.state, "message": self.message}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AnonymizationResult:
        status = data.get("status")
        if status not in ("success", "failed", "timeout"):
            raise JamboConfigError(f"anonymization status must be success, failed or timeout, got {status!r}")
        return cls(status, str(data.get("state", "")), str(data.get("message", "")))


def status_request(project_id: str, branch_id: str) -> ApiRequest[AnonymizedStatus]:
    return ApiRequest(
        "GET",
        "/projects/{project_id}/branches/{branch_id}/anonymized_status",
        {"project_id": project_id, "branch_id": branch_id},
        parse=AnonymizedStatus.from_api,
    )


def anonymization_steps(
    project_id: str,
    branch_id: str,
    *,
    deadline: float | None,
    clock: Callable[[], float] = time.time,
    poll: PollPolicy | None = None,
) -> Generator[Step, Any, AnonymizationResult]:
    """Poll ``anonymized_status`` until the branch is anonymized, failed, or the deadline passed."""
    poll = poll or PollPolicy()
    request = status_request(project_id, branch_id)
    interval: float | None = None
    while True:
        # waiting.Fetch is typed for operation lists; its drivers send any ApiRequest as given.
        status: AnonymizedStatus = yield Fetch(cast(Any, request))
        verdict = classify_state(status.state)
        label = f"branch {branch_id} anonymization"
        if verdict == "success":
            return AnonymizationResult("success", status.state, f"{label} finished: {status.describe()}")
        if verdict == "failure":
            return AnonymizationResult("failed", status.state, f"{label} failed: {status.describe()}")
        now = clock()
        if deadline is not None and now >= deadline:
            return AnonymizationResult("timeout", status.state, f"{label} still {status.describe()}")
        interval = poll.next_interval(interval)
        yield Sleep(max(0.0, min(interval, deadline - now)) if deadline is not None else interval)


def _poll_policy(poll_interval: float | None) -> PollPolicy:
    if poll_interval is None:
        return PollPolicy()
    if poll_interval <= 0:
        raise JamboConfigError(f"poll_interval must be > 0 seconds, got {poll_interval}")
    return PollPolicy(initial_interval=min(0.5, poll_interval), max_interval=poll_interval)


def _rules_body(rules: Any) -> list[dict[str, str]]:
    return [rule.to_api() for rule in check_masking_rules(rules)]


class AnonymizationApi(ResourceGroup):
    """Anonymized branches: masking rules, starting the anonymization, its status and the wait."""

    def get_masking_rules(self, branch_id: str, *, project_id: str | None = None) -> list[MaskingRule]:
        return self._call(
            "GET",
            "/branches/{branch_id}/masking_rules",
            project_id,
            {"branch_id": branch_id},
            parse=lambda body: [MaskingRule.from_api(r) for r in body.get("masking_rules") or []],
        )

    def update_masking_rules(
        self,
        branch_id: str,
        masking_rules: Sequence[MaskingRule | Mapping[str, Any]],
        *,
        project_id: str | None = None,
    ) -> list[MaskingRule]:
        """Replace all of the branch's masking rules (they apply from the next anonymization)."""
        return self._call(
            "PATCH",
            "/branches/{branch_id}/masking_rules",
            project_id,
            {"branch_id": branch_id},
            json={"masking_rules": _rules_body(masking_rules)},
            # Replacing the rules with the same rules changes nothing: safe to re-send.
            idempotent=True,
            parse=lambda body: [MaskingRule.from_api(r) for r in body.get("masking_rules") or []],
        )

    def start(self, branch_id: str, *, project_id: str | None = None) -> AnonymizedStatus:
        return self._call(
            "POST", "/branches/{branch_id}/anonymize", project_id, {"branch_id": branch_id},
            parse=AnonymizedStatus.from_api,
        )  # fmt: skip

    def get_status(self, branch_id: str, *, project_id: str | None = None) -> AnonymizedStatus:
        return self._hook.request(status_request(self._hook.resolve_project_id(project_id), branch_id))

    def wait(
        self,
        branch_id: str,
        *,
        project_id: str | None = None,
        timeout: float | None = None,
        deadline: datetime | float | None = None,
        poll_interval: float | None = None,
    ) -> AnonymizationResult:
        """Poll the status until anonymized, failed or timed out (returned, not raised)."""
        steps = anonymization_steps(
            self._hook.resolve_project_id(project_id),
            check_id("branch_id", branch_id),
            deadline=resolve_deadline(timeout, deadline, self._hook.clock()),
            clock=self._hook.clock,
            poll=_poll_policy(poll_interval),
        )
        return run_sync(steps, cast(Any, self._hook.request), self._hook.sleep)

    async def wait_async(
        self,
        branch_id: str,
        *,
        project_id: str,
        deadline: float | None = None,
        poll_interval: float | None = None,
    ) -> AnonymizationResult:
        """The async driver of the same steps (triggers)."""
        steps = anonymization_steps(
            check_id("project_id", project_id),
            check_id("branch_id", branch_id),
            deadline=deadline,
            clock=self._hook.clock,
            poll=_poll_policy(poll_interval),
        )
        return await run_async(steps, cast(Any, self._hook.arequest), self._hook.asleep)
